#!/usr/bin/env bash
# Builds the LazyFS binary the power-cut tests mount, offline, from the source tree named by
# PI_LAZYFS_SRC (or the first argument), with tests/lazyfs/CMakeLists.txt and Debian's packages
# (tests/install-deps.sh installs them). The source is only read.
#
#   bash tests/lazyfs/build.sh [LAZYFS_SOURCE_DIR]
#
# Prints the binary's absolute path as its last line of output. The build lives in
# PI_LAZYFS_BUILD_DIR (default /var/tmp/pi-lazyfs), one subdirectory per source and build-file
# content, so a second run with the same inputs only prints the path. Safe to run concurrently.
set -euo pipefail

die() {
    echo "tests/lazyfs/build.sh: $*" >&2
    exit 1
}

src=${1:-${PI_LAZYFS_SRC:-}}
[ -n "$src" ] || die "no LazyFS source: set PI_LAZYFS_SRC or pass the directory"
[ -d "$src" ] || die "PI_LAZYFS_SRC=$src is not a directory"
src=$(cd "$src" && pwd -P)
[ -f "$src/lazyfs/src/main.cpp" ] && [ -f "$src/libs/libpcache/src/cache.cpp" ] ||
    die "$src is not a LazyFS source tree (no lazyfs/src/main.cpp or libs/libpcache/src/cache.cpp)"
here=$(cd "$(dirname "$0")" && pwd -P)

missing=()
for p in cmake make g++ pkg-config libfuse3-dev fuse3 libspdlog-dev libfmt-dev libtoml11-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] ||
    die "missing Debian packages: ${missing[*]}; run 'bash tests/install-deps.sh' as root"

# Everything that decides the binary: the source files and our build description.
key=$(
    {
        (cd "$src" && find lazyfs libs -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) \
            -not -path '*/build/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        sha256sum <"$here/CMakeLists.txt"
    } | sha256sum | cut -c1-16
)
base=${PI_LAZYFS_BUILD_DIR:-/var/tmp/pi-lazyfs}
out="$base/$key"
mkdir -p "$out"
exec 9>"$out/lock"
flock 9

if [ ! -x "$out/lazyfs" ]; then
    echo "building LazyFS from $src into $out (about a minute)" >&2
    rm -rf "$out/build"
    cmake -S "$here" -B "$out/build" -DLAZYFS_SRC="$src" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
    cmake --build "$out/build" -j "$(nproc)" >&2
    install -m 0755 "$out/build/lazyfs" "$out/lazyfs.tmp"
    mv -f "$out/lazyfs.tmp" "$out/lazyfs"
fi
echo "$out/lazyfs"
