#!/usr/bin/env bash
# The console at fleet size (issue #20): a release collector with 10,000
# hosts (60 series + 5 checks each, pushed by vedette-loadgen) and about
# 10,000 live incidents in its store; then each page is fetched ROUNDS
# times, one request at a time, on loopback: time to the whole answer
# (p50, p99, max, the collector's work plus loopback HTTP) and the page's
# bytes on the wire (uncompressed).
#
# Usage: tests/bench/console.sh. Env: ROUNDS (200). About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-200}
source tests/bench/lib.sh
release_collector_and_loadgen

port=19800
cat >"$work/c.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/data
rules:
  - {name: host_down, absent_for: 10m, impact: 1, urgency: 1}
  - {name: cpu_now, metric: cpu_usage_ratio, above: 0.95, clear_below: 0.5}
  - {name: check_critical, check: "check_0", status: critical}
services:
  - {name: web, target: 0.999, hosts: ['load-*'], checks: ['check_*'], mode: all}
status_page: {title: Example status, services: [web]}
YAML
"$bin/vedette-collector" --config "$work/c.yaml" >/dev/null 2>"$work/c.log" &
cpid=$!
wait_http "http://127.0.0.1:$port/readyz"
# One batch per host, every host breaching: cpu_now and check_0 open on each.
"$loadgen" --url "http://127.0.0.1:$port" --agents 10000 --series 60 --checks 5 \
    --breach-ratio 1 --interval 10s --duration 10s --prefix load >/dev/null 2>&1
live=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^vedette_incidents_open\{/ { n += $2 } END { print n }')
hosts=$(curl -fs "http://127.0.0.1:$port/metrics" | grep -c '^vedette_host_up{' || true)
echo "setup hosts=$hosts open_incidents=$live collector_rss_kib=$(rss_kib "$cpid")"

# The console on loopback without API tokens: one anonymous session.
curl -fs -c "$work/jar" -o /dev/null "http://127.0.0.1:$port/"
for page in "/" "/?fragment=live" "/status" "/incidents" "/incidents?state=open&sort=priority&host=load-0*" "/hosts" "/hosts?after=load-05000" "/hosts/load-00042" "/incidents/5000" "/services"; do
    : >"$work/times"
    for _ in $(seq 1 "$rounds"); do
        curl -fs -b "$work/jar" -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$port$page" >>"$work/times"
    done
    bytes=$(tail -1 "$work/times" | cut -d' ' -f2)
    cut -d' ' -f1 "$work/times" | sort -g | awk -v page="$page" -v bytes="$bytes" '{ t[NR] = $1 * 1000 } END {
        printf "page=%s p50_ms=%.2f p99_ms=%.2f max_ms=%.2f bytes=%d\n",
        page, t[int((NR + 1) * 0.5)], t[int(NR * 0.99)], t[NR], bytes }'
done
