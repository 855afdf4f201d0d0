# Set-up is part of every target: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-deps schemas bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m pipeline run

# The suite also needs Debian's chromium (the report tests render HTML in a real browser):
# installed here when missing, or one line saying how, before any test runs.
test-deps:
	@bash scripts/ensure-test-deps

# On every core (pytest-xdist), a test file to a worker: a file's shared fixtures (a Dask cluster,
# a generated site, flow runs) are made once, and each worker has its own Prefect test server.
test: $(STAMP) test-deps
	$(BIN)/python -m pytest -q -n auto --dist loadfile

schemas: $(STAMP)
	$(BIN)/python -m pipeline schemas

bench: $(STAMP)
	$(BIN)/python -m pipeline bench --sizes 20000,100000

clean:
	rm -rf $(VENV) output/trialrecon.duckdb output/parquet output/.versions output/report.html output/report.md output/.publishing
