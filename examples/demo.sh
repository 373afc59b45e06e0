#!/usr/bin/env bash
# pi end to end on a fresh Debian 12 machine, as root, in about two minutes plus build time:
#
#   bash examples/demo.sh
#
# Builds pi, starts the daemon on a private socket and store under a temporary directory, enrolls
# a TOTP token for root (QR code for an authenticator app), computes the current code with
# oathtool (standing in for the phone) and logs in through the real libpam with pamtester.
# libpam_wrapper makes PAM read a private service file, so nothing in /etc is changed.
# Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -t 1 ]; then
    step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    step() { printf '\n== %s\n' "$*"; }
fi
fail() { echo "demo FAILED: $*" >&2; exit 1; }

step "Installing build and demo dependencies (skipped if present)"
bash tests/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

step "Building the workspace"
cargo build --workspace
bin="${CARGO_TARGET_DIR:-target}/debug"
[ -x "$bin/pid" ] && [ -x "$bin/pictl" ] && [ -f "$bin/libpam_pi.so" ] ||
    fail "the build did not produce $bin/pid, $bin/pictl and $bin/libpam_pi.so"
module="$(cd "$bin" && pwd)/libpam_pi.so"

work="$(mktemp -d /tmp/pi-demo.XXXXXX)"
chmod 0755 "$work"
daemon=""
cleanup() {
    if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
        kill -TERM "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step "Configuration ($work/pid.toml)"
cat >"$work/pid.toml" <<EOF
# Everything private to this demo; a real install uses /etc/pi/pid.toml and the defaults.
version = 1
socket = "$work/pid.sock"
state_dir = "$work/state"
enckey_file = "$work/enckey"
EOF
cat "$work/pid.toml"
"$bin/pid" --check-config "$work/pid.toml" >/dev/null || fail "pid --check-config refused the config"

step "Starting the daemon"
"$bin/pid" --config "$work/pid.toml" 2>"$work/pid.log" &
daemon=$!
export PI_SOCKET="$work/pid.sock"
for _ in $(seq 1 100); do
    "$bin/pictl" status >/dev/null 2>&1 && break
    kill -0 "$daemon" 2>/dev/null || { cat "$work/pid.log" >&2; fail "pid exited at start"; }
    sleep 0.1
done
"$bin/pictl" status || { cat "$work/pid.log" >&2; fail "pid does not answer on $PI_SOCKET"; }

step "Enrolling a TOTP token for root"
# The answer shows the serial, the otpauth:// URL, the base32 key and a QR code for an
# authenticator app. It is the only time the key is ever shown.
enrolled="$("$bin/pictl" token enroll totp --user root --qr --description "demo token")" ||
    fail "enrollment refused"
printf '%s\n' "$enrolled"
# The phone app would read the key from the QR code; the demo reads it from the otpauth URL.
key="$(grep -o 'secret=[A-Za-z2-7]*' <<<"$enrolled" | head -n 1 | cut -d= -f2)"
[ -n "$key" ] || fail "no otpauth URL with a secret in the enrollment output"

step "Logging in as root through libpam (pamtester + pam_pi)"
mkdir "$work/pam.d"
cat >"$work/pam.d/pi-demo" <<EOF
auth     required  $module socket=$work/pid.sock
account  required  pam_permit.so
EOF
cat "$work/pam.d/pi-demo"
login() {
    printf '%s\n' "$1" |
        LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$work/pam.d" \
            pamtester pi-demo root authenticate 2>&1 | grep -v '^PWRAP_ERROR'
    return "${PIPESTATUS[1]}"
}
code="$(oathtool --totp --base32 "$key")"   # what the phone app shows right now
echo "answering the prompt with the current code from oathtool"
login "$code" || { cat "$work/pid.log" >&2; fail "the right code was refused"; }
echo "login accepted"

step "Replaying the same code"
if login "$code"; then
    fail "a replayed code was accepted"
fi
echo "replay refused"

step "What the administrator sees"
"$bin/pictl" token list --user root
"$bin/pictl" audit show --limit 5

step "Stopping the daemon"
kill -TERM "$daemon"
wait "$daemon" || fail "pid did not exit cleanly on SIGTERM"
daemon=""
echo "demo finished: login accepted, replay refused"
