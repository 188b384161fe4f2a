#!/usr/bin/env bash
# Install sequence_nb with JupyterLab into .venv, start the local sandbox server
# and open notebooks/quickstart.ipynb against it. Ctrl-C stops both.
# Extra arguments go to `sequence-nb demo` (e.g. --customers 1000 --no-browser).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[demo]'
exec .venv/bin/sequence-nb demo "$@"
