#!/usr/bin/env bash
# A local privacyIDEA 3.14 (from PyPI) for running pibench against /validate/check side by side
# with pid. Everything but the shared virtualenv lives under one work dir; nothing is installed
# system-wide and the server listens on 127.0.0.1 only. See tests/bench/README.md.
#
#   privacyidea.sh setup --users N --type totp|hotp [--pin] [--argon2-rounds R] [--port P]
#   privacyidea.sh start [--workers 2] [--port 5001]
#   privacyidea.sh stop
#   privacyidea.sh check USER PASS
set -euo pipefail

PI_DIR=${PIBENCH_PI_DIR:-/var/tmp/pi-bench-privacyidea}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HELPER=$HERE/pi_setup.py
PIDFILE=$PI_DIR/gunicorn.pid
PORTFILE=$PI_DIR/port
SERVER_LOG=$PI_DIR/gunicorn.log
export PRIVACYIDEA_CONFIGFILE=$PI_DIR/pi.cfg
# Arguments must come from this script only, never from the caller's environment.
unset GUNICORN_CMD_ARGS

die() {
    echo "privacyidea.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '6,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need_int() { # NAME VALUE
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"
}

# The virtualenv is the test suite's (tests/privacyidea-venv.sh): one copy per machine, built
# from PyPI on first use. Sets VENV.
ensure_venv() {
    VENV=$(bash "$HERE/../privacyidea-venv.sh") || die "no privacyIDEA virtualenv (see above)"
}

server_pid() { # prints the gunicorn master pid if it is running
    [[ -f $PIDFILE ]] || return 1
    local pid
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

listeners() { # PORT: local addresses of TCP listeners on that port, sorted, one a line
    local out
    out=$(ss -Hltn "sport = :$1") || die "ss failed; install iproute2"
    awk '{print $4}' <<<"$out" | sed '/^$/d' | sort -u
}

base_url() {
    [[ -f $PORTFILE ]] || die "no server port recorded in $PORTFILE; run '$0 start' first"
    echo "http://127.0.0.1:$(<"$PORTFILE")"
}

cmd_stop() {
    local pid i
    if ! pid=$(server_pid); then
        rm -f "$PIDFILE"
        echo "privacyIDEA is not running" >&2
        return 0
    fi
    kill -TERM "$pid"
    # gunicorn's graceful timeout is 30 s; give it a little more before forcing.
    for ((i = 0; i < 350; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "gunicorn master $pid ignored SIGTERM for 35 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    echo "privacyIDEA stopped (pid $pid)" >&2
}

cmd_start() {
    local workers=2 port=5001
    while (($#)); do
        case $1 in
            --workers) workers=${2:-}; shift 2 || usage ;;
            --port) port=${2:-}; shift 2 || usage ;;
            *) usage ;;
        esac
    done
    need_int --workers "$workers"
    need_int --port "$port"
    [[ -f $PRIVACYIDEA_CONFIGFILE ]] || die "no $PRIVACYIDEA_CONFIGFILE; run '$0 setup ...' first"
    ensure_venv
    if pid=$(server_pid); then
        die "privacyIDEA already running (pid $pid, $(base_url)); run '$0 stop' first"
    fi
    if [[ -n $(listeners "$port") ]]; then
        die "port $port is already in use; pick another with --port"
    fi

    # gunicorn >= 25 opens a control socket in $XDG_RUNTIME_DIR or ~/.gunicorn by default.
    # Disable it where the option exists, and point XDG_RUNTIME_DIR at the work dir so that
    # nothing lands in $HOME whatever the version.
    local help extra=()
    help=$("$VENV/bin/gunicorn" --help)
    [[ $help != *--no-control-socket* ]] || extra=(--no-control-socket)

    echo "$port" >"$PORTFILE"
    # cd: gunicorn reads ./gunicorn.conf.py if present; the work dir has none.
    # create_app(production, silent): the default "development" config turns on Flask DEBUG.
    (
        cd "$PI_DIR"
        export XDG_RUNTIME_DIR=$PI_DIR
        exec setsid "$VENV/bin/gunicorn" \
            --workers "$workers" --bind "127.0.0.1:$port" --pid "$PIDFILE" \
            --error-logfile "$SERVER_LOG" --capture-output "${extra[@]}" \
            'privacyidea.app:create_app(config_name="production", silent=True)'
    ) </dev/null >>"$SERVER_LOG" 2>&1 &
    local launcher=$! i health url="http://127.0.0.1:$port"
    for ((i = 0; i < 600; i++)); do
        health=$(curl -fsS --max-time 2 "$url/healthz/" 2>/dev/null) || true
        [[ $health != *'"ready"'* ]] || break
        kill -0 "$launcher" 2>/dev/null ||
            die "gunicorn exited during startup; see $SERVER_LOG"
        sleep 0.1
    done
    if ((i == 600)); then
        kill -TERM "$launcher" 2>/dev/null || true
        die "privacyIDEA did not answer $url/healthz/ within 60 s; see $SERVER_LOG"
    fi
    [[ $(server_pid) == "$launcher" ]] || die "pid file $PIDFILE does not name the gunicorn master $launcher"
    # The bind address is fixed above; this guards against a future edit widening it.
    local addrs
    addrs=$(listeners "$port")
    if [[ $addrs != "127.0.0.1:$port" ]]; then
        cmd_stop
        die "expected a listener on 127.0.0.1:$port only, found: $addrs"
    fi
    echo "privacyIDEA 3.14 running: pid $launcher, $workers workers, log $SERVER_LOG" >&2
    echo "$url"
}

cmd_check() {
    (($# == 2)) || usage
    local url
    url=$(base_url)
    server_pid >/dev/null || die "privacyIDEA is not running; run '$0 start' first"
    # The pass goes through stdin, not curl's argv (visible in ps).
    printf '%s' "$2" | curl -sS --max-time 60 -X POST "$url/validate/check" \
        --data-urlencode "user=$1" --data-urlencode "pass@-"
    echo
}

write_config() { # ARGON2_ROUNDS (empty: privacyIDEA default)
    local secret pepper
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
    pepper=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
    local old_umask
    old_umask=$(umask)
    umask 077
    cat >"$PRIVACYIDEA_CONFIGFILE" <<EOF
# generated by tests/bench/privacyidea.sh setup; rewritten on every setup
SQLALCHEMY_DATABASE_URI = 'sqlite:///$PI_DIR/pi.sqlite'
SECRET_KEY = '$secret'
PI_PEPPER = '$pepper'
PI_ENCFILE = '$PI_DIR/enckey'
PI_AUDIT_KEY_PRIVATE = '$PI_DIR/private.pem'
PI_AUDIT_KEY_PUBLIC = '$PI_DIR/public.pem'
PI_AUDIT_SQL_TRUNCATE = True
PI_LOGFILE = '$PI_DIR/privacyidea.log'
PI_LOGLEVEL = 30
PI_UUID_FILE = '$PI_DIR/uuid.txt'
PI_NODE = 'localnode'
PI_NO_RESPONSE_SIGN = True
EOF
    if [[ -n $1 ]]; then
        echo "PI_HASH_ALGO_PARAMS = {\"argon2__rounds\": $1}" >>"$PRIVACYIDEA_CONFIGFILE"
    fi
    umask "$old_umask"
}

cmd_setup() {
    local users="" type="" pin=0 rounds="" port=5001
    while (($#)); do
        case $1 in
            --users) users=${2:-}; shift 2 || usage ;;
            --type) type=${2:-}; shift 2 || usage ;;
            --pin) pin=1; shift ;;
            --argon2-rounds) rounds=${2:-}; shift 2 || usage ;;
            --port) port=${2:-}; shift 2 || usage ;;
            *) usage ;;
        esac
    done
    need_int --users "$users"
    ((users <= 9999999)) || die "--users is at most 9999999 (7-digit serials and logins)"
    [[ $type == totp || $type == hotp ]] || die "--type must be totp or hotp"
    [[ -z $rounds ]] || need_int --argon2-rounds "$rounds"
    need_int --port "$port"
    local pinflag=()
    ((pin)) && pinflag=(--pin)

    local t0=$SECONDS
    mkdir -p "$PI_DIR"
    ensure_venv
    cmd_stop 2>/dev/null
    # Remove exactly what a previous setup created; the venv is kept.
    rm -f "$PI_DIR"/{pi.cfg,pi.sqlite,pi.sqlite-wal,pi.sqlite-shm,enckey,private.pem,public.pem} \
        "$PI_DIR"/{users.txt,uuid.txt,privacyidea.log,gunicorn.log,port,bench.env}

    write_config "$rounds"
    local pim=$VENV/bin/pi-manage
    echo "creating enckey, audit keys, tables, admin..." >&2
    "$pim" setup create_enckey >/dev/null
    "$pim" setup create_audit_keys >/dev/null
    "$pim" setup create_tables >/dev/null
    "$pim" admin add admin -p test >/dev/null
    echo "creating resolver, realm and $users $type tokens..." >&2
    "$VENV/bin/python" "$HELPER" populate --users "$users" --type "$type" "${pinflag[@]}" \
        --userfile "$PI_DIR/users.txt" >&2

    # First and last user: a real login over HTTP through gunicorn, as pibench will do it.
    local probe=(0)
    ((users > 1)) && probe+=($((users - 1)))
    echo "verifying with real /validate/check calls for users ${probe[*]}..." >&2
    local url ok=0
    url=$(cmd_start --port "$port" --workers 1)
    "$VENV/bin/python" "$HELPER" verify --url "$url" --type "$type" --index "${probe[@]}" \
        "${pinflag[@]}" >&2 || ok=1
    cmd_stop 2>/dev/null
    ((ok == 0)) || die "setup verification failed (see above); the server log is $SERVER_LOG"
    # The verification consumed one OTP of each probed user; give pibench pristine tokens again.
    "$VENV/bin/python" "$HELPER" reset --type "$type" --index "${probe[@]}"
    cat >"$PI_DIR/bench.env" <<EOF
PIBENCH_PI_USERS=$users
PIBENCH_PI_TYPE=$type
PIBENCH_PI_PIN=$pin
PIBENCH_PI_ARGON2_ROUNDS=${rounds:-default}
EOF
    echo "setup done in $((SECONDS - t0)) s: $users users, $type, pin=$pin, argon2 rounds ${rounds:-default};" \
        "run '$0 start'" >&2
}

(($# >= 1)) || usage
sub=$1
shift
case $sub in
    setup) cmd_setup "$@" ;;
    start) cmd_start "$@" ;;
    stop) (($# == 0)) || usage; cmd_stop ;;
    check) cmd_check "$@" ;;
    *) usage ;;
esac
