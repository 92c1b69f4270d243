#!/usr/bin/env bash
# Download the pure-Python wheels that pytest and hypothesis need inside Pyodide into
# .cache/pyodide-wheels (read by tools/pyodide_pytest.mjs). Idempotent: does nothing when the
# folder already holds the set listed in tools/pyodide-test-requirements.txt.
#
# pip runs on the host's CPython but must choose wheels for Pyodide's Python 3.14 on wasm32, so
# it is told the target (--python-version 3.14) and restricted to wheels that run anywhere
# (--implementation py --abi none --platform any with --only-binary=:all:): no sdist is built and
# no compiled wheel can slip in.
#
# Environment: PYTHON (default: the repo's .venv python, else python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$repo/tools/pyodide-test-requirements.txt"
dest="$repo/.cache/pyodide-wheels"
stamp="$dest/.requirements.txt"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi

if [[ -f "$stamp" ]] && cmp -s "$requirements" "$stamp"; then
  echo "pyodide wheels up to date in ${dest#"$repo/"}"
  exit 0
fi

mkdir -p "$repo/.cache"
tmp="$(mktemp -d "$repo/.cache/pyodide-wheels.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" -m pip download \
  --quiet --disable-pip-version-check \
  --only-binary=:all: --python-version 3.14 --implementation py --abi none --platform any \
  --require-hashes -r "$requirements" -d "$tmp"

cp "$requirements" "$tmp/.requirements.txt"
# Swap in the complete set only once every download succeeded.
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "downloaded $(ls "$dest"/*.whl | wc -l) wheels into ${dest#"$repo/"}"
