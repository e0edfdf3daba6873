#!/usr/bin/env bash
# One-time set-up on a fresh machine: the Fashion-MNIST system package where Debian has it,
# a virtual environment in .venv, and cnnlab with its test dependencies. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Fashion-MNIST from Debian (the default dataset); elsewhere cnnlab downloads it on first use.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
    >/dev/null 2>&1 || echo "setup: dataset-fashion-mnist not installed; cnnlab will download the data"
fi

# Headless Chromium and its WebDriver, for the browser test of `cnnlab report` (skipped without).
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 \
   && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
    >/dev/null 2>&1 || echo "setup: chromium not installed; the report's browser test will be skipped"
fi

stamp="$VENV/.cnnlab-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # pip (not uv/poetry): it takes torch and torchvision from the machine's local mirror.
  "$VENV/bin/python" -m pip install -q -e ".[test,bench]" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import cnnlab, torch, torchvision" # fail here, not later, if pip did
  touch "$stamp"
fi
