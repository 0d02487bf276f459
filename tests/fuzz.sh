#!/usr/bin/env bash
# Runs each cargo-fuzz target for a set time (not part of CI).
#
# Targets (fuzz/fuzz_targets/): push_decode (the protocol decoder and
# validator on arbitrary bytes, plain and gzip), push_structured (whole
# batches built with `arbitrary`, integers and floats drawn from their
# extremes as often as from the middle, decoded and applied to a real engine
# over an in-memory store), collector_config and agent_config (the YAML
# loaders), perfdata (Nagios plugin output). Each starts from a seed corpus
# made of the shipped configs and a valid batch, kept in fuzz/corpus/.
# A crash leaves its input in fuzz/artifacts/<target>/; reproduce it with
# `cargo +nightly fuzz run <target> <file>`, then turn it into a regression
# test beside the code it broke.
#
# Usage: tests/fuzz.sh [SECONDS per target = 300] [TARGET…]
# Needs the nightly toolchain (rustup) and cargo-fuzz (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(push_decode push_structured collector_config agent_config perfdata)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seed() {
    mkdir -p "fuzz/corpus/$1"
    cp "${@:2}" "fuzz/corpus/$1/" 2>/dev/null || true
}
seed collector_config collector/default.yaml deploy/configs/collector.yaml deploy/configs/fleet/collector.yaml
seed agent_config agent/default.yaml deploy/configs/agent.yaml deploy/configs/fleet/agent.yaml
mkdir -p fuzz/corpus/push_decode fuzz/corpus/push_structured fuzz/corpus/perfdata
printf '{"version":1,"agent":{"host":"web-01","version":"1","labels":{"env":"prod"},"boot_id":"b","interval_s":10},"seq":1,"sent_at_ms":%s,"samples":[{"name":"cpu_usage_ratio","labels":{"cpu":"0"},"ts_ms":%s,"value":0.5}],"checks":[{"name":"web","kind":"http","target":"http://x","ts_ms":%s,"status":"ok","latency_s":0.1,"message":"HTTP 200"}]}' \
    1763700000000 1763700000000 1763700000000 >fuzz/corpus/push_decode/batch.json
gzip -c fuzz/corpus/push_decode/batch.json >fuzz/corpus/push_decode/batch.json.gz
printf "DISK OK - free space: / 3326 MB (56%%);| /=2643MB;5948;5958;0;5968\n/ 15272 MB (77%%);\n/boot 68 MB (69%%);\n| /boot=68MB;88;93;0;98\n/home=69357MB;253404;253409;0;253414 'a b'=1.5s;;;; x=U\n" >fuzz/corpus/perfdata/disk.txt

status=0
for t in "${targets[@]}"; do
    echo "== $t for ${seconds}s"
    if ! cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048; then
        echo "!! $t failed: see fuzz/artifacts/$t/"
        status=1
    fi
done
exit "$status"
