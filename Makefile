# Two commands do everything on a fresh clone: `make demo` and `make test`.
# The virtual environment lives in .venv and is (re)built whenever pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve migrate test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "coldchain needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/coldchain demo

serve: $(STAMP)
	$(BIN)/coldchain serve

migrate: $(STAMP)
	$(BIN)/coldchain migrate

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check coldchain tracker_sim tests
	$(BIN)/ruff format --check coldchain tracker_sim tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python tests/benchmarks/bench_bulk_insert.py
	$(BIN)/python tests/benchmarks/bench_engine.py
	$(BIN)/python tests/benchmarks/bench_sync.py
	$(BIN)/python tests/benchmarks/bench_ingest_evaluation.py
	$(BIN)/python tests/benchmarks/bench_eta.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
