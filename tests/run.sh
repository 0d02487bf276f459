#!/usr/bin/env bash
# Runs every test: unit, integration and end-to-end (real binaries over real
# sockets), then builds, installs and purges the Debian packages
# (tests/packages.sh). Installs what the tests need when it is missing: on Debian, the
# packages below via apt-get (run as root, as CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, by the command they provide.
# (A path is checked as a file, a bare name on PATH.)
declare -A needs=(
    [kill]=procps                                               # end-to-end tests signal the daemons
    [/usr/lib/nagios/plugins/check_dummy]=monitoring-plugins-basic  # command checks run real plugins
    [/usr/sbin/dnsmasq]=dnsmasq-base                            # dns checks ask a real server
    [systemd-analyze]=systemd                                   # the units are verified and scored
    [promtool]=prometheus                                       # /metrics is linted, scraped and queried, rules unit-tested
    [prometheus-alertmanager]=prometheus-alertmanager           # notifications reach a real Alertmanager
    [curl]=curl                                                 # tests/schemathesis.sh feeds its collector
    [python3]=python3                                           # schemathesis (PyPI) runs in a virtualenv
    [/usr/bin/chromium]=chromium                                # the console is tested in a real browser
    [chromedriver]=chromium-driver                              # …driven over WebDriver
    [/usr/bin/prometheus-node-exporter]=prometheus-node-exporter   # the agent's numbers are compared with it
    [bindfs]=bindfs                                             # a FUSE mount whose statvfs hangs
)
missing=()
for cmd in "${!needs[@]}"; do
    if [[ $cmd == /* ]]; then
        [[ -x $cmd ]] || missing+=("${needs[$cmd]}")
    else
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
    fi
done
if ((${#missing[@]})); then
    echo "installing test dependencies: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# The REST API against its OpenAPI document, fuzzed by schemathesis.
st_status=0
./tests/schemathesis.sh 2>&1 | tee -a "$log" || st_status=$?
# The Debian packages: built, installed with dpkg -i, checked, purged.
pkg_status=0
./tests/packages.sh 2>&1 | tee -a "$log" || pkg_status=$?
# One closing line for the whole workspace (cargo's last line is often an
# empty doc-test run), and the packages' line.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
grep '^schemathesis: ' "$log" | tail -1
grep '^packages: ' "$log" | tail -1
if ((status == 0)); then status=$st_status; fi
if ((status == 0)); then status=$pkg_status; fi
exit "$status"
