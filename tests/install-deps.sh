#!/usr/bin/env bash
# Installs what building pi, its test suite and the demo need on Debian 12 (bookworm).
#
#   bash tests/install-deps.sh [--always] [EXTRA_PACKAGE...]
#
# Without --always it does nothing when every package is already installed, so a developer's
# machine is not touched. It needs root only when something must be installed. If no Rust
# toolchain is found it installs one with rustup into ~/.cargo (Debian 12's own cargo is older
# than the workspace's rust-version 1.85); callers put ~/.cargo/bin on PATH afterwards.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

always=0
if [ "${1:-}" = "--always" ]; then
    always=1
    shift
fi

packages=(
    gcc libc6-dev            # the linker rustc drives (gcc brings libgcc_eh.a, linked into pam_pi)
    binutils                 # readelf: the test of what libpam_pi.so needs and exports
    libpam0g-dev             # libpam.so for pam_pi (pamsm links -lpam)
    libclang-dev             # pam-client (pid runs a PAM service for user-store passwords) generates its libpam bindings with bindgen
    pamtester                # a real PAM application for the tests
    libpam-wrapper           # LD_PRELOAD'ed so tests use private PAM service files
    python3 python3-pypamtest  # exact PAM return codes (libpamtest)
    python3-venv             # tests/privacyidea-venv.sh: a privacyIDEA server (PyPI) for the upstream realm tests
    oathtool                 # independent HOTP/TOTP implementation
    faketime                 # libfaketime: a daemon days ahead (offline values that grow too old)
    python3-pyotp            # an independent otpauth:// URL parser (issuer, account name, codes)
    libpam-oath              # the real pam_oath writes the usersfile that pictl import oath reads
    zbar-tools               # zbarimg: a real QR scanner reads back the codes pictl draws
    librsvg2-bin             # rsvg-convert: the SVG QR code (and the PNG on a dark page) as an image
    bsdutils                 # script: pictl on a pseudo-terminal, where it draws in ANSI colours
    slapd ldap-utils openssl # a private OpenLDAP server for the ldap resolver tests (never the system one)
    util-linux               # setpriv: run as uid 65534
    openssh-server openssh-client  # a private sshd on 127.0.0.1 (AuthorizedKeysCommand + PAM)
    cryptsetup-bin           # LUKS on a file image (pictl luks assign / unlock)
    systemd                  # systemd-analyze judges the units in systemd/; systemd-socket-activate starts pid as pid.socket does (systemd need not run)
    libpcsclite-dev pkg-config  # pictl talks to a Yubikey over PC/SC (CCID)
    groff-base man-db        # pi-docgen's manual pages: groff renders them, lexgrog reads their NAME as mandb does
    zsh fish                 # zsh -n and fish --no-execute check pi-docgen's completions
    ca-certificates curl     # rustup, if there is no toolchain
    # The Debian packages (tests/package/run.sh): built, checked, installed (man-db above reads them)
    debhelper dpkg-dev fakeroot lintian
    git                      # git ls-files: the source the package test builds from
    # LazyFS for the power-cut tests (tests/lazyfs/build.sh builds it offline against these)
    cmake g++ make libfuse3-dev fuse3 libspdlog-dev libfmt-dev libtoml11-dev
    "$@"
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "$always" = 1 ] || [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages: ${missing[*]}" >&2
        echo "install them as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    # The tests start their own slapd on 127.0.0.1 with a generated config; the package must
    # not configure (or start) a system-wide directory server.
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
    echo "no Rust toolchain found: installing one with rustup into $HOME/.cargo" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --component rustfmt,clippy
fi
