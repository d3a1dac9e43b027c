# The two front-door commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/pip --disable-pip-version-check -q
RECBOLE = recbole==1.2.1
# the versions CI tested: a new release of a dependency cannot break a fresh `make test`
PINS    = -c constraints.txt

.PHONY: demo test lint install install-dev bench clean upgrade

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# MovieLens-100K ships inside the recbole wheel; install it without its dependencies.
install: $(BIN)/python
	$(PIP) install $(PINS) -e .
	$(PIP) install --no-deps $(PINS) $(RECBOLE)

install-dev: $(BIN)/python
	$(PIP) install $(PINS) -e ".[dev]"
	$(PIP) install --no-deps $(PINS) $(RECBOLE)

demo: install
	OPENBLAS_NUM_THREADS=1 $(BIN)/novarank demo

test: install-dev
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev
	OPENBLAS_NUM_THREADS=1 $(BIN)/python bench/run_all.py

# A deliberate upgrade: newest versions in a scratch venv, the whole suite on them, and
# constraints.txt rewritten only if it passes. Review the diff and commit it.
UPGRADE_VENV = .venv-upgrade
upgrade:
	rm -rf $(UPGRADE_VENV)
	$(PYTHON) -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/pip --disable-pip-version-check -q install --upgrade pip
	$(UPGRADE_VENV)/bin/pip --disable-pip-version-check -q install -e ".[dev]"
	$(UPGRADE_VENV)/bin/pip --disable-pip-version-check -q install --no-deps $(RECBOLE)
	OPENBLAS_NUM_THREADS=1 $(UPGRADE_VENV)/bin/python -m pytest -q -n 2 --dist loadgroup
	{ sed -n '1,3p' constraints.txt; \
	  $(UPGRADE_VENV)/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(UPGRADE_VENV)
	$(MAKE) install-dev

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
