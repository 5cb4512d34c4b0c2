# Outlook Sync for Communifire: local commands. Needs python3 (3.11) and node/npm (20).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: help setup lock test test-fast lint demo run doctor infra-check bench clean

help:
	@echo "make demo   - the product's story in under a minute: a weekly series through Outlook's quirks and Communifire's changes"
	@echo "make test   - install what is needed and run every test (Azurite and the emulator are started by the tests)"
	@echo "make run    - the function app on http://127.0.0.1:7071 with Azurite and the emulator, generated settings, until Ctrl-C"
	@echo "make doctor - check local.settings.json and reachability"
	@echo "make lock   - re-resolve requirements*.in into the hash-locked requirements*.txt"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP)

# The locks: every package with its hashes, resolved for Python 3.11 on any platform.
# The runtime lock (the function package) first; the dev lock is constrained by it.
UV_COMPILE := $(BIN)/uv pip compile --generate-hashes --universal --python-version 3.11 \
	--annotation-style line --custom-compile-command "make lock"
lock: setup
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -c requirements.txt -o requirements-dev.txt

# ruff: the rules chosen in pyproject.toml ([tool.ruff.lint]); `make lint` runs just the linters.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	bash infra/check.sh
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

demo: setup
	$(BIN)/python -m devhost.demo

run: setup
	$(BIN)/python -m devhost.run

doctor: setup
	$(BIN)/python -m core.cli doctor

infra-check:
	bash infra/check.sh

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-infra node_modules .pytest_cache .hypothesis
