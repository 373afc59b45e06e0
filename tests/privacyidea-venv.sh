#!/usr/bin/env bash
# The Python virtualenv with a real privacyIDEA server (from PyPI) that the test suite's
# privacyIDEA fixture (tests/src/privacyidea.rs) and the benchmark peer (tests/bench/) run.
#
#   bash tests/privacyidea-venv.sh           # create it if missing or wrong; print its path
#   bash tests/privacyidea-venv.sh --check   # only check it; print its path or fail
#
# It lives at $PI_PRIVACYIDEA_VENV, default /var/tmp/pi-privacyidea/venv, outside the checkout
# so that every worktree and every run shares one copy (about 500 MB). When it is already there
# this takes well under a second; building it needs PyPI (pip honours PIP_INDEX_URL and proxies)
# and python3 with the venv module (Debian: python3-venv, tests/install-deps.sh installs it).
#
# A virtualenv cannot be moved after it is built (its scripts name their interpreter by absolute
# path), so it is built in place. It counts as ready only once the file `pi-requirements.txt` in
# it holds exactly the requirements below, written last; an interrupted build is redone. Runs
# are serialised by a lock beside it, so parallel callers wait rather than build twice.
set -euo pipefail

# What the suite is written against. Change both together: a new privacyIDEA version is a new
# peer, and its answers may differ. python-pskc writes the PSKC files `pictl import pskc` reads
# (an implementation of RFC 6030 independent of pi's).
REQUIREMENTS=("privacyidea==3.14" "gunicorn==23.0.0" "python-pskc==1.4")

VENV=${PI_PRIVACYIDEA_VENV:-/var/tmp/pi-privacyidea/venv}
STAMP=$VENV/pi-requirements.txt

die() {
    echo "privacyidea-venv.sh: $*" >&2
    exit 1
}

check_only=0
case ${1:-} in
    "") ;;
    --check) check_only=1 ;;
    *) die "usage: $0 [--check]" ;;
esac
[[ $VENV == /* ]] || die "PI_PRIVACYIDEA_VENV must be an absolute path, got '$VENV'"

wanted() { printf '%s\n' "${REQUIREMENTS[@]}"; }

# Cheap on purpose (no import of privacyIDEA, which takes seconds): the stamp, the programs, and
# an interpreter that still starts (a Python upgrade can remove the one the venv was made from).
ready() {
    [[ -f $STAMP && -x $VENV/bin/gunicorn && -x $VENV/bin/pi-manage ]] &&
        [[ $(<"$STAMP") == "$(wanted)" ]] &&
        "$VENV/bin/python" -c '' 2>/dev/null
}

if ready; then
    echo "$VENV"
    exit 0
fi
if ((check_only)); then
    die "no privacyIDEA virtualenv with $(wanted | paste -sd' ') at $VENV;" \
        "create it with: bash tests/privacyidea-venv.sh (needs PyPI; tests/run.sh does it)"
fi

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
# Another caller may have built it while we waited for the lock.
if ready; then
    echo "$VENV"
    exit 0
fi
# Only ever remove a virtualenv: the variable may name a directory by mistake.
if [[ -e $VENV && ! -f $VENV/pyvenv.cfg ]]; then
    die "$VENV exists and is not a virtualenv; remove it or set PI_PRIVACYIDEA_VENV elsewhere"
fi
command -v python3 >/dev/null || die "python3 not found: apt-get install python3 python3-venv"
echo "building the privacyIDEA virtualenv $VENV ($(wanted | paste -sd' '), from PyPI)..." >&2
started=$SECONDS
rm -rf "$VENV"
python3 -m venv "$VENV" ||
    die "python3 -m venv $VENV failed: apt-get install python3-venv (tests/install-deps.sh does)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "${REQUIREMENTS[@]}" ||
    die "pip install ${REQUIREMENTS[*]} failed: is PyPI reachable (PIP_INDEX_URL, https_proxy)?"
"$VENV/bin/python" -c 'import privacyidea.app, gunicorn' ||
    die "the new virtualenv $VENV cannot import privacyidea and gunicorn (see above)"
wanted >"$STAMP"
echo "built $VENV in $((SECONDS - started)) s" >&2
echo "$VENV"
