# Hubcast: `make run` to use it, `make test` to check it. Both set themselves up from scratch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest
# The 15 slowest tests are printed after every run, so a slow one is seen the day it arrives.
DURATIONS := --durations=15
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PG_REDIS_URL ?= redis://127.0.0.1:6379/3

.PHONY: run lint test test-serial test-unit test-integration test-e2e test-pg hardening bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Set up, migrate, seed demo data, start Redis (embedded unless REDIS_URL), a worker and the app on $PORT (8000).
run: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/hubcast run

## Lint: ruff (lint and format check) and the import-linter contracts of pyproject.toml (the architecture's arrows).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Lint first, then every layer: unit, integration (real DB + Redis), hardening (faults and attacks), end-to-end,
## topology; in three pytest processes at once (tests/run_layers.py says why), each printing its own summary.
test: lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python tests/run_layers.py

## The same layers one after the other in one pytest process (slower; one report).
test-serial: lint
	PATH="$(abspath $(BIN)):$$PATH" $(PYTEST) tests/unit tests/integration tests/hardening tests/e2e tests/topology -q $(DURATIONS)

test-unit: $(VENV)/.installed-test
	$(PYTEST) tests/unit -q

test-integration: $(VENV)/.installed-test
	$(PYTEST) tests/integration -q -m "not e2e"

test-e2e: $(VENV)/.installed-test
	PATH="$(abspath $(BIN)):$$PATH" $(PYTEST) tests/e2e -q

## The fault and bad-input suite alone, then its report (a table, also written to bench/results/hardening.md).
hardening: $(VENV)/.installed-test
	PATH="$(abspath $(BIN)):$$PATH" $(PYTEST) tests/hardening -q; status=$$?; \
	$(BIN)/python bench/hardening_report.py; exit $$status

## The integration layer again, on PostgreSQL and a system Redis (what CI does second).
test-pg: $(VENV)/.installed-test
	DATABASE_URL="$(PG_URL)" REDIS_URL="$(PG_REDIS_URL)" $(PYTEST) tests/integration -q -m "not e2e" $(DURATIONS)

## Benchmarks: each prints its figures beside a baseline measured in the same run and appends them to
## bench/results/*.md (PostgreSQL ones use BENCH_PG_URL, default the local server's postgres database).
bench: $(VENV)/.installed-test
	$(BIN)/python bench/csv_audience.py
	$(BIN)/python bench/phone_differential.py 1000000
	$(BIN)/python bench/audience.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/webhooks.py --rate 6000 --duration 60 --runs 1 --db both
	$(BIN)/python bench/webhooks.py --burst 50000 --runs 1 --db both
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/dispatch.py --db sqlite --with-load --skip-uncapped --runs 1
	$(BIN)/python bench/freeze.py --db sqlite --contacts 100000 --runs 3
	$(BIN)/python bench/freeze.py --db postgresql --contacts 1000000 --runs 2 --keep
	$(BIN)/python bench/freeze.py --db postgresql --contacts 1000000 --full-send
	$(BIN)/python bench/contacts_search.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/live_latency.py
	$(BIN)/python bench/campaign_insight.py
	$(BIN)/python bench/topology.py --applier process

clean:
	rm -rf $(VENV) .web test-artifacts
