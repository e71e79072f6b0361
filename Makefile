# Two commands do all the set-up on a fresh clone (see README.md):
#   make lab    create .venv on first use, install, open the course in JupyterLab
#   make test   create .venv on first use, install, run pytest and nbval over every notebook
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest options, e.g. make test PYTEST_ARGS="-x -k boxes"
PYTEST_ARGS ?=

.PHONY: lab test test-package test-notebooks clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[course,test,data]"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_overview.ipynb

# One pytest run: the package's tests and every notebook under nbval (checks are assert
# cells, so --nbval-lax; --nbval-current-env runs the notebooks in this venv's kernel).
test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --durations=15 $(PYTEST_ARGS)

test-package: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	$(PY) -m pytest notebooks --nbval-lax --nbval-current-env --durations=0 $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
