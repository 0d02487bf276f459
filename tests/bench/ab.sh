#!/usr/bin/env bash
# A/B: the ceiling and fleet benchmarks of tests/bench/run.sh against two
# collector binaries, alternately (before, after, before, …), with one load
# generator, on one machine in one run: for a change that must not cost speed.
#
# Usage: tests/bench/ab.sh BEFORE_COLLECTOR AFTER_COLLECTOR
# Env: RUNS (3), FLEET_SECONDS (60), SKIP_CEILING, PORT_BASE (19900).
# Prints one line per run: `ceiling|fleet before|after run=N <loadgen's numbers>
# collector_cpu_pct=… [rss_kib=… idle_rss_kib=…]`. About 10 minutes at RUNS=3.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/bench
declare -A collectors=([before]=$(realpath "${1:?before collector binary}") [after]=$(realpath "${2:?after collector binary}"))
cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
lg="${CARGO_TARGET_DIR:-$PWD/target}/release/vedette-loadgen"
runs=${RUNS:-3}
fleet_seconds=${FLEET_SECONDS:-60}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
ticks=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$ticks" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 1 200); do curl -fs "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }
collector() {
    local bin=$1 name=$2 p=$3 hook=$(($3 + 1))
    python3 "$here/receiver.py" hook "$hook" "$work/$name.hook" >/dev/null 2>&1 &
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
}
p=${PORT_BASE:-19900}
[[ -n ${SKIP_CEILING:-} ]] || { for run in $(seq 1 "$runs"); do
  for which in before after; do
    p=$((p + 2)); collector "${collectors[$which]}" "max-$which-$run" $p; pid=$cpid
    wait_http "http://127.0.0.1:$p/readyz"
    c0=$(cpu_ms "$pid"); t0=$(date +%s%N)
    out=$("$lg" --url "http://127.0.0.1:$p" --max --agents 8 --series 1000 --checks 5 \
        --breach-ratio 0.25 --duration 20s --prefix max 2>/dev/null | tail -1)
    c1=$(cpu_ms "$pid"); t1=$(date +%s%N)
    share=$(awk -v c=$((c1 - c0)) -v t=$(((t1 - t0) / 1000000)) 'BEGIN {printf "%.0f", 100 * c / t}')
    echo "ceiling $which run=$run $out collector_cpu_pct=$share"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
}
for run in $(seq 1 "$runs"); do
  for which in before after; do
    p=$((p + 2)); collector "${collectors[$which]}" "fleet-$which-$run" $p; pid=$cpid
    wait_http "http://127.0.0.1:$p/readyz"
    idle=$(rss_kib "$pid")
    "$lg" --url "http://127.0.0.1:$p" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration 10s --prefix fleet >/dev/null 2>&1
    c0=$(cpu_ms "$pid"); t0=$(date +%s%N)
    out=$("$lg" --url "http://127.0.0.1:$p" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration "${fleet_seconds}s" --prefix fleet 2>/dev/null | tr '\n' ' ')
    c1=$(cpu_ms "$pid"); t1=$(date +%s%N)
    rss=$(rss_kib "$pid")
    share=$(awk -v c=$((c1 - c0)) -v t=$(((t1 - t0) / 1000000)) 'BEGIN {printf "%.2f", 100 * c / t}')
    echo "fleet $which run=$run $out collector_cpu_pct=$share rss_kib=$rss idle_rss_kib=$idle"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
