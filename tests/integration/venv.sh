#!/usr/bin/env bash
# venv.sh - the Python virtualenv of the integration tests.
#
# Creates ${LOGHAUL_CACHE:-$HOME/.cache/loghaul}/venv when missing and
# installs tests/integration/requirements.txt into it (again whenever that
# file changes). Prints the venv's python on stdout, so callers do
#   PY=$(bash tests/integration/venv.sh) && "$PY" script.py
# or, with --bin NAME, the path of a command the packages installed:
#   ST=$(bash tests/integration/venv.sh --bin st) && "$ST" run ...
# (not executable on purpose: tests/integration/run runs every executable *.sh)
# Everything else goes to stderr. Needs python3 with the venv module
# (deploy/deps.sh installs python3-venv) and access to PyPI.
set -euo pipefail

bin=python
if [ "${1:-}" = --bin ]; then
    bin=${2:?venv.sh: --bin needs a command name}
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
req="$here/requirements.txt"
cache=${LOGHAUL_CACHE:-$HOME/.cache/loghaul}
venv="$cache/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)

mkdir -p "$cache"
# One installer at a time (several tests may call this at once).
exec 9>"$cache/.venv.lock"
flock 9

if [ ! -x "$venv/bin/python" ]; then
    echo "venv: creating $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "venv: installing $(grep -v '^#' "$req" | tr '\n' ' ')" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
fi
if [ ! -x "$venv/bin/$bin" ]; then
    echo "venv: no $bin in $venv/bin (is its package in $req?)" >&2
    exit 1
fi
echo "$venv/bin/$bin"
