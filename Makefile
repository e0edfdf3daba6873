# Entry points used by the README and .ci/run. Every target sets itself up first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONHASHSEED := 0

.PHONY: setup demo test lint bench
setup:
	@bash scripts/setup.sh

# The main job: train the default model on Fashion-MNIST and show the results.
demo: setup
	@bash scripts/demo.sh

# Lint and the full test suite (what .ci/run calls).
test: setup lint
	$(PY) -m pytest -n 2 -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

bench: setup
	$(PY) benchmarks/run_all.py
