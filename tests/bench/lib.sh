# Shared by the benchmark scripts (sourced, not run). Expects $work (a
# scratch directory) and $loadgen (the vedette-loadgen binary) to be set,
# as release_collector_and_loadgen does.

# Builds the release collector and vedette-loadgen (two commands: `--bin`
# would narrow the collector's package to that binary), sets $bin, $loadgen
# and a scratch $work removed at exit with every background job.
release_collector_and_loadgen() {
    cargo build --release --locked -q -p vedette-collector
    cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
    bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
    loadgen="$bin/vedette-loadgen"
    work=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
}

# Installs the peers the benchmarks run beside (Debian packages, as root)
# when missing: Prometheus, Alertmanager, node_exporter, curl.
install_peers() {
    local missing=() p
    for p in prometheus prometheus-alertmanager prometheus-node-exporter curl; do
        command -v "$p" >/dev/null || [[ -x /usr/bin/$p ]] || missing+=("$p")
    done
    if ((${#missing[@]})); then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
}

ticks=$(getconf CLK_TCK)
# utime + stime of PID $1, in ms.
cpu_ms() { awk -v t="$ticks" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# The value of key $1 in `key=value …` lines on stdin.
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
# Waits (up to 20 s) until URL $1 answers.
wait_http() { for _ in $(seq 1 200); do curl -fs "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
# Percent of one core PID $1 used since cpu_ms $2 at wall time $3 (ns), with
# $4 decimals.
cpu_share() { awk -v c=$(($(cpu_ms "$1") - $2)) -v t=$((($(date +%s%N) - $3) / 1000000)) -v d="$4" 'BEGIN {printf "%.*f", d, 100 * c / t}'; }

# Collector binary $1 as NAME $2 on port $3, on the default rules plus one
# without `for`, every transition notified to a webhook receiver on $3 + 1;
# returns once it is ready. Sets cpid.
bench_collector() {
    local bin=$1 name=$2 p=$3 hook=$(($3 + 1))
    python3 tests/bench/receiver.py hook "$hook" "$work/$name.hook" >/dev/null 2>&1 &
    cat >"$work/$name.yaml" <<YAML
listen: 127.0.0.1:$p
data_dir: $work/$name-data
rules:
  - {name: host_down, absent_for: 60s, impact: 1, urgency: 1}
  - {name: cpu_high, metric: cpu_usage_ratio, above: 0.90, clear_below: 0.80, for: 5m}
  - {name: memory_high, metric: memory_used_ratio, above: 0.90, for: 5m}
  - {name: disk_full, metric: filesystem_used_ratio, above: 0.90, clear_below: 0.85, for: 10m}
  - {name: check_critical, check: "*", status: critical, for: 1m, urgency: 1}
  - {name: cpu_now, metric: cpu_usage_ratio, above: 0.95, clear_below: 0.5}
notify:
  - {name: hook, kind: webhook, url: "http://127.0.0.1:$hook/vedette"}
YAML
    "$bin" --config "$work/$name.yaml" >/dev/null 2>"$work/$name.log" &
    cpid=$!
    wait_http "http://127.0.0.1:$p/readyz"
}

# The ceiling on collector binary $1 (port $2): 8 agents × 1,000 series + 5
# checks back to back for 20 s, a quarter of them alternating breach and
# clear. Prints the load generator's last line and collector_cpu_pct.
ceiling_run() {
    bench_collector "$1" "max$2" "$2"; local pid=$cpid
    local c0 t0 out
    c0=$(cpu_ms "$pid"); t0=$(date +%s%N)
    out=$("$loadgen" --url "http://127.0.0.1:$2" --max --agents 8 --series 1000 --checks 5 \
        --breach-ratio 0.25 --duration 20s --prefix max 2>/dev/null | tail -1)
    echo "$out collector_cpu_pct=$(cpu_share "$pid" "$c0" "$t0" 0)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

# The fleet on collector binary $1 (port $2): 10,000 agents × 60 series + 5
# checks every 10 s, 1 % breaching, for $3 s after a one-interval warm-up.
# Prints the load generator's lines, CPU share and RSS (per live series too).
fleet_run() {
    bench_collector "$1" "fleet$2" "$2"; local pid=$cpid
    local idle c0 t0 out share rss per
    idle=$(rss_kib "$pid")
    # Warm-up: one interval, so every host and series exists.
    "$loadgen" --url "http://127.0.0.1:$2" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration 10s --prefix fleet >/dev/null 2>&1
    c0=$(cpu_ms "$pid"); t0=$(date +%s%N)
    out=$("$loadgen" --url "http://127.0.0.1:$2" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration "$3s" --prefix fleet 2>/dev/null | tr '\n' ' ')
    share=$(cpu_share "$pid" "$c0" "$t0" 2)
    rss=$(rss_kib "$pid")
    per=$(awk -v r="$rss" -v i="$idle" 'BEGIN {printf "%.0f %.0f", r * 1024 / 600000, (r - i) * 1024 / 600000}')
    echo "$out collector_cpu_pct=$share rss_kib=$rss idle_rss_kib=$idle bytes_per_series=${per% *} bytes_per_series_over_idle=${per#* }"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

# End to end, run $1: a Python TCP endpoint checked by a vedette agent
# (tcp every 10 s) → collector → webhook, and scraped by Prometheus (`up ==
# 0`, default timers) → Alertmanager → the same webhook; after both saw it
# up and a random 0–59 s pause, the endpoint is killed. Writes
# `vedette_s=… vedette_1m_s=… prometheus_s=…` (seconds to each one's first
# notification) to $work/e2e$1/result. Needs $bin (release vedette
# binaries) and $here (tests/bench).
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
