#!/usr/bin/env bash
# Where the time of a PAM login goes, measured inside each pamtester process: N HOTP logins
# through real libpam (pamtester under libpam-wrapper), with pam_phases.c preloaded to timestamp
# dlopen, connect and every send/recv. Prints p10/p50/p90 per phase, in ms:
#
#   pam_phases.sh [-n N] [--pid BIN] [pam_pi|pam_oath]...   (default: N=300, both, target/release)
#
# pam_pi phases: start→connect (libpam, pam_wrapper, module loading), AuthBegin round trip
# (send → last recv of the prompt), the prompt (conversation), AuthContinue round trip (send →
# last recv of the outcome; the daemon's group commit is inside it), after (to process exit,
# pam_end and module unloading). pam_oath does all its work in-process: only its total compares.
# Runs as root (pictl administers pid as uid 0); needs cc, pamtester, libpam-wrapper, oathtool.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=300
PID_BIN=$TARGET/release/pid
MODULES=()
die() {
    echo "pam_phases.sh: $*" >&2
    exit 1
}
while (($#)); do
    case $1 in
        -n) N=${2:-}; shift 2 || die "-n needs a number" ;;
        --pid) PID_BIN=${2:-}; shift 2 || die "--pid needs a path" ;;
        pam_pi | pam_oath) MODULES+=("$1"); shift ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "-n must be a positive integer, got '$N'"
((${#MODULES[@]})) || MODULES=(pam_pi pam_oath)
[[ $(id -u) == 0 ]] || die "run as root (pictl administers pid as uid 0; the logins are root's)"
for tool in cc pamtester oathtool python3; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install gcc pamtester oathtool python3)"
done
WRAPPER_SO=$(dpkg -L libpam-wrapper 2>/dev/null | grep '/libpam_wrapper\.so$' | head -n 1) || true
[[ -n $WRAPPER_SO ]] || die "libpam_wrapper.so not found (apt-get install libpam-wrapper)"
PICTL_BIN=$(dirname "$PID_BIN")/pictl
PAM_PI_SO=$(dirname "$PID_BIN")/libpam_pi.so
[[ -x $PICTL_BIN && -f $PAM_PI_SO ]] || PICTL_BIN=$TARGET/release/pictl PAM_PI_SO=$TARGET/release/libpam_pi.so
[[ -x $PID_BIN && -x $PICTL_BIN && -f $PAM_PI_SO ]] ||
    die "need pid, pictl and libpam_pi.so (cargo build --release --workspace)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pi-pam-phases.XXXXXX")
DAEMON=
cleanup() {
    [[ -z $DAEMON ]] || kill "$DAEMON" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cc -O2 -shared -fPIC -o "$WORK/pam_phases.so" "$HERE/pam_phases.c" -ldl
KEY=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
LOCK=${TMPDIR:-/tmp}/pi-tests-pam-wrapper.lock # the lock tests/src/pam.rs holds (PAM_COMPARE.md)

logins() { # NAME SERVICE_DIR FIRST_COUNTER
    local log=$WORK/$1.log code
    for code in $(oathtool --hotp --digits=6 --counter="$3" --window="$((N - 1))" "$KEY"); do
        echo "$code" | flock "$LOCK" env LD_PRELOAD="$WRAPPER_SO $WORK/pam_phases.so" \
            PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$2" PAM_PHASES_LOG="$log" \
            pamtester "$1" root authenticate >/dev/null 2>&1 || die "$1: a login failed"
    done
    python3 - "$1" "$log" <<'PY'
import statistics, sys
name, path = sys.argv[1:3]
runs = []
for line in open(path):
    event, started, ended = line.split()
    if event == "start":
        runs.append([])
    runs[-1].append((event, int(started), int(ended)))
phases = {}
def add(phase, ns):
    phases.setdefault(phase, []).append(ns / 1e6)
for r in runs:
    start, end = r[0][1], r[-1][1]
    add("total in-process", end - start)
    sends = [e for e in r if e[0] == "send"]
    recvs = [e for e in r if e[0] == "recv"]
    connects = [e for e in r if e[0] == "connect"]
    if len(sends) == 2 and len(recvs) >= 4 and connects:
        begin_done = max(e[2] for e in recvs if e[1] < sends[1][1])
        add("start -> connect", connects[0][1] - start)
        add("AuthBegin round trip", begin_done - sends[0][1])
        add("prompt", sends[1][1] - begin_done)
        add("AuthContinue round trip", recvs[-1][2] - sends[1][1])
        add("after the outcome", end - recvs[-1][2])
print(f"{name}: {len(runs)} logins (ms)")
for phase, v in phases.items():
    v.sort()
    print(f"  {phase:24s} p10 {v[len(v) // 10]:6.3f}  p50 {statistics.median(v):6.3f}  p90 {v[len(v) * 9 // 10]:6.3f}")
PY
}

for m in "${MODULES[@]}"; do
    mkdir -p "$WORK/$m"
    case $m in
        pam_pi)
            printf 'version = 1\nsocket = "%s"\nstate_dir = "%s"\nenckey_file = "%s"\n' \
                "$WORK/pid.sock" "$WORK/state" "$WORK/enckey" >"$WORK/pid.toml"
            "$PID_BIN" --config "$WORK/pid.toml" </dev/null >"$WORK/pid.log" 2>&1 &
            DAEMON=$!
            for _ in $(seq 100); do
                "$PICTL_BIN" --socket "$WORK/pid.sock" status >/dev/null 2>&1 && break
                sleep 0.1
            done
            "$PICTL_BIN" --socket "$WORK/pid.sock" token enroll hotp --user root --otpkey "$KEY" \
                --serial PHASES1 --no-qr >/dev/null || die "pictl token enroll failed: $(cat "$WORK/pid.log")"
            printf 'auth required %s socket=%s\naccount required pam_permit.so\n' \
                "$PAM_PI_SO" "$WORK/pid.sock" >"$WORK/$m/pam_pi"
            logins pam_pi "$WORK/$m" 0
            kill "$DAEMON"
            wait "$DAEMON" 2>/dev/null || true
            DAEMON=
            ;;
        pam_oath)
            SO=$(dpkg -L libpam-oath 2>/dev/null | grep '/security/pam_oath\.so$' | head -n 1) || true
            [[ -n $SO ]] || die "pam_oath.so not found (apt-get install libpam-oath)"
            (umask 077 && printf 'HOTP root - %s\n' "$KEY" >"$WORK/users.oath")
            printf 'auth required %s usersfile=%s window=20 digits=6\naccount required pam_permit.so\n' \
                "$SO" "$WORK/users.oath" >"$WORK/$m/pam_oath"
            logins pam_oath "$WORK/$m" 0
            ;;
    esac
done
