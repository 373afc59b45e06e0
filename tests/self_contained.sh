#!/usr/bin/env bash
# Fails if a tracked file refers to something a reader of the repository does not have: a
# directory beside the checkout, or design and reference notes that are not part of it. Every
# document, comment and test must stand on the repository alone (test vectors live in testdata/).
#
#   bash tests/self_contained.sh
#
# Prints each offending FILE:LINE and exits 1; exits 0 when there is none. `.ci/run` is exempt:
# it points the power-cut tests at a LazyFS source tree outside the checkout.
set -euo pipefail

cd "$(dirname "$0")/.."
command -v git >/dev/null || {
    echo "tests/self_contained.sh: needs git (apt-get install git)" >&2
    exit 2
}
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || {
    echo "tests/self_contained.sh: $(pwd) is not a git checkout; run it from a clone" >&2
    exit 2
}

# Each pattern is spelt with a bracket or an escape, so this file does not match itself.
patterns=(
    '\.\./share[d]([^[:alnum:]_]|$)'    # a directory beside the checkout
    'share[d]/(testvectors|reference|tools)/'
    '\bDESIG[N]\b'                      # the design notes, by name or section
    'peer[s]\.md'
    'privacyide[a]\.md'                 # notes on privacyIDEA's code
)
args=()
for p in "${patterns[@]}"; do
    args+=(-e "$p")
done

# git grep reads the working tree's version of every tracked file; -I skips binary files. It
# exits 0 when it found lines, 1 when it found none, and more on an error, which fails too.
status=0
found=$(git grep -n -I -E "${args[@]}" -- . ':(exclude).ci/run') || status=$?
case $status in
    0)
        printf '%s\n' "$found"
        n=$(printf '%s\n' "$found" | wc -l)
        echo "tests/self_contained.sh: $n line(s) above refer to documents outside the" \
            "repository; state the fact itself, or name a file in the repository" >&2
        exit 1
        ;;
    1) echo "tests/self_contained.sh: no tracked file refers to documents outside the repository" ;;
    *)
        echo "tests/self_contained.sh: git grep failed (exit $status)" >&2
        exit 2
        ;;
esac
