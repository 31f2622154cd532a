#!/usr/bin/env bash
# The whole check: lint, format, types, then every test (integration tests start real
# dockerd, containerd and skopeo themselves; with CI=true a missing one fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check archiver tests samples bench
ruff format --check archiver tests samples bench
mypy
python3 -m pytest -q -p no:cacheprovider "$@"
