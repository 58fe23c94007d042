# Two commands matter: `make serve` and `make test`. Both create .venv and
# install the project on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
ARGS   ?=

.PHONY: serve test test-fast test-deep lint format bench catalog dist clean redis-server

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

# Two workers (pytest-xdist), one per core. Tests sharing a module's servers stay
# together and the rest go wherever a worker is free, longest modules first
# (pytest_collection_modifyitems in tests/conftest.py).
PYTEST_WORKERS ?= 2

# PYTHONDONTWRITEBYTECODE is cleared: the suite starts dozens of Python processes
# (workers, serve, check, load, pytester), and without cached bytecode each one
# compiles the package (and pytest re-rewrites its asserts) from source again.
test: lint redis-server
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# The replica tests (tests/replicas) start a real redis-server of their own on a
# free loopback port. Installed from the Debian package when missing (CI runs as
# root); the package's own service is stopped again: the tests never use it.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ]; then \
	    echo "redis-server is missing: install it (sudo apt-get install redis-server)" >&2; exit 1; \
	  fi; \
	  echo "installing redis-server (the replica tests run one)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 \
	    && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } \
	  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }; \
	  if [ -d /run/systemd/system ]; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi; \
	}

# The in-process suites only (no server, CLI or pip processes): for the edit-test loop.
test-fast: $(STAMP) redis-server
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -m "not e2e"

# Far more Hypothesis examples and longer state-machine programs (minutes, not seconds).
test-deep: $(STAMP) redis-server
	HYPOTHESIS_PROFILE=deep STATEFUL_STEPS=60 ROUND_ROBIN_EXAMPLES=40 $(BIN)/python -m pytest \
	  tests/property tests/unit tests/replicas/test_round_robin.py -p no:cacheprovider

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
