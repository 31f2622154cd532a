#!/usr/bin/env bash
# The whole check: lint, format, types, then every test (integration tests start real
# dockerd, containerd and skopeo themselves; with CI=true a missing one fails the run).
# Runs the tools of the README's virtualenv (.venv: ruff, mypy, python with pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  export PATH="$PWD/.venv/bin:$PATH"
else
  echo "scripts/test.sh: no .venv here (the README's set-up makes it): using the tools on PATH" >&2
fi
ruff check archiver tests samples bench scripts
ruff format --check archiver tests samples bench scripts
mypy
python -m pytest -q -p no:cacheprovider "$@"
