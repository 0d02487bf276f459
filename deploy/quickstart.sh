#!/usr/bin/env bash
# Builds vedette and runs a collector plus a local agent on their embedded
# defaults (collector on 127.0.0.1:9850, agent metrics on 127.0.0.1:9851),
# with their state and logs in ${XDG_STATE_HOME:-~/.local/state}/vedette-quickstart/
# (VEDETTE_QUICKSTART_DIR to choose another; nothing is written in the source
# tree but the build). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p vedette-collector -p vedette-agent
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
work="${VEDETTE_QUICKSTART_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/vedette-quickstart}"
mkdir -p "$work"
cd "$work"

STATE_DIRECTORY="$work/collector" "$bin/vedette-collector" 2>>collector.log &
collector=$!
agent=""
stop() {
    trap - INT TERM
    echo
    echo "stopping vedette…"
    kill -TERM $agent $collector 2>/dev/null || true
    wait $agent $collector 2>/dev/null || true
    exit 0
}
trap stop INT TERM

# The incidents command succeeds once the collector's API answers.
for _ in $(seq 1 100); do
    if "$bin/vedette-collector" incidents list >/dev/null 2>&1; then break; fi
    if ! kill -0 "$collector" 2>/dev/null; then
        echo "the collector exited; its log:" >&2
        tail -20 collector.log >&2
        exit 1
    fi
    sleep 0.1
done
STATE_DIRECTORY="$work/agent" "$bin/vedette-agent" 2>>agent.log &
agent=$!

cat <<MSG

vedette is running: a collector and a local agent, on embedded defaults.

  console    http://127.0.0.1:9850/          <- open this: incidents, hosts, services, changes
  incidents  http://127.0.0.1:9850/api/v1/incidents
             $bin/vedette-collector incidents list
  metrics    http://127.0.0.1:9850/metrics   (every host's samples, vedette_host_up, incident counters)
  agent      http://127.0.0.1:9851/metrics   (this host's latest sample, delivery health)
  health     http://127.0.0.1:9850/readyz
  logs       $work/collector.log, $work/agent.log
  data       $work/collector/vedette.db (the agent's spool: $work/agent/spool)

Default rules: host_down (60 s silent), cpu_high, memory_high, disk_full, check_critical.
Stop the agent (kill $agent) and host_down opens within about a minute,
on the console's Now page without reloading it.
Ctrl-C stops both.
MSG
wait
