# Xaynet for Python: the two commands a newcomer needs are `make demo` and `make test`.
# Everything else here is what they are made of.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help demo web test lint format test-python test-pyodide test-e2e bench bench-pyodide bench-browser clean

help:
	@echo "make demo          run the demo (see README)"
	@echo "make test          install what the tests need, then lint and run every test"
	@echo "make lint          ruff (lint + format check) and mypy"
	@echo "make test-python   the Python test suite on CPython"
	@echo "make test-pyodide  the shared tests inside Pyodide under Node"
	@echo "make test-e2e      only the browser tests (headless Chromium)"
	@echo "make bench         masking benchmarks on CPython (numpy and pure paths)"
	@echo "make bench-pyodide the pure-path masking benchmark inside Pyodide under Node"
	@echo "make bench-browser the browser participant (Chromium) against native CPython"

$(STAMP): requirements/dev.txt requirements/examples.txt shared/pyproject.toml coordinator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -r requirements/examples.txt
	$(PY) -m pip install --quiet -e ./shared -e ./coordinator
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.cache/pyodide-wheels/.done: tools/pyodide-test-requirements.txt tools/fetch_pyodide_wheels.sh $(STAMP)
	PYTHON=$(PY) bash tools/fetch_pyodide_wheels.sh
	touch $@

# The xaynet wheel the browser participant installs (rebuilt when shared/ changes), built aside
# and swapped in at once: a running demo never finds the folder without a wheel.
WEB_WHEEL := .cache/web/.built
$(WEB_WHEEL): $(STAMP) shared/pyproject.toml $(shell find shared/src -name '*.py')
	@mkdir -p .cache/web
	rm -rf .cache/web-build
	$(PY) -m pip wheel --quiet --no-deps -w .cache/web-build ./shared
	mv .cache/web-build/xaynet-*.whl .cache/web/
	rm -rf .cache/web-build
	touch $@

web: node_modules/.package-lock.json $(WEB_WHEEL)

demo: $(STAMP) web
	@mkdir -p .cache
	bash tools/demo.sh

test: lint test-python test-pyodide

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# e2e/ (in testpaths) needs the page's runtime, and the Pyodide wheels for its vector test.
test-python: $(STAMP) web .cache/pyodide-wheels/.done
	$(VENV)/bin/pytest

test-e2e: $(STAMP) web .cache/pyodide-wheels/.done
	$(VENV)/bin/pytest e2e

test-pyodide: node_modules/.package-lock.json .cache/pyodide-wheels/.done
	node tools/pyodide_pytest.mjs shared/tests -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_mask.py

bench-pyodide: node_modules/.package-lock.json .cache/pyodide-wheels/.done
	node tools/pyodide_pytest.mjs --script benchmarks/bench_mask.py --repeat 2

bench-browser: $(STAMP) web
	$(PY) benchmarks/bench_browser.py

clean:
	rm -rf $(VENV) node_modules .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
