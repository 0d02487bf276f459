#!/usr/bin/env bash
# The Debian packages, for real: builds both .debs with cargo-deb (installed
# when missing), installs them with dpkg -i on this machine, checks what they
# installed (users, config ownership, check-config as the service user, the
# units enabled and verified, conffiles kept across a reinstall), then purges
# them and checks nothing is left. Needs root. Run by tests/run.sh; prints
# "packages: N checks passed, M failed" last and exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

((EUID == 0)) || {
    echo "packages.sh: needs root (dpkg -i)" >&2
    exit 64
}
for p in vedette-agent vedette-collector; do
    if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        echo "packages.sh: $p is installed on this machine; not touching it (dpkg --purge it to run this test)" >&2
        exit 64
    fi
done

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "installing cargo-deb"
    cargo install cargo-deb --locked --version "^3" --quiet
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
rm -f "$target"/debian/vedette-*.deb
cargo deb --locked -p vedette-collector
cargo deb --locked -p vedette-agent --profile agent

passed=0
failed=0
check() {
    local what="$1"
    shift
    if "$@" >/tmp/vedette-packages-check.log 2>&1; then
        echo "ok: $what"
        passed=$((passed + 1))
    else
        echo "FAIL: $what"
        sed 's/^/    /' /tmp/vedette-packages-check.log
        failed=$((failed + 1))
    fi
}
is() { [[ "$1" == "$2" ]] || { echo "expected '$2', got '$1'"; return 1; }; }
as_user() { setpriv --reuid "$1" --regid "$1" --clear-groups -- "${@:2}"; }
fails() { ! "$@"; }

purge() { dpkg --purge vedette-agent vedette-collector >/dev/null 2>&1 || true; }
trap purge EXIT

debs=("$target"/debian/vedette-collector_*.deb "$target"/debian/vedette-agent_*.deb)
check "dpkg -i both packages" dpkg -i "${debs[@]}"
for c in agent collector; do
    n="vedette-$c"
    check "$n: system user without a login" is "$(getent passwd "$n" | cut -d: -f7)" /usr/sbin/nologin
    check "$n: config root:$n 0640" is "$(stat -c '%a %U:%G' /etc/vedette/$c.yaml)" "640 root:$n"
    check "$n: data dir $n 0700" is "$(stat -c '%a %U' /var/lib/$n)" "700 $n"
    check "$n: check-config on the installed config" "$n" check-config /etc/vedette/$c.yaml
    check "$n: the service user can read its config" as_user "$n" "$n" check-config /etc/vedette/$c.yaml
    check "$n: other users cannot" fails as_user nobody "$n" check-config /etc/vedette/$c.yaml
    check "$n: unit enabled" test -L /etc/systemd/system/multi-user.target.wants/$n.service
    check "$n: installed unit verifies" systemd-analyze verify /usr/lib/systemd/system/$n.service
    check "$n: config is a conffile" grep -qx /etc/vedette/$c.yaml /var/lib/dpkg/info/$n.conffiles
done

# An operator's edit survives a reinstall (an upgrade to the same version).
echo "# the operator's edit" >>/etc/vedette/agent.yaml
check "dpkg -i again (upgrade path)" dpkg -i --force-confold "${debs[@]}"
check "vedette-agent: edited config kept" grep -qx "# the operator's edit" /etc/vedette/agent.yaml
check "vedette-agent: ownership kept" is "$(stat -c '%a %U:%G' /etc/vedette/agent.yaml)" "640 root:vedette-agent"

check "dpkg --purge both" dpkg --purge vedette-agent vedette-collector
for c in agent collector; do
    n="vedette-$c"
    check "$n: purged binary, config, data, unit link" \
        fails test -e /usr/bin/$n -o -e /etc/vedette/$c.yaml -o -e /var/lib/$n \
        -o -L /etc/systemd/system/multi-user.target.wants/$n.service
done

echo "packages: $passed checks passed, $failed failed"
((failed == 0))
