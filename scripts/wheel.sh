#!/usr/bin/env bash
# Builds the Python wheel that carries the lockstep binary (maturin, `bindings = "bin"`) into
# target/wheels/, then checks it: installs it into a fresh virtual environment and runs
# `lockstep --version` and a lint of the example migrations there.
#
#   scripts/wheel.sh                  # a wheel for this machine's platform
#
# Arguments go to `maturin build` (`--target`, `--compatibility`, …). Needs python3 (with
# venv) and a Rust toolchain; maturin is installed from PyPI into target/wheel-tools.
# LOCKSTEP_DOCS_URL, when set, is compiled in (SARIF helpUri, GitLab links to the rules'
# pages). Takes as long as a release build.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/wheel-tools
if [ ! -x "$tools/bin/maturin" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.5,<2'
fi
rm -rf target/wheels
"$tools/bin/maturin" build --release --locked --out target/wheels "$@"
wheel=$(ls target/wheels/lockstep_cli-*.whl)
echo "built $wheel ($(du -h "$wheel" | cut -f1))"

# The check: a fresh virtual environment, the wheel alone (no index), the binary on PATH.
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
python3 -m venv "$check/venv"
"$check/venv/bin/pip" install --quiet --disable-pip-version-check --no-index "$wheel"
version=$("$check/venv/bin/lockstep" --version)
want="lockstep $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
if [ "$version" != "$want" ]; then
  echo "wheel check failed: \`lockstep --version\` says \`$version\`, expected \`$want\`" >&2
  exit 1
fi
set +e
out=$("$check/venv/bin/lockstep" lint --no-config --color never migrations/)
code=$?
set -e
# The example history is full of hazards on purpose: findings, exit 1.
if [ $code -ne 1 ] || ! grep -q '^checked 6 files, ' <<<"$out"; then
  echo "wheel check failed: \`lockstep lint migrations/\` exited $code:" >&2
  echo "$out" >&2
  exit 1
fi
echo "wheel check passed: $version from a fresh virtual environment; $(tail -1 <<<"$out")"
