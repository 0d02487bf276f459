#!/usr/bin/env bash
# Measures what the spine issue reports, on release binaries, on loopback:
#  1. the agent's RSS and CPU time after 60 s on its defaults (10 s interval,
#     local /metrics on), read from /proc;
#  2. breach-to-incident time: N agents (fresh host names, 1 s interval) push
#     to a collector whose rule every host breaches at once; for each incident
#     detected_at - started_at is the time from the breaching sample being
#     taken to the incident being persisted (sampling + gzip + push + ingest
#     + evaluation + SQLite commit).
# Usage: tests/measure-spine.sh [N]   (default 20). Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
cargo build --release --locked -q -p vedette-collector -p vedette-agent
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=19850
cat >"$work/collector.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/data
rules:
  - {name: always, metric: uptime_seconds, above: 0}
YAML
"$bin/vedette-collector" --config "$work/collector.yaml" 2>"$work/collector.log" &
until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done

echo "binary sizes (stripped release): agent $(stat -c %s "$bin/vedette-agent") B, collector $(stat -c %s "$bin/vedette-collector") B"

printf 'host: rss-probe\ncollector: {url: "http://127.0.0.1:%s"}\n' "$port" >"$work/agent.yaml"
"$bin/vedette-agent" --config "$work/agent.yaml" 2>"$work/agent.log" &
agent=$!
sleep 60
ticks=$(getconf CLK_TCK)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$agent/stat")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
echo "agent after 60 s (10 s interval): RSS ${rss} KiB, CPU $(( (utime + stime) * 1000 / ticks )) ms total"
kill -TERM "$agent"; wait "$agent" || true

for i in $(seq 1 "$n"); do
    printf 'host: mttd-%s\ncollector: {url: "http://127.0.0.1:%s"}\ninterval: 1s\nlisten: off\n' "$i" "$port" >"$work/a$i.yaml"
    "$bin/vedette-agent" --config "$work/a$i.yaml" 2>/dev/null &
    pid=$!
    until curl -fs "http://127.0.0.1:$port/api/v1/incidents" | grep -q "\"mttd-$i\""; do sleep 0.05; done
    kill -TERM "$pid"; wait "$pid" || true
done
curl -fs "http://127.0.0.1:$port/api/v1/incidents?limit=1000" | python3 -c '
import json, sys, datetime as d
t = lambda s: d.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
v = sorted(t(i["detected_at"]) - t(i["started_at"]) for i in json.load(sys.stdin) if i["host"].startswith("mttd-"))
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"breach-to-incident over {len(v)} incidents: p50 {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, max {v[-1]:.0f} ms")
'
