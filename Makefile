# The two commands of the README: `make demo` and `make test`.
# Each creates .venv with what it needs, so both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench dist clean tools skypilot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	$(MAKE) skypilot tools
	touch $@

# SkyPilot's client SDK, for the tests of train.on: skypilot. It pins click<8.2, bcrypt and
# uvicorn below what import-linter, mlflow and others need; its client works with theirs
# (the tests show it), so theirs go back after it; pip then names the pins left unmet.
SKYPILOT := skypilot==0.14.1

skypilot: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(SKYPILOT)"
	$(BIN)/python -m pip install --quiet "click>=8.2" "bcrypt>=4.1" "uvicorn>=0.36"

# Programs the tests run that pip does not bring: Azurite, Microsoft's Azure Storage
# emulator (npm), for the Azure remote's tests; into tests/.node, not the system.
AZURITE := azurite@3.35.0

tools: tests/.node/node_modules/.bin/azurite-blob

tests/.node/node_modules/.bin/azurite-blob:
	mkdir -p tests/.node
	npm install --prefix tests/.node --no-audit --no-fund --loglevel=error $(AZURITE)

demo: $(VENV)/.installed-all
	$(BIN)/mlci demo

test: $(VENV)/.installed-dev lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports  # the layers: the contracts in pyproject.toml

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# pytest-xdist workers: most tests wait on subprocesses and servers, so more workers than
# cores pay (tests/README.md has the measurement). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --cov --cov-report=term

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/startup.py

# The release's files, checked as the release workflow checks them (.github/workflows/release.yml).
dist: $(VENV)/.installed-dev
	rm -rf dist
	$(BIN)/python -m build --outdir dist
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache .coverage tests/.node
