# bibia — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock package-lock.json | sha1sum | cut -c1-12)

.PHONY: run test lint format lock install provision image bench clean

$(STAMP): pyproject.toml requirements.lock package.json package-lock.json
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[test,lint]'
	@# The browser assets bibia serves (Swagger UI, ReDoc) and axe-core for the tests, from the npm registry, pinned by package-lock.json.
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Serve the API on http://127.0.0.1:8000 with the embedded default (SQLite + local artifacts under ./data).
run: $(STAMP)
	@if docker info >/dev/null 2>&1; then bash docker/build-demo-image.sh >/dev/null || echo "image du démonstrateur : échec de la construction (voir docker/build-demo-image.sh)" >&2; fi
	$(VENV)/bin/bibia serve

## Install the test dependencies, start what the tests need where possible, run the whole suite.
test: $(STAMP)
	@bash .ci/provision.sh || echo "provision: some engines could not be started; their tests skip (or fail when CI is set)" >&2
	$(VENV)/bin/python -m pytest

## The rules the code keeps: ruff (lint and format), mypy, import contracts. CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Re-pin every installed package (run after changing a version in pyproject.toml).
lock:
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[test,lint]'
	{ echo "# Every package a fresh install gets, pinned (make lock rewrites it; make install installs under it)."; \
	  $(VENV)/bin/pip freeze --exclude-editable --all | grep -v -E '^(pip|setuptools|wheel)=='; } > requirements.lock

image: $(STAMP)
	bash docker/build-demo-image.sh

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/catalogue.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
