#!/usr/bin/env bash
# Schemathesis (PyPI) against a live collector: every operation of
# collector/src/api/openapi.yaml (push and the Alertmanager webhook have
# their own hostile-input tests) is called with generated valid and invalid
# data, as an operator; no answer may be a 5xx, and every answer must match
# the document (status code, content type, schema, headers).
#
# Usage: tests/schemathesis.sh [COLLECTOR_BINARY]. Installs schemathesis
# into a virtualenv under target/ when `st` is missing (python3-venv from
# Debian when needed). SEED fixes the generated data (default: fixed, so CI
# is reproducible; SEED=random explores more). EXAMPLES per operation (50).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=${1:-$target/debug/vedette-collector}
version=4.32.5

st=$(command -v st || true)
if [[ -z $st ]]; then
    venv="$target/schemathesis-venv"
    if [[ ! -x $venv/bin/st ]]; then
        if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
        fi
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "schemathesis==$version"
    fi
    st=$venv/bin/st
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/c.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/data
agents: [{token: agent-token, hosts: ['*']}]
api_tokens: [{name: schemathesis, token: st-token, role: operator}]
rules:
  - {name: disk_full, metric: filesystem_used_ratio, above: 0.9}
  - {name: check_critical, check: '*', status: critical}
services:
  - {name: shop, target: 0.999, hosts: ['*'], checks: [api]}
YAML
"$bin" --config "$work/c.yaml" >"$work/collector.log" 2>&1 &
for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
if ! curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; then
    echo "schemathesis: the collector was not ready within 20 s; its log:" >&2
    cat "$work/collector.log" >&2
    exit 1
fi
# Data to read: two hosts, an open incident on each, a check per host.
for i in 1 2; do
    now=$(date +%s%3N)
    curl -fs -H 'Authorization: Bearer agent-token' -H 'content-type: application/json' \
        -d "{\"version\":1,\"agent\":{\"host\":\"web-0$i\",\"version\":\"t\",\"labels\":{\"role\":\"<b>web</b>\"},\"boot_id\":\"b\",\"interval_s\":10},\"seq\":1,\"sent_at_ms\":$now,
             \"samples\":[{\"name\":\"filesystem_used_ratio\",\"labels\":{\"mountpoint\":\"/\"},\"ts_ms\":$now,\"value\":0.95}],
             \"checks\":[{\"name\":\"api\",\"kind\":\"http\",\"ts_ms\":$now,\"status\":\"critical\",\"message\":\"HTTP 500\",\"latency_s\":0.1}]}" \
        "http://127.0.0.1:$port/api/v1/push" >/dev/null
done

seed=()
[[ ${SEED:-fixed} == random ]] || seed=(--seed "${SEED:-19}")
status=0
"$st" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    -H "Authorization: Bearer st-token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "${EXAMPLES:-50}" "${seed[@]}" \
    --exclude-path /api/v1/push --exclude-path /api/v1/alertmanager \
    --report junit --report-dir "$work/report" || status=$?
if ((status != 0)); then
    echo "schemathesis: FAILED (collector log follows)"
    tail -50 "$work/collector.log"
else
    echo "schemathesis: ok"
fi
exit "$status"
