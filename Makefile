# Two commands do all the set-up on a fresh clone (see README.md):
#   make lab    create .venv on first use, install, open the course in JupyterLab
#   make test   create .venv on first use, install, run pytest and nbval over every notebook
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest options, e.g. make test PYTEST_ARGS="-x -k boxes"
PYTEST_ARGS ?=

.PHONY: lab test test-package test-notebooks student site clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[course,test,data]"
	touch $(STAMP)

# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port 8890". As root (a
# container, a classroom VM) Jupyter refuses to start without --allow-root: add it there.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/00_overview.ipynb

# One pytest run: the package's tests and every notebook under nbval (checks are assert
# cells, so --nbval-lax; --nbval-current-env runs the notebooks in this venv's kernel).
test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --durations=15 $(PYTEST_ARGS)

test-package: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	$(PY) -m pytest notebooks --nbval-lax --nbval-current-env --durations=0 $(PYTEST_ARGS)

# Classroom editions (minifrcnn/course.py; docs/teaching.md):
#   make student   student/: every lesson with its solution cells replaced by TODO stubs
#   make site      site/: every lesson executed, as HTML pages with figures, and an index
# Build the site for some lessons only: make site SITE_LESSONS="notebooks/01_boxes_and_iou.ipynb"
SITE_LESSONS ?=

student: $(STAMP)
	$(PY) -m minifrcnn.course student student

site: $(STAMP)
	$(PY) -m minifrcnn.course html site $(SITE_LESSONS)

clean-venv:
	rm -rf $(VENV)
