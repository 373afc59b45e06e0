#!/usr/bin/env bash
# Time N logins through real libpam (pamtester under libpam-wrapper) for three HOTP modules with
# the same key: pam_pi (against a private pid), pam_oath and pam_google_authenticator.
# See tests/bench/PAM_COMPARE.md.
#
#   pam_compare.sh [-n N] [MODULE...]      MODULE: baseline pam_pi pam_oath pam_google_authenticator
#                                          (default: all four, in that order; N default 1000)
#
# baseline is pam_permit.so alone: the cost of starting pamtester and libpam under pam_wrapper,
# which every row pays and which no module can go below.
#
# Runs as root (pictl administers pid as uid 0; pam_google_authenticator switches its file uid).
# Nothing system-wide is changed except installing the Debian packages below if they are missing:
# every module gets its own temp dir with a private PAM service dir, key/secret file and, for
# pam_pi, a daemon with its own socket, store and key file. No /etc/pam.d edits.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PACKAGES=(libpam-oath libpam-google-authenticator oathtool pamtester libpam-wrapper)
ALL_MODULES=(baseline pam_pi pam_oath pam_google_authenticator)

die() {
    echo "pam_compare.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '6,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

N=1000
MODULES=()
while (($#)); do
    case $1 in
        -n) N=${2:-}; shift 2 || usage ;;
        -h | --help) usage ;;
        baseline | pam_pi | pam_oath | pam_google_authenticator) MODULES+=("$1"); shift ;;
        *) usage ;;
    esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "-n must be a positive integer, got '$N'"
((${#MODULES[@]})) || MODULES=("${ALL_MODULES[@]}")

[[ $(id -u) == 0 ]] || die "run as root: pictl administers pid as uid 0 and the logins are for root (use a VM or container)"
command -v python3 >/dev/null || die "python3 not found; apt-get install python3"

# --- packages -------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]} (apt-get)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed; run apt-get update and retry"
fi

module_path() { # PACKAGE NAME.so: the absolute path the package installs the module at
    local path
    path=$(dpkg -L "$1" | grep "/security/$2\$" | head -n 1) || true
    [[ -n $path && -f $path ]] || die "package $1 installs no $2; reinstall it (apt-get install --reinstall $1)"
    echo "$path"
}
PAM_OATH_SO=$(module_path libpam-oath pam_oath.so)
PAM_GA_SO=$(module_path libpam-google-authenticator pam_google_authenticator.so)
WRAPPER_SO=$(dpkg -L libpam-wrapper | grep '/libpam_wrapper\.so$' | head -n 1) || true
[[ -n $WRAPPER_SO ]] || die "libpam-wrapper installs no libpam_wrapper.so; reinstall it"

# --- our binaries -----------------------------------------------------------------------------
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=
for p in release debug; do
    if [[ -x $TARGET/$p/pid && -x $TARGET/$p/pictl && -f $TARGET/$p/libpam_pi.so ]]; then
        PROFILE=$p
        break
    fi
done
if [[ " ${MODULES[*]} " == *" pam_pi "* ]]; then
    [[ -n $PROFILE ]] || die "no pid, pictl and libpam_pi.so under $TARGET/release or $TARGET/debug; run cargo build --release --workspace"
    PID_BIN=$TARGET/$PROFILE/pid
    PICTL_BIN=$TARGET/$PROFILE/pictl
    PAM_PI_SO=$TARGET/$PROFILE/libpam_pi.so
fi

# --- scratch space and cleanup ----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pi-pam-compare.XXXXXX")
DAEMON_PID=
DRIVER_PID=
cleanup() {
    local rc=$?
    if [[ -n $DRIVER_PID ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if ((rc != 0)) && [[ ${PAM_COMPARE_KEEP:-} == 1 ]]; then
        echo "pam_compare.sh: kept $WORK for inspection" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One random 20-byte HOTP key for all three modules. It is a throwaway bench key but is still
# kept out of the output: it only lives in files under $WORK.
KEY=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
[[ ${#KEY} == 40 ]] || die "could not read 20 random bytes from /dev/urandom"
B32KEY=$(python3 -c 'import base64,sys; print(base64.b32encode(bytes.fromhex(sys.argv[1])).decode())' "$KEY")

codes() { # FIRST_COUNTER COUNT FILE: the HOTP codes of counters FIRST.. FIRST+COUNT-1, one a line
    oathtool --hotp --digits=6 --counter="$1" --window="$(($2 - 1))" "$KEY" >"$3"
    [[ $(wc -l <"$3") == "$2" ]] || die "oathtool printed $(wc -l <"$3") codes, expected $2"
}

# --- the timing driver ------------------------------------------------------------------------
# One pamtester process per login, timed alone with perf_counter_ns. The lock is the one the test
# harness (tests/src/pam.rs) holds around every pam_wrapper run: pam_wrapper picks its scratch dir
# among fixed names with a check-then-create race (docs/testing.md), so wrapped processes must
# not start at the same time, here or in a test suite running beside us. The lock is taken
# outside the timed span.
cat >"$WORK/driver.py" <<'PY'
import fcntl, math, os, statistics, subprocess, sys, time

name, svcdir, service, codes_file, wrong_file, wrapper, result_file = sys.argv[1:8]
env = dict(os.environ, LD_PRELOAD=wrapper, PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=svcdir)
env.pop("PAM_WRAPPER_KEEP_DIR", None)
cmd = ["pamtester", service, "root", "authenticate"]
lock_path = os.path.join(os.environ.get("TMPDIR") or "/tmp", "pi-tests-pam-wrapper.lock")
lock = open(lock_path, "a")

def login(code):
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        t0 = time.perf_counter_ns()
        p = subprocess.run(cmd, input=code + "\n", capture_output=True, text=True, env=env)
        t1 = time.perf_counter_ns()
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
    return p, t1 - t0

def pct(sorted_ns, p):  # nearest rank
    return sorted_ns[max(0, math.ceil(p / 100 * len(sorted_ns)) - 1)]

codes = open(codes_file).read().split()
times, failures, first_failure, streak = [], 0, None, 0
for i, code in enumerate(codes):
    p, ns = login(code)
    times.append(ns)
    if p.returncode == 0 and "successfully authenticated" in p.stdout:
        streak = 0
        continue
    failures += 1
    streak += 1
    if first_failure is None:
        first_failure = f"login {i + 1}: exit {p.returncode}\n{p.stdout}{p.stderr}"
    if streak >= 10:
        print(f"{name}: 10 logins in a row failed, giving up", file=sys.stderr)
        break

# The setup must not accept everything: a code outside every window must be refused.
# ("-": the baseline, which accepts everything by design.)
if wrong_file == "-":
    wrong_rejected = None
else:
    wrong = open(wrong_file).read().strip()
    p, _ = login(wrong)
    wrong_rejected = p.returncode != 0 and "Authentication failure" in (p.stdout + p.stderr)
if wrong_rejected is False:
    print(f"{name}: a wrong code was NOT rejected (exit {p.returncode}):\n{p.stdout}{p.stderr}",
          file=sys.stderr)
if first_failure:
    print(f"{name}: {failures} of {len(times)} logins failed; first failure, {first_failure}",
          file=sys.stderr)

s = sorted(times)
ms = lambda ns: ns / 1e6
row = [name, len(times), failures, f"{ms(statistics.median(s)):.2f}", f"{ms(pct(s, 90)):.2f}",
       f"{ms(pct(s, 99)):.2f}", f"{sum(s) / 1e9:.2f}", {True: "yes", False: "NO", None: "n/a"}[wrong_rejected]]
with open(result_file, "a") as f:
    f.write("\t".join(map(str, row)) + "\n")
print(f"{name}: done, {failures} failures, median {row[3]} ms, wrong code rejected: {row[7]}",
      file=sys.stderr)
sys.exit(0 if failures == 0 and wrong_rejected is not False and len(times) == len(codes) else 1)
PY

# A 6-digit code that is none of the codes used in the timed run nor of the 200 after them:
# a correct module rejects it whatever its look-ahead window (20 at most here) and replay rule.
wrong_code() { # FIRST_COUNTER OUT_FILE
    local all=$WORK/all-codes.$$
    oathtool --hotp --digits=6 --counter="$1" --window="$((N + 200))" "$KEY" >"$all"
    python3 -c '
import sys
used = set(open(sys.argv[1]).read().split())
print(next(f"{i:06d}" for i in range(10**6) if f"{i:06d}" not in used))' "$all" >"$2"
    rm -f "$all"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
FAILED=0

run_module() { # NAME DIR SERVICE FIRST_COUNTER|-
    local name=$1 dir=$2 service=$3 first=$4 wrong=$2/wrong
    if [[ $first == - ]]; then
        codes 0 "$N" "$dir/codes"
        wrong=-
    else
        codes "$first" "$N" "$dir/codes"
        wrong_code "$first" "$wrong"
    fi
    echo "$name: $N logins..." >&2
    # In the background so that a signal reaches the trap at once, not after N logins.
    python3 "$WORK/driver.py" "$name" "$dir/svc" "$service" "$dir/codes" "$wrong" \
        "$WRAPPER_SO" "$RESULTS" &
    DRIVER_PID=$!
    wait "$DRIVER_PID" || FAILED=1
    DRIVER_PID=
}

# --- baseline: pam_permit alone --------------------------------------------------------------
bench_baseline() {
    local dir=$WORK/baseline
    mkdir -p "$dir/svc"
    cat >"$dir/svc/pi-bench-$$-baseline" <<EOF
auth     required  pam_permit.so
account  required  pam_permit.so
EOF
    run_module baseline "$dir" pi-bench-$$-baseline -
}

# --- pam_pi -----------------------------------------------------------------------------------
bench_pam_pi() {
    local dir=$WORK/pam_pi sock
    mkdir -p "$dir/svc"
    sock=$dir/pid.sock
    # Only the paths move into the temp dir; everything else is pid's default, as with an
    # installed /etc/pi/pid.toml (log_level "info", to a file here; tokens.hotp_window 10).
    cat >"$dir/pid.toml" <<EOF
version = 1
socket = "$sock"
state_dir = "$dir/state"
enckey_file = "$dir/enckey"
EOF
    "$PID_BIN" --config "$dir/pid.toml" </dev/null >"$dir/pid.log" 2>&1 &
    DAEMON_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        "$PICTL_BIN" --socket "$sock" status >/dev/null 2>&1 && break
        kill -0 "$DAEMON_PID" 2>/dev/null || die "pid exited during startup; its log:
$(cat "$dir/pid.log")"
        sleep 0.1
    done
    ((i < 100)) || die "pid did not answer on $sock within 10 s; its log:
$(cat "$dir/pid.log")"
    "$PICTL_BIN" --socket "$sock" token enroll hotp --user root --otpkey "$KEY" --serial BENCH1 \
        --digits 6 --hash sha1 --no-qr >"$dir/enroll.out" 2>&1 ||
        die "pictl token enroll failed: $(cat "$dir/enroll.out")"
    cat >"$dir/svc/pi-bench-$$-pam_pi" <<EOF
auth     required  $PAM_PI_SO socket=$sock
account  required  pam_permit.so
EOF
    # pid's HOTP tokens start at counter 0 (privacyIDEA semantics).
    run_module pam_pi "$dir" pi-bench-$$-pam_pi 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
}

# --- pam_oath ---------------------------------------------------------------------------------
bench_pam_oath() {
    local dir=$WORK/pam_oath
    mkdir -p "$dir/svc"
    # TYPE USER PASSWORD HEXSECRET: "-" = no password; no counter field = counter 0. pam_oath
    # rewrites the line (counter, last OTP, time) after each success, under <file>.lock.
    (umask 077 && printf 'HOTP root - %s\n' "$KEY" >"$dir/users.oath")
    cat >"$dir/svc/pi-bench-$$-pam_oath" <<EOF
auth     required  $PAM_OATH_SO usersfile=$dir/users.oath window=20 digits=6
account  required  pam_permit.so
EOF
    run_module pam_oath "$dir" pi-bench-$$-pam_oath 0
}

# --- pam_google_authenticator -----------------------------------------------------------------
bench_pam_ga() {
    local dir=$WORK/pam_google_authenticator
    mkdir -p "$dir/svc"
    # Line 1 the base32 key, then options. HOTP_COUNTER 1 is what google-authenticator -c writes;
    # the module checks counters COUNTER..COUNTER+WINDOW_SIZE-1 (default 3) and refuses
    # HOTP_COUNTER 0 outright (every code rejected), so the first valid code is counter 1.
    # No RATE_LIMIT line: rate limiting is off. The file is root's and 0600 (the default
    # allowed_perm), so neither no_strict_owner nor allowed_perm is needed.
    (umask 077 && printf '%s\n" HOTP_COUNTER 1\n' "$B32KEY" >"$dir/secret")
    cat >"$dir/svc/pi-bench-$$-pam_google_authenticator" <<EOF
auth     required  $PAM_GA_SO secret=$dir/secret user=root
account  required  pam_permit.so
EOF
    run_module pam_google_authenticator "$dir" pi-bench-$$-pam_google_authenticator 1
}

# --- run --------------------------------------------------------------------------------------
pkgver() { dpkg-query -W -f='${Version}' "$1"; }
{
    echo "# pam_compare.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname): nproc $(nproc)," \
        "$(free -m | awk '/^Mem:/ {print $2}') MiB RAM"
    echo "# pamtester $(pkgver pamtester), libpam-wrapper $(pkgver libpam-wrapper)," \
        "libpam-oath $(pkgver libpam-oath), libpam-google-authenticator $(pkgver libpam-google-authenticator)"
    if [[ -n ${PID_BIN:-} ]]; then
        rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
        # diff-index reads the tree only (no index refresh): it may call a touched file changed.
        git -C "$ROOT" diff-index --quiet HEAD -- 2>/dev/null || rev="$rev + uncommitted changes"
        echo "# pam_pi: $PROFILE build ($TARGET/$PROFILE), pi commit $rev"
    fi
} >"$WORK/header"

for m in "${MODULES[@]}"; do
    case $m in
        baseline) bench_baseline ;;
        pam_pi) bench_pam_pi ;;
        pam_oath) bench_pam_oath ;;
        pam_google_authenticator) bench_pam_ga ;;
    esac
done

cat "$WORK/header"
python3 - "$RESULTS" <<'PY'
import sys
rows = [["module", "N", "failures", "median_ms", "p90_ms", "p99_ms", "total_s", "wrong_code_rejected"]]
rows += [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
PY
if ((FAILED)); then
    echo "pam_compare.sh: FAILED: a login failed or a wrong code was accepted (details above)" >&2
    exit 1
fi
