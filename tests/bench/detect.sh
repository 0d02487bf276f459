#!/usr/bin/env bash
# The parts of tests/bench/run.sh an agent change moves, on their own: end
# to end detection (TCP endpoint down → webhook) of vedette beside
# Prometheus + Alertmanager on their defaults, and meanwhile the agent's
# footprint beside node_exporter (tests/measure-agent.sh). Prints each run's
# line and the medians.
#
# Usage: tests/bench/detect.sh. Env: RUNS (3), AGENT_SECONDS (60). About 6
# minutes. Installs prometheus, prometheus-alertmanager,
# prometheus-node-exporter and curl when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-3}
agent_seconds=${AGENT_SECONDS:-60}
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
install_peers
cargo build --release --locked -q -p vedette-collector -p vedette-agent
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
here=tests/bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

for run in $(seq 1 "$runs"); do e2e "$run" & done
tests/measure-agent.sh "$agent_seconds" "$runs" 2>&1 | tail -6
for run in $(seq 1 "$runs"); do until [[ -s "$work/e2e$run/result" ]]; do sleep 1; done; done
for run in $(seq 1 "$runs"); do cat "$work/e2e$run/result"; done | tee "$work/e2e"
m() { field "$1" <"$work/e2e" | median; }
v=$(m vedette_s); v1=$(m vedette_1m_s); pr=$(m prometheus_s)
awk -v v="$v" -v v1="$v1" -v p="$pr" 'BEGIN {
    printf "median: vedette %s s, vedette with for: 1m %s s, Prometheus + Alertmanager %s s\n", v, v1, p
    printf "ratio Prometheus + Alertmanager / vedette: %.1fx (with for: 1m: %.1fx)\n", p / v, p / v1 }'
