#!/usr/bin/env bash
# Agent footprint, side by side with Debian's prometheus-node-exporter, in
# the same run on the same machine (issue #3's budget: RSS <= 6 MiB, CPU <=
# 0.03 % of a core at a 10 s interval, stripped binary <= 5 MiB).
#
# Method: build the agent with the size profile (`--profile agent`, what
# packages ship) and the collector in release; start the collector, the agent
# on its embedded defaults (host metrics every 10 s, local /metrics on, disk
# spool) and node_exporter on its Debian defaults. node_exporter is scraped
# every 10 s (curl, like Prometheus at a 10 s scrape interval), so both do
# one cycle per 10 s. After a warm-up of one minute, CPU time (utime+stime
# from /proc/PID/stat) is read, then again after DURATION seconds; RSS
# (VmRSS) and PSS (shared library pages split among their users) at the
# end. CPU time comes in clock ticks (10 ms), so a longer DURATION gives a
# finer per-interval figure. Repeated RUNS times; medians are printed.
#
# Usage: tests/measure-agent.sh [DURATION=300] [RUNS=3]. Needs curl and
# prometheus-node-exporter (installed if missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-300}
runs=${2:-3}
if ! [[ -x /usr/bin/prometheus-node-exporter ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-node-exporter curl
fi
cargo build --locked -q --profile agent -p vedette-agent
cargo build --locked -q --release -p vedette-collector
target="${CARGO_TARGET_DIR:-$PWD/target}"
agent_bin="$target/agent/vedette-agent"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=19860
ne_port=19100
ticks=$(getconf CLK_TCK)

cpu_ms() { awk -v t="$ticks" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# Proportional set size: shared pages (libc, …) split among their users.
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

printf 'listen: 127.0.0.1:%s\ndata_dir: %s/data\n' "$port" "$work" >"$work/collector.yaml"
"$target/release/vedette-collector" --config "$work/collector.yaml" 2>"$work/collector.log" &
until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB, $(uname -r)"
echo "binaries (stripped): vedette-agent $(stat -c %s "$agent_bin") B, prometheus-node-exporter $(stat -c %s /usr/bin/prometheus-node-exporter) B"

: >"$work/results"
for run in $(seq 1 "$runs"); do
    (cd "$work" && exec "$agent_bin" --config /dev/stdin 2>"$work/agent.log" <<YAML) &
host: footprint
collector: {url: "http://127.0.0.1:$port"}
listen: 127.0.0.1:19861
spool: {dir: $work/spool}
YAML
    agent=$!
    /usr/bin/prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" 2>"$work/ne.log" &
    ne=$!
    (while sleep 10; do curl -fs "http://127.0.0.1:$ne_port/metrics" >/dev/null || true; done) &
    scraper=$!
    sleep 60
    a0=$(cpu_ms "$agent"); n0=$(cpu_ms "$ne")
    sleep "$duration"
    a1=$(cpu_ms "$agent"); n1=$(cpu_ms "$ne")
    cycles=$((duration / 10))
    echo "$(( (a1 - a0) * 1000 / cycles )) $(rss_kib "$agent") $(( (n1 - n0) * 1000 / cycles )) $(rss_kib "$ne") $(pss_kib "$agent") $(pss_kib "$ne")" >>"$work/results"
    read -r ac ar nc nr ap np < <(tail -1 "$work/results")
    echo "run $run: agent ${ac} us CPU/interval, RSS ${ar} KiB, PSS ${ap} KiB | node_exporter ${nc} us CPU/scrape, RSS ${nr} KiB, PSS ${np} KiB"
    kill "$scraper" "$ne"; kill -TERM "$agent"; wait "$agent" "$ne" 2>/dev/null || true
done
ac=$(awk '{print $1}' "$work/results" | median)
ar=$(awk '{print $2}' "$work/results" | median)
nc=$(awk '{print $3}' "$work/results" | median)
nr=$(awk '{print $4}' "$work/results" | median)
ap=$(awk '{print $5}' "$work/results" | median)
np=$(awk '{print $6}' "$work/results" | median)
awk -v ac="$ac" -v ar="$ar" -v nc="$nc" -v nr="$nr" -v ap="$ap" -v np="$np" 'BEGIN {
    printf "median: agent %.2f ms CPU per 10 s interval (%.4f %% of a core), RSS %.2f MiB, PSS %.2f MiB\n", ac / 1000, ac / 100000, ar / 1024, ap / 1024
    printf "median: node_exporter %.2f ms CPU per 10 s scrape (%.4f %% of a core), RSS %.2f MiB, PSS %.2f MiB\n", nc / 1000, nc / 100000, nr / 1024, np / 1024
    printf "ratio agent/node_exporter: CPU %.2f, RSS %.2f\n", (nc ? ac / nc : 0), (nr ? ar / nr : 0)
}'
