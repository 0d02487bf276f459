#!/usr/bin/env bash
# Benchmarks of the core under attack (issue "Trust the core"): prints one
# line per measurement, for the collector binary given (so a build of an
# earlier commit can be measured beside this one in the same session).
#
#  1. Push latency while /metrics is scraped: a 10,000-host collector (60
#     series + 5 checks per host, every 10 s, vedette-loadgen), once without
#     scrapers and once with two clients scraping /metrics back to back.
#     Prints p50/p99 push latency, scrapes done and their mean duration.
#  2. Cardinality attack: one host (one token) pushes 10,000 new series in
#     every batch, as fast as it is answered, for ATTACK_SECONDS. Prints the
#     collector's RSS before and after, the samples it accepted and the
#     pushes it refused.
#
# Usage: tests/bench/hostile.sh [COLLECTOR_BINARY] (default: a release build
# of this tree). Env: SCRAPE_SECONDS (40), ATTACK_SECONDS (30), LABEL (a name
# for the output lines). Installs curl when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${SCRAPE_SECONDS:-40}
attack=${ATTACK_SECONDS:-30}
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
if [[ -n ${1:-} ]]; then
    cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
else
    # Two commands: `--bin` would narrow the first package to that binary too.
    cargo build --release --locked -q -p vedette-collector
    cargo build --release --locked -q -p vedette-tests --bin vedette-loadgen
fi
collector_bin=${1:-$bin/vedette-collector}
label=${LABEL:-$(basename "$(dirname "$(dirname "$collector_bin")")")}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

# A collector on the default rules listening on $2; sets cpid.
collector() {
    cat >"$work/$1.yaml" <<YAML
listen: 127.0.0.1:$2
data_dir: $work/$1-data
YAML
    "$collector_bin" --config "$work/$1.yaml" >/dev/null 2>"$work/$1.log" &
    cpid=$!
    wait_http "http://127.0.0.1:$2/readyz"
}

# Scrapes /metrics back to back until killed; one line per scrape (seconds).
scraper() {
    while :; do
        curl -fso /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/metrics" >>"$2" || sleep 0.1
    done
}

# 1. Push latency under scrape load.
port=19860
collector scrape "$port"
"$bin/vedette-loadgen" --url "http://127.0.0.1:$port" --agents 10000 --series 60 --checks 5 \
    --interval 10s --duration 10s --prefix fleet >/dev/null 2>&1
for mode in quiet scraped; do
    : >"$work/scrapes"
    if [[ $mode == scraped ]]; then
        scraper "$port" "$work/scrapes" & s1=$!
        scraper "$port" "$work/scrapes" & s2=$!
    fi
    out=$("$bin/vedette-loadgen" --url "http://127.0.0.1:$port" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration "${seconds}s" --prefix fleet 2>/dev/null | tail -1)
    if [[ $mode == scraped ]]; then kill "$s1" "$s2"; wait "$s1" "$s2" 2>/dev/null || true; fi
    scrapes=$(wc -l <"$work/scrapes")
    mean=$(awk '{s += $1} END {printf "%.3f", NR ? s / NR : 0}' "$work/scrapes")
    echo "scrape[$label] mode=$mode $out scrapes=$scrapes scrape_mean_s=$mean"
done
kill "$cpid"; wait "$cpid" 2>/dev/null || true

# 2. Cardinality attack.
port=19870
collector attack "$port"
idle=$(rss_kib "$cpid")
out=$("$bin/vedette-loadgen" --url "http://127.0.0.1:$port" --agents 1 --series 10000 --checks 0 \
    --max --churn --duration "${attack}s" --prefix attacker 2>/dev/null | tr '\n' ' ')
rss=$(rss_kib "$cpid")
limited=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^vedette_ingest_limited_total/ {s += $2} END {print s + 0}')
echo "cardinality[$label] rss_idle_kib=$idle rss_after_kib=$rss limited=$limited $out"
kill "$cpid"; wait "$cpid" 2>/dev/null || true
