#!/usr/bin/env bash
# Builds the Python wheel (python/, maturin, release, abi3) in the repository's
# target/ (so that the release dependencies are compiled once for this and
# `cargo test --release`), installs it into a fresh virtual environment with
# numpy and pytest from PyPI, and runs python/tests/. PyTorch is not
# installed: tests/test_torch.py skips itself. Ends with pytest's summary.
#
# Usage: scripts/test-python.sh [PYTEST_ARGS...]
# Env: PYTHON (default python3, >= 3.9), CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
py="${PYTHON:-python3}"

venv="$CARGO_TARGET_DIR/python-venv"
rm -rf "$venv"
if ! "$py" -m venv "$venv" 2>/dev/null; then
  # Debian's python3 needs python3-venv for ensurepip
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  "$py" -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "maturin>=1.8,<2" numpy pytest

wheels="$CARGO_TARGET_DIR/wheels"
rm -rf "$wheels"
(cd python && "$venv/bin/maturin" build --release --locked -o "$wheels")
wheel=$(ls "$wheels"/arcface-*.whl)
echo "wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
"$venv/bin/pip" install -q "$wheel"

# run from the tests' directory against the installed wheel, not the sources
cd python/tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$@" .
