# Entry points used by the README and .ci/run. Every target sets itself up first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONHASHSEED := 0

.PHONY: setup demo test lint bench generate
setup:
	@bash scripts/setup.sh

# The main job: train the default model on Fashion-MNIST and show the results.
demo: setup
	@bash scripts/demo.sh

# Lint and the full test suite (what .ci/run calls).
test: setup lint
	$(PY) -m pytest -n 2 -q

# Rewrite every generated file (the table in src/cnnlab/dev/generate.py) after changing what
# it is generated from; tests/test_generated.py fails while one is stale.
generate: setup
	$(PY) -m cnnlab.dev generate

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

# The headline benchmarks (about 10 minutes on a quiet 2-core machine); JSON in benchmarks/results.
bench: setup
	$(PY) benchmarks/time_to_accuracy.py --seed 1 2 3 --json benchmarks/results/time_to_accuracy.json
	$(PY) benchmarks/throughput.py --json benchmarks/results/throughput.json
