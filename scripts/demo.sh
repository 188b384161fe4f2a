#!/usr/bin/env bash
# Install sequence_nb with JupyterLab and Jupyter Notebook 7 into .venv, start the local
# sandbox and open the quickstart notebook against it. The notebook opened is a working
# copy in ~/.sequence_nb/demo (the repository's notebooks are never opened, so Jupyter's
# autosave leaves the clone clean). Ctrl-C stops both.
# Extra arguments go to `sequence-nb demo`, e.g. --app notebook (Notebook 7), --notebook
# cleaning, --customers 1000, --no-browser, --dir FOLDER, --fresh; see `sequence-nb demo -h`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[demo]'
exec .venv/bin/sequence-nb demo "$@"
