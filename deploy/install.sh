#!/usr/bin/env bash
# Installs vedette on this machine without a package manager (the .debs do
# the same through dpkg). Run it again to upgrade: binaries and units are
# replaced, configs and data are kept.
#
#   deploy/install.sh                          # both, from target/release
#   deploy/install.sh --only agent             # an agent-only host
#   deploy/install.sh --from vedette.tar.gz    # binaries from a tarball (or --from DIR)
#   deploy/install.sh --uninstall              # remove; keep configs and data
#   deploy/install.sh --uninstall --purge      # remove configs, data and users too
#
# What goes where:
#   /usr/bin/vedette-{agent,collector}            0755
#   /etc/systemd/system/vedette-{agent,collector}.service
#   /etc/vedette/{agent,collector}.yaml           0640 root:vedette-<name>, only if
#                                                 missing (else the shipped one lands
#                                                 beside it as .yaml.dist)
#   /var/lib/vedette-{agent,collector}/           0700 vedette-<name> (spool, store)
#   system users vedette-agent, vedette-collector (no login, no home)
#
# DESTDIR=/some/dir stages everything under that directory instead (no users,
# no ownership changes, no systemctl): for packaging, and for testing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
destdir="${DESTDIR:-}"
from=""
only=(agent collector)
action=install
purge=no

die() {
    echo "install.sh: $*" >&2
    exit 64
}

while (($#)); do
    case "$1" in
    --from)
        (($# >= 2)) || die "--from needs a directory or a .tar.gz"
        from="$2"
        shift 2
        ;;
    --only)
        (($# >= 2)) || die "--only needs agent or collector"
        case "$2" in agent | collector) only=("$2") ;; *) die "--only $2: expected agent or collector" ;; esac
        shift 2
        ;;
    --uninstall)
        action=uninstall
        shift
        ;;
    --purge)
        purge=yes
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ $purge == no || $action == uninstall ]] || die "--purge goes with --uninstall"

# Users, ownership and systemctl only on the real root filesystem, as root.
live=no
if [[ -z $destdir ]]; then
    ((EUID == 0)) || die "run as root (or set DESTDIR to stage the files somewhere)"
    live=yes
fi
systemd_running=no
[[ $live == yes && -d /run/systemd/system ]] && systemd_running=yes

say() { echo "  $*"; }

binaries_from() {
    local src="$1"
    if [[ -z $src ]]; then
        src="${CARGO_TARGET_DIR:-$root/target}/release"
        [[ -x $src/vedette-agent || -x $src/vedette-collector ]] ||
            die "no release build in $src: run 'cargo build --release --locked' first, or pass --from DIR|TARBALL"
    fi
    if [[ -f $src ]]; then
        unpacked="$(mktemp -d)"
        trap 'rm -rf "$unpacked"' EXIT
        tar -xzf "$src" -C "$unpacked" || die "$src: not a readable .tar.gz"
        src="$unpacked"
    fi
    [[ -d $src ]] || die "$src: no such directory or tarball"
    bindir="$src"
}

# The first executable named $1 under $bindir.
binary() {
    local found
    found="$(find "$bindir" -name "$1" -type f -perm -u+x -print -quit)"
    [[ -n $found ]] || die "no executable $1 in ${from:-the release build} ($bindir)"
    echo "$found"
}

install_one() {
    local name="vedette-$1" user="vedette-$1"
    local conf="$destdir/etc/vedette/$1.yaml" state="$destdir/var/lib/$name"
    echo "$name:"
    install -D -m 0755 "$(binary "$name")" "$destdir/usr/bin/$name"
    say "binary   /usr/bin/$name ($("$destdir/usr/bin/$name" --version))"
    install -D -m 0644 "$root/systemd/$name.service" "$destdir/etc/systemd/system/$name.service"
    say "unit     /etc/systemd/system/$name.service"
    install -d -m 0755 "$destdir/etc/vedette"
    if [[ ! -e $conf ]]; then
        install -m 0640 "$root/deploy/configs/$1.yaml" "$conf"
        say "config   /etc/vedette/$1.yaml (new)"
    elif cmp -s "$root/deploy/configs/$1.yaml" "$conf"; then
        say "config   /etc/vedette/$1.yaml (unchanged)"
    else
        install -m 0640 "$root/deploy/configs/$1.yaml" "$conf.dist"
        say "config   /etc/vedette/$1.yaml (yours, kept; the shipped one is $1.yaml.dist)"
    fi
    install -d -m 0700 "$state"
    say "data     /var/lib/$name"
    if [[ $live == yes ]]; then
        # The package's own postinst: the user, the config's group, the data
        # dir's owner (one place for both ways of installing).
        local had_user=yes
        getent passwd "$user" >/dev/null || had_user=no
        sh "$root/deploy/debian/$1/postinst" configure
        [[ $had_user == yes ]] || say "user     $user (new)"
    fi
    "$destdir/usr/bin/$name" check-config "$conf" >/dev/null ||
        die "/etc/vedette/$1.yaml does not pass check-config (see above); fix it before starting $name"
    if [[ $systemd_running == yes ]]; then
        systemctl daemon-reload
        if systemctl is-active --quiet "$name"; then
            systemctl restart "$name"
            say "restarted (it was running)"
        else
            say "start it: systemctl enable --now $name"
        fi
    fi
}

uninstall_one() {
    local name="vedette-$1" user="vedette-$1"
    echo "$name:"
    if [[ $systemd_running == yes ]]; then
        systemctl disable --now "$name" 2>/dev/null || true
    fi
    rm -f "$destdir/usr/bin/$name" "$destdir/etc/systemd/system/$name.service"
    [[ $systemd_running == yes ]] && systemctl daemon-reload
    say "removed  /usr/bin/$name, /etc/systemd/system/$name.service"
    if [[ $purge == yes ]]; then
        rm -f "$destdir/etc/vedette/$1.yaml" "$destdir/etc/vedette/$1.yaml.dist"
        rm -rf "$destdir/var/lib/$name"
        say "purged   /etc/vedette/$1.yaml, /var/lib/$name"
        if [[ $live == yes ]] && getent passwd "$user" >/dev/null; then
            userdel "$user" 2>/dev/null || true
            say "purged   user $user"
        fi
    else
        say "kept     /etc/vedette/$1.yaml, /var/lib/$name (--purge removes them)"
    fi
}

if [[ $action == install ]]; then
    binaries_from "$from"
    for c in "${only[@]}"; do install_one "$c"; done
else
    for c in "${only[@]}"; do uninstall_one "$c"; done
    # The shared directory goes once nothing of ours is left in it.
    rmdir "$destdir/etc/vedette" 2>/dev/null || true
fi
