# The two front-door commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/pip --disable-pip-version-check -q
RECBOLE = recbole==1.2.1

.PHONY: demo test lint install install-dev bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# MovieLens-100K ships inside the recbole wheel; install it without its dependencies.
install: $(BIN)/python
	$(PIP) install -e .
	$(PIP) install --no-deps $(RECBOLE)

install-dev: $(BIN)/python
	$(PIP) install -e ".[dev]"
	$(PIP) install --no-deps $(RECBOLE)

demo: install
	OPENBLAS_NUM_THREADS=1 $(BIN)/novarank demo

test: install-dev
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev
	OPENBLAS_NUM_THREADS=1 $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
