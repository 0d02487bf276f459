#!/usr/bin/env bash
# A/B: the ceiling and fleet benchmarks of tests/bench/run.sh against two
# collector binaries, alternately (before, after, before, …), with one load
# generator, on one machine in one run: for a change that must not cost speed.
#
# Usage: tests/bench/ab.sh BEFORE_COLLECTOR AFTER_COLLECTOR
# Env: RUNS (3), FLEET_SECONDS (60), SKIP_CEILING, PORT_BASE (19900).
# Prints one line per run: `ceiling|fleet before|after run=N <run.sh's
# numbers>`. About 10 minutes at RUNS=3.
set -euo pipefail
cd "$(dirname "$0")/../.."
declare -A collectors=([before]=$(realpath "${1:?before collector binary}") [after]=$(realpath "${2:?after collector binary}"))
runs=${RUNS:-3}
fleet_seconds=${FLEET_SECONDS:-60}
cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
loadgen="${CARGO_TARGET_DIR:-$PWD/target}/release/vedette-loadgen"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

p=${PORT_BASE:-19900}
if [[ -z ${SKIP_CEILING:-} ]]; then
    for run in $(seq 1 "$runs"); do
        for which in before after; do
            p=$((p + 2))
            echo "ceiling $which run=$run $(ceiling_run "${collectors[$which]}" "$p")"
        done
    done
fi
for run in $(seq 1 "$runs"); do
    for which in before after; do
        p=$((p + 2))
        echo "fleet $which run=$run $(fleet_run "${collectors[$which]}" "$p" "$fleet_seconds")"
    done
done
