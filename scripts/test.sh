#!/usr/bin/env bash
# Install everything the checks need into .venv, then run them all:
# ruff (lint and format), mypy on the package, and every test with pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k client`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# The editor's browser tests drive Debian's Chromium with Playwright (never `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is not installed: the browser tests will be skipped (apt-get install chromium)"
    fi
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy sequence_nb
echo "== pytest"
.venv/bin/pytest "$@"
