#!/usr/bin/env bash
# Profiles behind the benchmark report's shortfalls, with valgrind (counts,
# not seconds: repeatable on a busy machine):
#  - where the collector's CPU goes while ingesting (callgrind: instructions
#    by function, inclusive), for AGENTS agents × 60 series, two intervals;
#  - where its memory goes per live series (massif: the heap at its peak, by
#    allocation site), for the same fleet.
# Usage: tests/bench/profile.sh [AGENTS=500] [OUT=profile.txt]. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
agents=${1:-500}
out=${2:-profile.txt}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
# Symbols are needed: build a release collector without stripping.
CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --locked -q -p vedette-collector --target-dir target/profile
cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
collector=target/profile/release/vedette-collector
loadgen="${CARGO_TARGET_DIR:-$PWD/target}/release/vedette-loadgen"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # $1: tool args…; runs the collector under valgrind with the fleet's load
    local port=19690
    printf 'listen: 127.0.0.1:%s\ndata_dir: %s/data-%s\nrules:\n  - {name: cpu_now, metric: cpu_usage_ratio, above: 0.95, clear_below: 0.5}\n  - {name: check_critical, check: "*", status: critical, for: 1m}\n' \
        "$port" "$work" "$RANDOM" >"$work/c.yaml"
    valgrind "$@" "$collector" --config "$work/c.yaml" 2>"$work/valgrind.log" &
    local pid=$!
    until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.5; done
    "$loadgen" --url "http://127.0.0.1:$port" --agents "$agents" --series 60 --checks 5 \
        --interval 10s --duration 20s --prefix prof 2>/dev/null | tail -1
    kill -TERM "$pid"; wait "$pid" || true
}

{
    echo "# collector CPU: callgrind, $agents agents x 60 series + 5 checks, 2 intervals"
    run --tool=callgrind --callgrind-out-file="$work/cg.out"
    callgrind_annotate --inclusive=yes "$work/cg.out" 2>/dev/null | head -60 || true
    echo
    echo "# collector heap at peak: massif, same load ($((agents * 60)) live series)"
    run --tool=massif --massif-out-file="$work/massif.out" --depth=12
    ms_print "$work/massif.out" | sed -n '/^ *n *time(i) *total(B)/,$p' | grep -v '^$' | head -120  || true
} | tee "$out"
