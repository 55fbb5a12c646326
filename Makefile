# simsys — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test test-fast lint bench clean help notebooks

help:
	@echo "make demo   create .venv, install simsys, run scenarios/checkout.yaml, write out/checkout/ and its report"
	@echo "make test   create .venv, install with test extras, run ruff and the whole test suite"
	@echo "make test-fast  the same without the tests marked slow (theory replications, notebooks)"
	@echo "make notebooks  install the notebooks extra (Jupyter, ipywidgets, scipy) and open notebooks/ in JupyterLab"
	@echo "make bench  run the benchmarks in benchmarks/ (ratios against bare simpy, measured in one run)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

$(VENV)/.installed-notebooks: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[notebooks]"
	touch $(VENV)/.installed $@

notebooks: $(VENV)/.installed-notebooks
	cd notebooks && ../$(BIN)/jupyter lab

demo: $(VENV)/.installed
	MPLBACKEND=Agg $(BIN)/simsys run scenarios/checkout.yaml --out out/checkout
	MPLBACKEND=Agg $(BIN)/simsys report out/checkout

test: $(VENV)/.installed-test
	$(BIN)/ruff check simsys tests benchmarks
	MPLBACKEND=Agg $(BIN)/python -m pytest -n 2 -q

test-fast: $(VENV)/.installed-test
	$(BIN)/ruff check simsys tests benchmarks
	MPLBACKEND=Agg $(BIN)/python -m pytest -n 2 -q -m "not slow"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check simsys tests benchmarks

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/core.py

clean:
	rm -rf out .pytest_cache build *.egg-info
