# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint format clean screenshots

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Install into .venv and run the batch on the bundled offline sample sites.
run: $(STAMP)
	$(BIN)/pipeline run --sample

## Run the test suite.
test: $(STAMP)
	$(BIN)/pytest -q

## Browser tests in headless Chromium; their screenshots are copied to docs/screenshots/.
screenshots: $(STAMP)
	$(BIN)/pytest -q tests/test_browser.py
	mkdir -p docs/screenshots
	cp tests/artifacts/*.png docs/screenshots/

## Benchmarks; results are written under bench/results/.
bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests
	$(BIN)/ruff format --check pipeline tests

format: $(STAMP)
	$(BIN)/ruff check --fix pipeline tests
	$(BIN)/ruff format pipeline tests

clean:
	rm -rf data/pipeline.db* data/warc
