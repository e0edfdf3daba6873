#!/usr/bin/env bash
# The main job (until training lands): the zoo and one model's details.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/cnnlab models
