#!/usr/bin/env bash
# The test command (README, .ci/run): install what is missing, build every binary, run every test.
#
#   bash tests/run.sh              # everything
#   bash tests/run.sh replay       # only tests whose name contains "replay"
#
# Runs as root: the cross-binary tests administer the daemon as uid 0 and switch to uid 65534
# (nobody) with setpriv. Nothing outside temporary directories is touched, unless
# PI_PACKAGE_TEST=1 (CI): then the Debian packages are built, installed and purged again
# (tests/package/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The privacyIDEA server some tests start (PyPI, once; quick when it is there already).
bash tests/privacyidea-venv.sh >/dev/null

# The suite starts the built binaries (pid, pictl, libpam_pi.so); `cargo test` alone does not
# build all of them.
cargo build --workspace
status=0
cargo test --workspace -- "$@" || status=$?
# pid's opt-in argon2 fill (feature interleaved-argon2): its own tests and the daemon's again,
# with every PIN hash computed by it.
cargo test -p pid --features interleaved-argon2 -- "$@" || status=$?
# That replaced target/*/pid with the feature's build: put the default one back for later runs.
cargo build -p pid --quiet || status=$?
# The Debian packages, installed on this machine and purged again: only where that is wanted.
if [ "${PI_PACKAGE_TEST:-}" = 1 ]; then
    bash tests/package/run.sh || status=$?
fi
# Tests not run are easy to miss in the output: say it last, where it is seen.
if [ -z "${PI_LAZYFS_SRC:-}" ]; then
    echo "power_cut: NOT RUN: PI_LAZYFS_SRC is unset (docs/testing.md, \"Power cuts\")" >&2
fi
if [ "${PI_PACKAGE_TEST:-}" != 1 ]; then
    echo "package install test: NOT RUN: it installs and purges the packages on this machine;" \
        "PI_PACKAGE_TEST=1 runs it (docs/testing.md, \"Debian packages\")" >&2
fi
exit "$status"
