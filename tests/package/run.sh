#!/usr/bin/env bash
# The Debian packages, built, installed, used, upgraded and purged on this machine:
#
#   bash tests/package/run.sh
#
# Builds version N (debian/changelog) and N+1 (the same source with one more changelog entry)
# with dpkg-buildpackage, checks them with lintian, installs N with apt, starts the daemon the way
# its systemd units do (the socket passed in by systemd-socket-activate, the unit's ExecStart),
# enrolls a token with the installed pictl and logs in with pamtester through the installed
# pam_pi.so and a service file /etc/pam.d/pi-pkgtest; upgrades to N+1 and logs in with the next
# code while the one used before stays spent; in a throwaway copy of /etc/pam.d (a private mount
# namespace) enables the pam-auth-update profile, reads the stack it writes, and removes the
# packages (pam_pi leaves the stack; the store and key stay); purges, and checks that nothing a
# purge should remove is left.
#
# It installs packages and writes /etc/pi, /var/lib/pi and /etc/pam.d/pi-pkgtest: run it on a
# machine made for tests (CI runs it, tests/run.sh when PI_PACKAGE_TEST=1). It refuses to start
# if pi is already installed or a daemon answers on /run/pi/pid.sock.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

step() { printf '\n== package test: %s\n' "$*"; }
fail() {
    echo "package test FAILED: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "run it as root (it installs packages)"
export PATH="$HOME/.cargo/bin:$PATH"
for tool in dpkg-buildpackage lintian systemd-socket-activate pamtester oathtool unshare; do
    command -v "$tool" >/dev/null || fail "$tool is missing: bash tests/install-deps.sh installs it"
done
packages=(libpam-pi pi-daemon pictl)
for p in "${packages[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok'; then
        fail "$p is installed already; this test installs and purges it: apt-get purge ${packages[*]}"
    fi
done
[ ! -S /run/pi/pid.sock ] || fail "something serves /run/pi/pid.sock already: stop it first"
[ ! -e /etc/pi ] && [ ! -e /var/lib/pi ] ||
    fail "/etc/pi or /var/lib/pi exists: this test starts from a machine without pi"

work="$(mktemp -d /tmp/pi-package-test.XXXXXX)"
daemon=""
listener=""
# stop_daemon [quiet]: SIGTERM, as systemctl stop sends; unless quiet, check it said STOPPING=1.
stop_daemon() {
    local was="$daemon"
    daemon=""
    if [ -n "$was" ] && kill -0 "$was" 2>/dev/null; then
        kill -TERM "$was"
        wait "$was" 2>/dev/null || true
        [ "${1:-}" = quiet ] || notified STOPPING=1 ||
            fail "the daemon stopped without telling systemd STOPPING=1"
    fi
}
cleanup() {
    stop_daemon quiet
    [ -z "$listener" ] || kill "$listener" 2>/dev/null || true
    rm -f /etc/pam.d/pi-pkgtest
    if dpkg-query -W pi-daemon >/dev/null 2>&1; then
        apt-get purge -y -qq "${packages[@]}" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- build ------------------------------------------------------------------------------------
# The source as tracked (plus what is new and not ignored), copied below target/ (dpkg-buildpackage
# writes its results beside the source directory). Both versions are built from the same path, so
# the second build finds the first's Rust build cache current: only the changelog differs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
version="$(dpkg-parsechangelog -S Version)"
next="$version+pkgtest1"
build_root="$CARGO_TARGET_DIR/package"
src="$build_root/src"
rm -rf "$src" "$build_root"/*.deb "$build_root"/*.changes "$build_root"/*.buildinfo
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$src"
build() {
    (cd "$src" && dpkg-buildpackage -us -uc -b >"$work/build-$1.log" 2>&1) || {
        tail -n 60 "$work/build-$1.log" >&2
        fail "dpkg-buildpackage of version $1 failed (log above)"
    }
    mkdir -p "$work/$1"
    mv "$build_root"/*.deb "$build_root"/*.changes "$build_root"/*.buildinfo "$work/$1/"
}
step "building $version"
build old
step "building $next (the upgrade)"
{
    printf 'pi-2fa (%s) unstable; urgency=medium\n\n  * The upgrade the package test installs.\n\n' "$next"
    printf ' -- pi developers <pi@example.invalid>  %s\n\n' "$(date -R)"
    cat "$src/debian/changelog"
} >"$src/debian/changelog.new"
mv "$src/debian/changelog.new" "$src/debian/changelog"
build new
debs() { for p in "${packages[@]}"; do ls "$work/$1/${p}_"*.deb; done; }
debs old
debs new

step "lintian"
lintian --fail-on error,warning --tag-display-limit 0 "$work"/old/*.changes ||
    fail "lintian reports errors or warnings (override a warning only with a reason)"

# ---- install ----------------------------------------------------------------------------------
step "installing $version"
common_auth_before="$(sha256sum /etc/pam.d/common-auth)"
apt-get install -y -qq $(debs old) >"$work/install.log" 2>&1 || {
    cat "$work/install.log" >&2
    fail "apt-get install of the packages failed"
}
[ "$(sha256sum /etc/pam.d/common-auth)" = "$common_auth_before" ] ||
    fail "installing changed /etc/pam.d/common-auth: the profile must be off by default"
getent group pi-admin >/dev/null || fail "the pi-admin group was not created"
[ "$(stat -c %a /etc/pi/enckey)" = 400 ] || fail "/etc/pi/enckey is not mode 0400"
[ "$(stat -c %a /var/lib/pi)" = 700 ] || fail "/var/lib/pi is not mode 0700"
man -w pictl >/dev/null || fail "man pictl: no page"
MANWIDTH=100 man -P cat pictl 2>/dev/null | grep -q "token" || fail "man pictl does not show the subcommands"
for page in pid.8 pam_pi.8 pid.toml.5; do
    man -w "${page##*.}" "${page%.*}" >/dev/null || fail "man ${page%.*}: no page"
done
/usr/sbin/pid --check-config /etc/pi/pid.toml >/dev/null || fail "the installed pid.toml does not validate"

# ---- the daemon as its units start it ---------------------------------------------------------
unit=/lib/systemd/system/pid.service
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
listen="$(sed -n 's/^ListenStream=//p' /lib/systemd/system/pid.socket)"
[ -n "$exec_start" ] && [ -n "$listen" ] || fail "no ExecStart= in $unit or ListenStream= in pid.socket"
# What the daemon tells systemd (sd_notify), as systemd would read it: one datagram a line.
notify_socket="$work/notify.sock"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    message = s.recv(4096)
    with open(sys.argv[2], "ab") as log:
        log.write(message.replace(b"\n", b" ") + b"\n")
' "$notify_socket" "$work/notify.log" &
listener=$!
for _ in $(seq 1 50); do [ -S "$notify_socket" ] && break; sleep 0.1; done
notified() { grep -q "$1" "$work/notify.log" 2>/dev/null; }
start_daemon() {
    install -d -m 0755 "$(dirname "$listen")"
    rm -f "$listen" "$work/notify.log"
    # shellcheck disable=SC2086 # ExecStart is split into words as systemd does for a plain command
    systemd-socket-activate -l "$listen" -E NOTIFY_SOCKET="$notify_socket" $exec_start \
        2>>"$work/pid.log" &
    daemon=$!
    for _ in $(seq 1 100); do
        [ -S "$listen" ] && pictl status >/dev/null 2>&1 && break
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.1
    done
    pictl status >/dev/null 2>&1 || {
        cat "$work/pid.log" >&2
        fail "the installed daemon does not answer on $listen"
    }
    for _ in $(seq 1 50); do notified READY=1 && return 0; sleep 0.1; done
    cat "$work/pid.log" "$work/notify.log" >&2
    fail "the daemon answers but never told systemd READY=1 (NOTIFY_SOCKET)"
}
step "starting the daemon as pid.socket + pid.service do"
start_daemon
pictl status

key=3132333435363738393031323334353637383930
step "enrolling a token with the installed pictl and logging in through the installed pam_pi.so"
pictl token enroll hotp --user root --otpkey "$key" --no-qr >/dev/null
cat >/etc/pam.d/pi-pkgtest <<'PAM'
auth     required  pam_pi.so
account  required  pam_permit.so
PAM
login() { printf '%s\n' "$1" | pamtester pi-pkgtest root authenticate >>"$work/pam.log" 2>&1; }
code() { oathtool --hotp --counter="$1" "$key"; }
login "$(code 0)" || { cat "$work/pam.log" >&2; fail "login with the first code refused"; }
! login "$(code 0)" || fail "the first code was accepted twice"

step "systemctl reload: pid --check-config, then SIGHUP, as ExecReload= does"
while IFS= read -r reload; do
    # shellcheck disable=SC2086 # as systemd splits a plain command line
    eval "${reload//\$MAINPID/$daemon}" || fail "ExecReload=$reload failed"
done < <(sed -n 's/^ExecReload=//p' "$unit")
for _ in $(seq 1 50); do
    notified RELOADING=1 && [ "$(grep -c READY=1 "$work/notify.log")" -ge 2 ] && break
    sleep 0.1
done
notified 'RELOADING=1.*MONOTONIC_USEC=' || fail "the reload was not told to systemd (RELOADING=1, MONOTONIC_USEC)"
[ "$(grep -c READY=1 "$work/notify.log")" -ge 2 ] || fail "no READY=1 after the reload"
login "$(code 1)" || { cat "$work/pam.log" >&2; fail "a login after the reload was refused"; }

# ---- upgrade ----------------------------------------------------------------------------------
step "upgrading to $next"
stop_daemon
apt-get install -y -qq $(debs new) >"$work/upgrade.log" 2>&1 || {
    cat "$work/upgrade.log" >&2
    fail "the upgrade failed"
}
[ "$(dpkg-query -W -f='${Version}' pi-daemon)" = "$next" ] || fail "pi-daemon is not at $next"
start_daemon
! login "$(code 1)" || fail "after the upgrade, the spent code was accepted again"
login "$(code 2)" || { cat "$work/pam.log" >&2; fail "after the upgrade, the next code was refused"; }

# ---- pam-auth-update and remove, in a throwaway copy of /etc/pam.d ----------------------------
# A private mount namespace sees a copy of /etc/pam.d and /var/lib/pam; the real ones never change.
step "pam-auth-update --enable pi, then remove, in a private copy of /etc/pam.d"
stop_daemon
cp -a /etc/pam.d "$work/pam.d"
cp -a /var/lib/pam "$work/var-lib-pam"
unshare --mount sh -c "
    mount --bind '$work/pam.d' /etc/pam.d &&
    mount --bind '$work/var-lib-pam' /var/lib/pam &&
    pam-auth-update --package --enable pi &&
    cp /etc/pam.d/common-auth '$work/common-auth.enabled' &&
    apt-get remove -y -qq ${packages[*]} >/dev/null
" || fail "pam-auth-update --enable pi or the remove failed"
grep -v '^#' "$work/common-auth.enabled" | grep -v '^$' >"$work/stack"
cat "$work/stack"
permit="$(grep -n 'pam_permit.so' "$work/stack" | cut -d: -f1)"
pi_line="$(grep -n 'pam_pi.so' "$work/stack" | cut -d: -f1)"
[ -n "$pi_line" ] || fail "the enabled profile put no pam_pi.so into common-auth"
grep -Eq '^auth[[:space:]]+required[[:space:]]+pam_pi.so' "$work/stack" ||
    fail "pam_pi.so is not 'auth required' in common-auth"
[ "$pi_line" -gt "$permit" ] ||
    fail "pam_pi.so is not after the password block (in the Additional block)"
! grep -q 'pam_pi.so' "$work/pam.d/common-auth" ||
    fail "removing libpam-pi left pam_pi.so in the enabled common-auth: every login would fail"
[ "$(sha256sum /etc/pam.d/common-auth)" = "$common_auth_before" ] ||
    fail "the real /etc/pam.d/common-auth changed"

step "remove kept the store and the key"
[ -f /etc/pi/enckey ] && [ -d /var/lib/pi ] || fail "remove deleted the key or the store"
[ ! -e /usr/sbin/pid ] || fail "remove left /usr/sbin/pid"

step "purge removes them"
apt-get purge -y -qq "${packages[@]}" >/dev/null
rm -f /etc/pam.d/pi-pkgtest
left=()
for path in /etc/pi /var/lib/pi /run/pi /usr/sbin/pid /usr/bin/pictl /lib/systemd/system/pid.service \
    /lib/systemd/system/pid.socket /usr/share/pam-configs/pi /usr/share/man/man1/pictl.1.gz \
    /usr/share/man/man8/pid.8.gz; do
    [ ! -e "$path" ] || left+=("$path")
done
left+=($(find /lib /usr/lib -name pam_pi.so 2>/dev/null))
[ "${#left[@]}" = 0 ] || fail "purge left: ${left[*]}"
[ "$(sha256sum /etc/pam.d/common-auth)" = "$common_auth_before" ] || fail "common-auth changed"
echo "package test: passed"
