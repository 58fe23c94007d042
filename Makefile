# Two commands matter: `make serve` and `make test`. Both create .venv and
# install the project on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
ARGS   ?=

.PHONY: serve test test-fast test-deep lint format bench catalog dist clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fal-queue-harness needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/mockserver serve --host $(HOST) --port $(PORT) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers (pytest-xdist), one per core; --dist loadfile keeps each module,
# and the servers it shares, on one worker.
PYTEST_WORKERS ?= 2

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The in-process suites only (no server, CLI or pip processes): for the edit-test loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e"

# Far more Hypothesis examples and longer state-machine programs (minutes, not seconds).
test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep STATEFUL_STEPS=60 $(BIN)/python -m pytest tests/property tests/unit -p no:cacheprovider

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rebuild contracts/models/ from the compact sources in contracts/sources/.
catalog: $(STAMP)
	$(BIN)/python -m mockserver.catalog_build

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --out benchmarks/RESULTS.md

# The wheel and the sdist in dist/ (install the wheel into another project:
# `pip install dist/fal_queue_harness-*.whl`).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
