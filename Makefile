# runbook-router developer commands.
#
#   make run    start the router with the embedded defaults (SQLite under ./data,
#               built-in rules, example runbooks, console sink); extra CLI flags
#               go in ARGS, e.g.  make run ARGS='--port 9000'
#   make test   ruff + the test suite (PYTEST_ARGS='-k webhook -x' to narrow it)
#   make lint   ruff check + ruff format --check
#   make fmt    ruff format + ruff check --fix
#   make bench  the benchmarks in bench/, if there are any
#   make clean  remove the virtualenv, build output and caches (keeps ./data)
#
# Needs only python3 (>= 3.11) with venv support (Debian: apt-get install
# python3-venv). Everything else goes into .venv, which is (re)installed only when
# pyproject.toml is newer than the stamp file.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
PIP         := $(BIN)/python -m pip --disable-pip-version-check --quiet
ARGS        ?=
PYTEST_ARGS ?=
PG_HOST     ?= 127.0.0.1
PG_PORT     ?= 5432

# Only the paths that exist: ruff reports a missing path as an error.
LINT_PATHS  := $(wildcard router tests bench)

MAKEFLAGS   += --no-print-directory
.DEFAULT_GOAL := help

.PHONY: help run test lint fmt bench clean venv postgres

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# --- virtualenv ---------------------------------------------------------------

# Created once; a half-made venv (no ensurepip) is removed so the next run retries.
$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: '$(PYTHON)' not found; install Python >= 3.11 (Debian: apt-get install python3 python3-venv) or set PYTHON=..." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: runbook-router needs Python >= 3.11, but $(PYTHON) is $$($(PYTHON) -V 2>&1); set PYTHON=python3.11 (or newer)" >&2; exit 1; }
	@echo "creating $(VENV) with $$($(PYTHON) -V 2>&1)"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }

# Runtime dependencies only (make run).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing runbook-router into $(VENV)"
	@$(PIP) install -e .
	@touch $@

# Runtime + test dependencies (make test/lint/fmt/bench); a superset of the above.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "installing runbook-router[test] into $(VENV)"
	@$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed

venv: $(VENV)/.installed-test

# --- commands -----------------------------------------------------------------

run: $(VENV)/.installed
	exec $(BIN)/runbook-router serve $(ARGS)

# PostgreSQL at $(PG_HOST):$(PG_PORT) for the postgres-marked tests. Never fails:
# without a server those tests skip themselves and say why.
postgres:
	@if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h $(PG_HOST) -p $(PG_PORT); then \
	  :; \
	elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$$(ls /etc/postgresql 2>/dev/null)" ]; then \
	  version=$$(ls /etc/postgresql | sort -V | tail -n 1); \
	  echo "starting PostgreSQL $$version"; \
	  pg_ctlcluster --skip-systemctl-redirect $$version main start \
	    || echo "warning: could not start PostgreSQL $$version; the PostgreSQL tests will skip" >&2; \
	  for _ in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h $(PG_HOST) -p $(PG_PORT) && break; sleep 1; done; \
	else \
	  echo "note: no PostgreSQL at $(PG_HOST):$(PG_PORT); the PostgreSQL tests will skip"; \
	fi

test: $(VENV)/.installed-test postgres
	@$(BIN)/ruff check --quiet $(LINT_PATHS)
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	@$(BIN)/ruff check $(LINT_PATHS)
	@$(BIN)/ruff format --check $(LINT_PATHS)

fmt: $(VENV)/.installed-test
	@$(BIN)/ruff format $(LINT_PATHS)
	@$(BIN)/ruff check --fix $(LINT_PATHS)

# bench/__main__.py wins; otherwise every bench/*.py in turn; otherwise a note.
bench: $(VENV)/.installed-test
	@if [ -f bench/__main__.py ]; then \
	  $(BIN)/python -m bench $(ARGS); \
	elif ls bench/*.py >/dev/null 2>&1; then \
	  for script in bench/*.py; do \
	    [ "$$(basename $$script)" = __init__.py ] && continue; \
	    echo "== $$script"; $(BIN)/python $$script $(ARGS) || exit 1; \
	  done; \
	else \
	  echo "no benchmarks yet: add bench/__main__.py or bench/*.py"; \
	fi

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
