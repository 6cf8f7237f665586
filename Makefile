# The two commands a fresh clone needs (see README.md):
#   make up     install inferq and run it on embedded defaults (API + workers + embedded Redis)
#   make test   install everything the tests need and run every check (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test install install-dev browser lint typecheck pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

# torch==2.13.0 is the CPU wheel these machines keep on disk; any other version downloads gigabytes.
install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,embeddings,diffusers,bench]"

# The console's browser tests drive the system's chromium (Playwright's own browser download cannot
# work here): installed with apt-get when missing and this runs as root (as CI does), else asked for.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make test needs chromium for the console's browser tests: sudo apt-get install -y chromium" >&2; exit 1; \
	fi

up: install
	$(BIN)/inferq up

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev browser
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); \
	code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests: treating that as a failure"; exit 1; fi; \
	exit $$code

test: lint typecheck pytest
