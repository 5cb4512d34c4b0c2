# Outlook Sync for Communifire: local commands. Needs python3 (3.11) and node/npm (20).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: help setup test test-fast demo run doctor infra-check bench clean

help:
	@echo "make demo   - the product's story in under a minute: a weekly series through Outlook's quirks and Communifire's changes"
	@echo "make test   - install what is needed and run every test (Azurite and the emulator are started by the tests)"
	@echo "make run    - the function app on http://127.0.0.1:7071 with Azurite and the emulator, generated settings, until Ctrl-C"
	@echo "make doctor - check local.settings.json and reachability"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP)

test: setup
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
