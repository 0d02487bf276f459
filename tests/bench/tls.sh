#!/usr/bin/env bash
# TLS vs plain HTTP on the same collector binary, in one run (issue #19):
#
#  1. Ceiling: 8 agents × 1,000 series + 5 checks pushed back to back for
#     20 s (vedette-loadgen --max), kept-alive connections: throughput and
#     push latency p50/p99, plain vs TLS 1.3 (rustls, ECDSA P-256 from
#     `vedette-collector tls init`) vs mutual TLS is not measured separately
#     (the client certificate is verified once per handshake).
#  2. Handshake cost: 1 agent × 60 series pushed back to back for 10 s, a new
#     connection per push (--new-connections): the p50 difference between
#     TLS and plain is what one TLS handshake adds to a new connection.
#  3. Fleet: 10,000 agents × 60 series + 5 checks every 10 s for
#     FLEET_SECONDS (30), plain vs TLS: collector CPU share and p99.
#
# Usage: tests/bench/tls.sh. Prints key=value lines per case. Runs about 2
# minutes plus the fleet runs; on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
fleet_seconds=${FLEET_SECONDS:-30}
source tests/bench/lib.sh
release_collector_and_loadgen

"$bin/vedette-collector" tls init --dir "$work/pki" --host collector.bench >/dev/null

# Collector on port $1, TLS when $2 is "tls". Sets cpid and url, lgtls.
start() {
    local p=$1 mode=$2 tls=""
    if [[ $mode == tls ]]; then
        tls="tls: {cert_file: $work/pki/server.pem, key_file: $work/pki/server-key.pem}"
    fi
    cat >"$work/c$p.yaml" <<YAML
listen: 127.0.0.1:$p
data_dir: $work/data$p
$tls
YAML
    "$bin/vedette-collector" --config "$work/c$p.yaml" >/dev/null 2>"$work/c$p.log" &
    cpid=$!
    if [[ $mode == tls ]]; then
        url="https://127.0.0.1:$p"
        lgtls=(--ca-file "$work/pki/ca.pem" --server-name collector.bench)
        for _ in $(seq 1 200); do
            curl -fs --cacert "$work/pki/ca.pem" --resolve "collector.bench:$p:127.0.0.1" \
                "https://collector.bench:$p/readyz" >/dev/null && break
            sleep 0.1
        done
    else
        url="http://127.0.0.1:$p"
        lgtls=()
        wait_http "$url/readyz"
    fi
}

stop() { kill "$cpid"; wait "$cpid" 2>/dev/null || true; }

port=19700
for mode in plain tls; do
    port=$((port + 10))
    start "$port" "$mode"
    c0=$(cpu_ms "$cpid"); t0=$(date +%s%N)
    out=$("$loadgen" --url "$url" "${lgtls[@]}" --max --agents 8 --series 1000 --checks 5 \
        --breach-ratio 0.25 --duration 20s --prefix max 2>/dev/null | tail -1)
    echo "ceiling mode=$mode $out collector_cpu_pct=$(cpu_share "$cpid" "$c0" "$t0" 0)"
    stop
done

for mode in plain tls; do
    port=$((port + 10))
    start "$port" "$mode"
    out=$("$loadgen" --url "$url" "${lgtls[@]}" --max --new-connections --agents 1 --series 60 \
        --checks 5 --breach-ratio 0 --duration 10s --prefix hs 2>/dev/null | tail -1)
    echo "new_connection mode=$mode $out"
    stop
done

for mode in plain tls; do
    port=$((port + 10))
    start "$port" "$mode"
    "$loadgen" --url "$url" "${lgtls[@]}" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration 10s --prefix fleet >/dev/null 2>&1
    c0=$(cpu_ms "$cpid"); t0=$(date +%s%N)
    out=$("$loadgen" --url "$url" "${lgtls[@]}" --agents 10000 --series 60 --checks 5 \
        --interval 10s --duration "${fleet_seconds}s" --prefix fleet 2>/dev/null | tail -1)
    echo "fleet mode=$mode $out collector_cpu_pct=$(cpu_share "$cpid" "$c0" "$t0" 2) rss_kib=$(rss_kib "$cpid")"
    stop
done
