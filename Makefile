# The two commands a fresh clone needs (see README.md):
#   make up     install inferq and run it on embedded defaults (API + workers + embedded Redis)
#   make test   install everything the tests need and run every check (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test install install-dev lint typecheck pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

# torch==2.13.0 is the CPU wheel these machines keep on disk; any other version downloads gigabytes.
install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,embeddings,diffusers,bench]"

up: install
	$(BIN)/inferq up

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); \
	code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests: treating that as a failure"; exit 1; fi; \
	exit $$code

test: lint typecheck pytest
