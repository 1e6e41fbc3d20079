#!/bin/sh
# Writes scripts/hot-text.txt: the functions `lockstep lint` runs, which build.rs has the
# linker place side by side at the start of the binary's code (lld's
# --symbol-ordering-file).
#
# Why: a short `lockstep lint` runs about 1.8 MB of the binary's 10 MB of code, but those
# functions lie all over it, and the kernel maps a file-backed page together with its
# neighbours (64 KB at a time), so a lint of a hundred small migrations had 6 MB of code
# resident. With the functions packed together, 2 MB (README, Speed).
#
# Usage:  sh scripts/hot-text.sh [CORPUS]     (CORPUS: ../shared/corpus when it exists)
#
# Needs valgrind (callgrind lists every function a run executes, exactly). Run it again
# after a toolchain or dependency upgrade: symbol names carry a hash of the crate's build,
# so names the binary no longer has are ignored and the packing fades (the lint_speed
# benchmark's memory column shows it). Editing lockstep's own code keeps most names.
set -eu
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "hot-text.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
corpus=${1:-../shared/corpus}
cargo build --release --quiet
bin=target/release/lockstep
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# What lint runs: every rule's fixtures, the example migrations and, when present, the real
# histories; in each report format, with and without --locks.
find tests/fixtures migrations -name '*.sql' | sort > "$work/files"
if [ -d "$corpus" ]; then
    find "$corpus" -name '*.sql' -size -200k | sort | awk 'NR % 7 == 0' >> "$work/files"
fi
n=0
for args in "" "--locks" "--format json" "--format sarif" "--format gitlab" "--format github"; do
    n=$((n + 1))
    # shellcheck disable=SC2086  # $args is several words
    xargs valgrind --tool=callgrind --demangle=no --compress-strings=no \
        --callgrind-out-file="$work/cg.$n.%p" "$bin" lint --no-config $args \
        < "$work/files" > /dev/null 2>&1 || true
done
: > "$work/empty.sql"
valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file="$work/cg.empty" \
    "$bin" lint --no-config "$work/empty.sql" > /dev/null 2>&1 || true

nm "$bin" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u > "$work/defined"
cat "$work"/cg.* | sed -n "s/^fn=//p" | sed "s/'[0-9]*\$//" | sort -u > "$work/run"
comm -12 "$work/defined" "$work/run" > scripts/hot-text.txt
echo "scripts/hot-text.txt: $(wc -l < scripts/hot-text.txt) functions of $(wc -l < "$work/defined")"
