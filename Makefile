# Two commands do everything on a fresh clone: `make demo` and `make test`.
# The virtual environment lives in .venv and is (re)built whenever pyproject.toml changes, with the newest
# Python 3.11 or later found on the PATH that can make one (set PYTHON=... to choose another).

PYTHON ?= $(shell for v in 3.14 3.13 3.12 3.11; do \
	p=$$(command -v python$$v) && $$p -c 'import venv, ensurepip' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The portal's browser libraries (Leaflet, uPlot, the world basemap), from npm by the lock file, served by the service.
ASSETS := coldchain/http/assets
ASSETS_STAMP := $(ASSETS)/node_modules/.package-lock.json
PORT ?=
# Test worker processes (pytest-xdist); each has its own template database, its own browser and its own ports.
TEST_WORKERS ?= 2
DEMO_ARGS := $(if $(PORT),--port $(PORT))

.PHONY: demo serve migrate assets engine test lint bench mutation clean

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "coldchain needs Python 3.11 or later with venv support, and none was found on the PATH." >&2; \
		echo "  Debian/Ubuntu: apt-get install python3 python3-venv   (Debian 12 ships 3.11)" >&2; \
		echo "  or run: make PYTHON=/path/to/python3.x ..." >&2; \
		exit 1; \
	fi
	@echo "==> creating the virtual environment in $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "==> installing coldchain and its development tools (a minute or two the first time)"
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The evaluation engine compiled by mypyc (ops/compile-engine), used while it matches engine.py; where no C compiler
# is found it is not made and the engine runs as plain Python.
ENGINE_BUILD := .build/engine/engine.sha256
$(ENGINE_BUILD): coldchain/domain/evaluation/engine.py coldchain/domain/evaluation/rule_tracker.py $(STAMP)
	@ops/compile-engine $(BIN)/python

engine: $(ENGINE_BUILD)

$(ASSETS_STAMP): $(ASSETS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || ops/require-packages npm
	@echo "==> installing the portal's browser libraries from npm into $(ASSETS)/node_modules"
	@npm ci --prefix $(ASSETS) --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(ASSETS_STAMP)

assets: $(ASSETS_STAMP)

# The PDF reports need Pango, HarfBuzz's subsetter and the DejaVu fonts (ops/require-packages pdf).
demo: $(STAMP) $(ENGINE_BUILD) $(ASSETS_STAMP)
	@ops/require-packages pdf
	@$(BIN)/coldchain demo $(DEMO_ARGS)

serve: $(STAMP) $(ENGINE_BUILD) $(ASSETS_STAMP)
	@ops/require-packages pdf
	$(BIN)/coldchain serve

migrate: $(STAMP)
	$(BIN)/coldchain migrate

test: $(STAMP) $(ENGINE_BUILD) $(ASSETS_STAMP)
	@if [ -z "$$COLDCHAIN_TEST_POSTGRES_URL" ]; then ops/require-packages postgresql; fi
	@ops/require-packages chromium pdf
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check coldchain tracker_sim tests
	$(BIN)/ruff format --check coldchain tracker_sim tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) $(ENGINE_BUILD)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python tests/benchmarks/bench_bulk_insert.py
	$(BIN)/python tests/benchmarks/bench_engine.py
	$(BIN)/python tests/benchmarks/bench_sync.py
	$(BIN)/python tests/benchmarks/bench_sync.py --engines postgresql --load lean --workers 1,2,4 --rounds 2
	$(BIN)/python tests/benchmarks/bench_ingest_evaluation.py
	$(BIN)/python tests/benchmarks/bench_eta.py
	$(BIN)/python tests/benchmarks/bench_portal.py
	$(BIN)/python tests/benchmarks/bench_report.py
	$(BIN)/python tests/benchmarks/bench_emails.py

# Mutation testing of the domain against its own tests (minutes to hours; not part of the test run).
mutation: $(STAMP)
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/mutmut run
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .build .mypy_cache .ruff_cache .pytest_cache .hypothesis $(ASSETS)/node_modules tests/artifacts
