#!/usr/bin/env bash
# Root's PAM logins (pamtester under libpam-wrapper, pam_pi against a private pid) while an
# unprivileged account floods the daemon's socket with every kind of connection piflood makes,
# as `nobody` and as a set-uid root program started by uid 1 (as su and sudo run). Prints the
# latency percentiles of N logins without and N with the flood. The figures of
# docs/security.md come from here.
#
#   flood.sh [-n N] [--retry-ms MS]     N logins per phase (default 300); MS: how soon the
#                                       flood re-opens a slot the daemon refused or closed
#                                       (default 1000; 0 = at once, a flood that also competes
#                                       for the CPU)
#
# Runs as root. Uses target/release if it holds pid, pictl, piflood and libpam_pi.so, else
# target/debug (`cargo build --workspace [--release]` first). Nothing outside a temp dir is
# changed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=300
RETRY_MS=1000
while (($#)); do
    case $1 in
        -n) N=${2:?}; shift 2 ;;
        --retry-ms) RETRY_MS=${2:?}; shift 2 ;;
        *) sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "flood.sh: run as root" >&2; exit 1; }
for tool in pamtester oathtool setpriv python3; do
    command -v "$tool" >/dev/null || { echo "flood.sh: $tool not found (bash tests/install-deps.sh)" >&2; exit 1; }
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=
for p in release debug; do
    if [[ -x $TARGET/$p/pid && -x $TARGET/$p/pictl && -x $TARGET/$p/piflood && -f $TARGET/$p/libpam_pi.so ]]; then
        BIN=$TARGET/$p
        break
    fi
done
[[ -n $BIN ]] || { echo "flood.sh: build first: cargo build --workspace --release" >&2; exit 1; }

W=$(mktemp -d /tmp/pi-flood-bench.XXXXXX)
chmod 0755 "$W"
PID_PID=
cleanup() {
    [[ -n $PID_PID ]] && kill "$PID_PID" 2>/dev/null && wait "$PID_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

cat >"$W/pid.toml" <<EOF
socket = "$W/pid.sock"
state_dir = "$W/state"
enckey_file = "$W/enckey"
log_level = "warn"
EOF
"$BIN/pid" --config "$W/pid.toml" 2>"$W/pid.log" &
PID_PID=$!
for _ in $(seq 100); do [[ -S $W/pid.sock ]] && break; sleep 0.05; done
KEY=3132333435363738393031323334353637383930
PI_SOCKET=$W/pid.sock "$BIN/pictl" token enroll hotp --user root --otpkey "$KEY" >/dev/null

mkdir "$W/pam.d"
echo "auth required $BIN/libpam_pi.so socket=$W/pid.sock" >"$W/pam.d/pi-flood-bench"
echo "account required pam_permit.so" >>"$W/pam.d/pi-flood-bench"
mapfile -t CODES < <(oathtool --hotp --counter 0 -w $((2 * N)) "$KEY")

# N logins with codes FROM..FROM+N-1; prints p50 p90 p99 max in ms.
logins() {
    local from=$1 i t0 t1
    for ((i = from; i < from + N; i++)); do
        t0=$(date +%s%N)
        echo "${CODES[$i]}" | LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 \
            PAM_WRAPPER_SERVICE_DIR="$W/pam.d" pamtester pi-flood-bench root authenticate \
            >/dev/null 2>&1 || { echo "flood.sh: login $i failed" >&2; exit 1; }
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
    done | python3 -c '
import sys
s = sorted(int(l) / 1000 for l in sys.stdin)
at = lambda q: s[max(1, -(-len(s) * q // 100)) - 1]
print(f"p50 {at(50):.1f} ms, p90 {at(90):.1f}, p99 {at(99):.1f}, max {s[-1]:.1f}")'
}

echo "binaries: $BIN; $N logins per phase; flood re-opens refused slots after $RETRY_MS ms"
echo "quiet:        $(logins 0)"
FLOOD_SECS=$((N / 5 + 30))
setpriv --reuid=65534 --regid=65534 --clear-groups -- "$BIN/piflood" --socket "$W/pid.sock" \
    --seconds "$FLOOD_SECS" --idle 150 --slow 150 --sessions 150 --keepalive 150 \
    --retry-ms "$RETRY_MS" >"$W/nobody.json" &
NOBODY=$!
setpriv --ruid=1 -- "$BIN/piflood" --socket "$W/pid.sock" --seconds "$FLOOD_SECS" \
    --idle 600 --user daemon --retry-ms "$RETRY_MS" >"$W/su.json" &
SU=$!
sleep 3
echo "under flood:  $(logins "$N")"
kill "$NOBODY" "$SU" 2>/dev/null || true
wait "$NOBODY" "$SU" 2>/dev/null || true
