#!/usr/bin/env bash
# Benchmarks (issue #8): runs them on release builds and writes a Markdown
# report with the machine, the method and the numbers (medians of RUNS runs).
#
#  1. Collector capacity: the ceiling (vedette-loadgen --max) and a fleet of
#     10,000 agents × 60 series every 10 s: collector CPU share, RSS per
#     live series, push latency p50/p99.
#  2. Detection latency: (a) breach arrival → incident persisted and its
#     notification enqueued: the collector acknowledges a push only after the
#     transaction holding the incident and its outbox rows commits, so the
#     latency of the pushes that open or reopen an incident bounds it from
#     above (HTTP, gzip and JSON included); (b) end to end, side by side in
#     one run: a TCP endpoint goes down, vedette (agent tcp check, 10 s
#     interval) and Debian's Prometheus + Alertmanager (scraping it as a
#     target, `up == 0`, default timers) notify the same webhook receiver.
#  3. Agent footprint beside Debian's prometheus-node-exporter
#     (tests/measure-agent.sh).
#  4. /metrics rendering at 10,000 hosts (collector/examples/metrics_render.rs).
#  5. Under attack: push latency while /metrics is scraped, RSS under a
#     cardinality attack (tests/bench/hostile.sh).
#
# Usage: tests/bench/run.sh [REPORT=BENCHMARKS.md]. Env: RUNS (3),
# FLEET_SECONDS (60), AGENT_SECONDS (60). Takes about 20 minutes; run it on an
# otherwise idle machine. Installs prometheus, prometheus-alertmanager,
# prometheus-node-exporter and curl when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
report=${1:-BENCHMARKS.md}
runs=${RUNS:-3}
fleet_seconds=${FLEET_SECONDS:-60}
agent_seconds=${AGENT_SECONDS:-60}

missing=()
for p in prometheus prometheus-alertmanager prometheus-node-exporter curl; do
    command -v "$p" >/dev/null || [[ -x /usr/bin/$p ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# Two commands: `--bin` would narrow the daemons' packages to that binary too
# (and leave stale daemons in target/release).
cargo build --release --locked -q -p vedette-collector -p vedette-agent
cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
here=tests/bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
loadgen=$bin/vedette-loadgen
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

machine="$(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {print int($2/1048576)}' /proc/meminfo) GiB, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "machine: $machine"

# 1a. Ceiling.
: >"$work/ceiling"
for run in $(seq 1 "$runs"); do
    ceiling_run "$bin/vedette-collector" $((19700 + run * 2)) | tee -a "$work/ceiling"
done

# 1b + 2a. Fleet: 10,000 agents × 60 series + 5 checks every 10 s, 1 % breaching.
: >"$work/fleet"
for run in $(seq 1 "$runs"); do
    fleet_run "$bin/vedette-collector" $((19720 + run * 2)) "$fleet_seconds" | tee -a "$work/fleet"
done

# 2b. End to end against Prometheus + Alertmanager, one stack per run, runs
# in parallel (the stacks are idle but for their timers).
e2e() {
    local run=$1 d="$work/e2e$run" base=$((19740 + $1 * 10))
    local target=$base c=$((base + 1)) hook=$((base + 2)) prom=$((base + 3)) am=$((base + 4))
    mkdir -p "$d"
    trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
    python3 "$here/receiver.py" hook "$hook" "$d/hook" &
    python3 "$here/receiver.py" target "$target" &
    local tpid=$!
    cat >"$d/collector.yaml" <<YAML
listen: 127.0.0.1:$c
data_dir: $d/data
rules:
  - {name: target_down, check: target, status: critical}
  - {name: target_down_1m, check: target, status: critical, for: 1m}
notify:
  - {name: hook, kind: webhook, url: "http://127.0.0.1:$hook/vedette"}
YAML
    cat >"$d/agent.yaml" <<YAML
host: bench-$run
collector: {url: "http://127.0.0.1:$c"}
listen: off
spool: {dir: $d/spool}
checks:
  - name: target
    tcp: {address: "127.0.0.1:$target"}
YAML
    cat >"$d/prometheus.yml" <<YAML
# Prometheus defaults: scrape_interval 1m, evaluation_interval 1m.
rule_files: [rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$am"]}]}]
scrape_configs:
  - job_name: target
    static_configs: [{targets: ["127.0.0.1:$target"]}]
YAML
    cat >"$d/rules.yml" <<YAML
groups:
  - name: bench
    rules:
      - alert: TargetDown
        expr: up{job="target"} == 0
YAML
    cat >"$d/am.yml" <<YAML
# Alertmanager defaults: group_wait 30s, group_interval 5m.
route: {receiver: hook}
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:$hook/alertmanager"}]
YAML
    # The endpoint listens before anyone checks it (else the first check fails).
    until curl -fs "http://127.0.0.1:$target/" >/dev/null; do sleep 0.2; done
    "$bin/vedette-collector" --config "$d/collector.yaml" 2>"$d/collector.log" &
    "$bin/vedette-agent" --config "$d/agent.yaml" 2>"$d/agent.log" &
    prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/prom" \
        --web.listen-address="127.0.0.1:$prom" >"$d/prom.log" 2>&1 &
    prometheus-alertmanager --config.file="$d/am.yml" --storage.path="$d/am" \
        --web.listen-address="127.0.0.1:$am" --cluster.listen-address= >"$d/am.log" 2>&1 &
    echo "e2e run $run: stack up (vedette :$c, prometheus :$prom, alertmanager :$am)" >&2
    # Both have seen the target up: Prometheus scraped it, the agent checked it.
    until curl -fs "http://127.0.0.1:$prom/api/v1/query?query=up" | grep -q '"value":\[[0-9.]*,"1"\]'; do sleep 1; done
    until grep -q "target" <(curl -fs "http://127.0.0.1:$c/metrics"); do sleep 1; done
    # A random phase against both tools' cycles.
    sleep $((RANDOM % 60))
    local down
    down=$(date +%s.%N)
    kill "$tpid"
    for _ in $(seq 1 400); do
        grep -q "/alertmanager firing" "$d/hook" 2>/dev/null && grep -q "opened target_down_1m" "$d/hook" 2>/dev/null && break
        sleep 1
    done
    # The first notification of each after the kill (opened or reopened).
    awk -v t0="$down" '
        $1 < t0 { next }
        /opened target_down bench/ && !v { v = $1 - t0 }
        /opened target_down_1m bench/ && !w { w = $1 - t0 }
        /alertmanager firing/ && !p { p = $1 - t0 }
        END { printf "vedette_s=%.2f vedette_1m_s=%.2f prometheus_s=%.2f\n", v, w, p }' "$d/hook" >"$d/result"
    kill $(jobs -p) 2>/dev/null || true
}
for run in $(seq 1 "$runs"); do e2e "$run" & done
# 3. Agent footprint meanwhile (the e2e stacks are idle).
agent_out=$(tests/measure-agent.sh "$agent_seconds" "$runs" 2>&1 | tail -6)
wait_e2e() { for run in $(seq 1 "$runs"); do until [[ -s "$work/e2e$run/result" ]]; do sleep 1; done; done; }
wait_e2e
for run in $(seq 1 "$runs"); do cat "$work/e2e$run/result"; done | tee "$work/e2e"

# 4. /metrics at 10,000 hosts.
render=$(cargo run --release --locked -q -p vedette-collector --example metrics_render 10000 5 2>/dev/null)

# 5. Under attack: push latency while /metrics is scraped, RSS under a
# cardinality attack (tests/bench/hostile.sh, this build).
attack=$(LABEL=this tests/bench/hostile.sh 2>/dev/null)

m() { field "$1" <"$2" | median; }
ceil_sps=$(m samples_per_s "$work/ceiling"); ceil_p99=$(m p99_ms "$work/ceiling"); ceil_cpu=$(m collector_cpu_pct "$work/ceiling")
fl_sps=$(m samples_per_s "$work/fleet"); fl_p50=$(m p50_ms "$work/fleet"); fl_p99=$(m p99_ms "$work/fleet")
fl_cpu=$(m collector_cpu_pct "$work/fleet"); fl_bps=$(m bytes_per_series "$work/fleet"); fl_bpsi=$(m bytes_per_series_over_idle "$work/fleet")
fl_rss=$(m rss_kib "$work/fleet"); fl_err=$(m errors "$work/fleet")
br_p50=$(m breach_p50_ms "$work/fleet"); br_p99=$(m breach_p99_ms "$work/fleet"); br_n=$(m breaching_pushes "$work/fleet")
v=$(m vedette_s "$work/e2e"); v1=$(m vedette_1m_s "$work/e2e"); pr=$(m prometheus_s "$work/e2e")
verdict() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { ok = (op == ">=") ? a >= b : a <= b; print ok ? "meets" : "**short**" }'; }

cat >"$report" <<MD
# vedette benchmarks

Generated by \`tests/bench/run.sh\` on $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)).
Machine: $machine. Release builds; load generator and collector share the machine.
Medians of $runs runs unless noted; every run's line is under "Raw".

## Summary

| What | Goal | Measured (median) | |
|---|---|---|---|
| Ceiling, samples/s accepted (rules evaluated) | ≥ 1,000,000 | $(printf "%.0f" "$ceil_sps") | $(verdict "$ceil_sps" ">=" 1000000) |
| 10k agents × 60 series / 10 s: collector CPU | ≤ 10 % of a core | ${fl_cpu} % | $(verdict "$fl_cpu" "<=" 10) |
| same: RSS per live series | ≤ 200 B | ${fl_bps} B (${fl_bpsi} B over idle; RSS $((fl_rss / 1024)) MiB) | $(verdict "$fl_bps" "<=" 200) |
| same: push latency p99 | ≤ 5 ms | ${fl_p99} ms (p50 ${fl_p50} ms, errors ${fl_err}) | $(verdict "$fl_p99" "<=" 5) |
| Detection: arrival → incident persisted + notification enqueued, p99 (upper bound) | ≤ 5 ms | ${br_p99} ms (p50 ${br_p50} ms, ${br_n} breaching pushes per run) | $(verdict "$br_p99" "<=" 5) |
| End to end, TCP endpoint down → webhook: vedette (10 s checks, rule without \`for\`) | | ${v} s | |
| same, vedette with \`for: 1m\` (as the default \`check_critical\`) | | ${v1} s | |
| same, Prometheus + Alertmanager, default timers | | ${pr} s | |
| Ratio Prometheus + Alertmanager / vedette | | $(awk -v a="$pr" -v b="$v" 'BEGIN {printf "%.1f×", b ? a / b : 0}') (with \`for: 1m\`: $(awk -v a="$pr" -v b="$v1" 'BEGIN {printf "%.1f×", b ? a / b : 0}')) | |

## Method

- **Ceiling**: \`vedette-loadgen --max --agents 8 --series 1000 --checks 5 --breach-ratio 0.25 --duration 20s\`:
  8 simulated agents push gzip batches of 1,000 samples + 5 checks back to back; 2 of them
  alternate breaching and clear batches, so incidents open, resolve and reopen during the run.
  Collector CPU share = its utime+stime over the wall time (/proc/PID/stat); 100 % is one core.
- **Fleet**: 10,000 agents × 60 series + 5 checks every 10 s (1 % breaching, every other batch),
  one warm-up interval, then ${fleet_seconds} s measured. RSS per series = collector VmRSS at the
  end / 600,000 live series ("over idle": minus the RSS of the freshly started collector).
  Six rules (the five defaults and \`cpu_now\` without \`for\`), one webhook receiver.
- **Detection (a)**: the push latency of the batches that opened or reopened an incident in the
  fleet run, as the load generator measures it: the collector answers a push after the engine
  committed the incident and its outbox row (one SQLite transaction), so this bounds the
  arrival → persisted + enqueued time from above.
- **Detection (b)**: per run, a fresh stack: a Python HTTP endpoint; a vedette agent checking it
  with \`tcp\` every 10 s (its default interval) → collector → webhook; Prometheus scraping it
  (global defaults: 1 m scrape and evaluation), rule \`up{job="target"} == 0\`, Alertmanager with
  defaults (group_wait 30 s) → the same webhook. After both saw it up, and a random 0–59 s pause,
  the endpoint is killed; the time to the first notification of each is reported.
- **Agent footprint**: \`tests/measure-agent.sh ${agent_seconds} ${runs}\` (method in that script).
- **/metrics**: \`cargo run --release -p vedette-collector --example metrics_render 10000 5\`.

## Agent footprint (beside prometheus-node-exporter)

\`\`\`
$agent_out
\`\`\`

## /metrics rendering at 10,000 hosts

\`\`\`
$render
\`\`\`

## Under attack (tests/bench/hostile.sh)

Push latency of a 10,000-host fleet (60 series + 5 checks every 10 s) without
scrapers (\`quiet\`) and while two clients scrape \`/metrics\` back to back
(\`scraped\`); then one host pushing 10,000 new series per batch as fast as
answered for 30 s (the collector's RSS before and after, pushes refused over
a limit).

\`\`\`
$attack
\`\`\`

## Raw

Ceiling runs:
\`\`\`
$(cat "$work/ceiling")
\`\`\`
Fleet runs:
\`\`\`
$(cat "$work/fleet")
\`\`\`
End-to-end runs:
\`\`\`
$(cat "$work/e2e")
\`\`\`
MD
echo "report written to $report"
