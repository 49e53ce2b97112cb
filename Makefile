# Every target creates .venv on first use; installs are re-run only when the
# packaging files change (stamp files), so repeated `make test` is fast.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints/cpu.txt
PYTEST_ARGS ?= -m "not slow"

.PHONY: demo test test-slow bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-demo: setup.cfg pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[lm]'
	touch $@

# The tests check the docs extension too, so they install the docs extra.
$(VENV)/.stamp-test: setup.cfg pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[test,lm,docs]'
	touch $@

$(VENV)/.stamp-docs: setup.cfg pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[test,lm,docs]'
	touch $@

demo: $(VENV)/.stamp-demo
	$(BIN)/python scripts/demo.py --output results

test: $(VENV)/.stamp-test
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: $(VENV)/.stamp-test
	$(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.stamp-test
	$(BIN)/python benchmarks/gaussian.py

docs: $(VENV)/.stamp-docs
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) results docs/_build docs/_generated
