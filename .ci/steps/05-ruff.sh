#!/usr/bin/env bash
# Lint: ruff with the repository's ruff.toml (pinned in constraints.txt).
# Not `ruff format --check`: the code is not ruff-formatted.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python -m ruff --version
.venv/bin/python -m ruff check --no-cache .
