# fiberflow — `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo up test test-fast lint typecheck format clean

install: $(STAMP)

# constraints.txt pins the set pip resolved (Prefect pins fastapi/starlette): reproducible.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: install
	FIBERFLOW_DEV_MODE=$${FIBERFLOW_DEV_MODE:-1} $(VENV)/bin/fiberflow demo

up: install
	FIBERFLOW_DEV_MODE=$${FIBERFLOW_DEV_MODE:-1} $(VENV)/bin/fiberflow up

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

# Test workers (pytest-xdist): the suite mostly waits on servers and devices, so more
# workers than cores pay. Each test file stays on one worker (--dist loadfile): a file's
# module-scoped servers start once. Files go out whole-stack files first, in the order
# tests/fixtures/scheduling.py sets. PYTEST_WORKERS=0 runs in this process, serially.
PYTEST_WORKERS ?= 4
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The whole suite: lint, types, every test on SQLite and PostgreSQL.
test: lint typecheck
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# Inner loop: no whole-stack or browser tests.
test-fast: install
	$(PY) -m pytest $(XDIST) -m "not slow" -x -q $(PYTEST_ARGS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .fiberflow .pytest_cache .mypy_cache .ruff_cache
