# Two commands do all the set-up on a fresh clone (see README.md):
#   make lab    create .venv on first use, install, open the course in JupyterLab
#   make test   create .venv on first use, install, run the linter, then pytest and nbval over every notebook
#               (two workers: TEST_WORKERS)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest options, e.g. make test PYTEST_ARGS="-x -k boxes"
PYTEST_ARGS ?=

.PHONY: lab lint test test-fast test-package test-notebooks student site grade nbgrader-course clean-venv gpu-bundle gpu-dry-run

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[course,test,data,classroom]"
	touch $(STAMP)

# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port 8890". As root (a
# container, a classroom VM) Jupyter refuses to start without --allow-root: add it there.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/00_overview.ipynb

# One pytest run: the package's tests and every notebook under nbval (checks are assert
# cells, so --nbval-lax; --nbval-current-env runs the notebooks in this venv's kernel).
# It runs in TEST_WORKERS processes (pytest-xdist; 0: one process, in order). --dist loadscope
# keeps each test file and each notebook whole on one worker, in order. Every worker's torch
# uses one thread: two processes of two threads each on a 2-core CPU wait for each other
# (benchmarks/README.md, "Lesson run times": 11 instead of 16-18 minutes on 2 cores).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope tests notebooks \
		--nbval-lax --nbval-current-env --durations=15 $(PYTEST_ARGS)

# The linter (pyproject.toml, [tool.ruff]): pyflakes, import order, lines of at most 120 characters.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The quick loop while changing the package: its unit tests, without the lessons, kernels, the
# browser, the command line or training runs (tests marked slow or browser; pyproject.toml).
test-fast: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow and not browser" $(PYTEST_ARGS)

test-package: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	$(PY) -m pytest notebooks --nbval-lax --nbval-current-env --durations=0 $(PYTEST_ARGS)

# Classroom editions (minifrcnn/course/editions.py; docs/teaching.md):
#   make student   student/: every lesson with its solution cells replaced by TODO stubs
#   make grade     run a learner's notebooks and score them by their checkers
#   make site      site/: every lesson executed, as HTML pages with figures, and an index
# Build the site for some lessons only: make site SITE_LESSONS="notebooks/01_boxes_and_iou.ipynb"
SITE_LESSONS ?=

student: $(STAMP)
	$(PY) -m minifrcnn.course student student

# Score a learner's notebooks by their checkers: make grade NOTEBOOKS="submissions/alice/*.ipynb"
NOTEBOOKS ?= student/*.ipynb
grade: $(STAMP)
	$(PY) -m minifrcnn.course grade $(NOTEBOOKS)

site: $(STAMP)
	$(PY) -m minifrcnn.course html site $(SITE_LESSONS)

# The lessons as nbgrader assignments (docs/teaching.md, "Running it on a JupyterHub"): an nbgrader
# course folder, one assignment per lesson, e.g. make nbgrader-course NBGRADER_COURSE=~/minifrcnn-course
NBGRADER_COURSE ?= nbgrader-course
nbgrader-course: $(STAMP)
	$(PY) -m minifrcnn.course nbgrader $(NBGRADER_COURSE)

clean-venv:
	rm -rf $(VENV)

# GPU validation in one device call (issue 16; benchmarks/README.md, "GPU validation"):
#   make gpu-bundle    .gpu-bundle/: the wheels (CPython 3.12, manylinux x86_64) of what the tests and
#                      lessons need that the lent GPU machine lacks; then a device call runs
#                      `bash benchmarks/gpu_check.sh` with carry [".gpu-bundle"]
#   make gpu-bundle GPU_BUNDLE_PYTHON=3.11 GPU_BUNDLE=.gpu-bundle-py311   the same for this machine
#   make gpu-dry-run   that script here, on the CPU, in a venv that looks like the GPU machine
#                      (GPU_DRY_VENV), with a bundle for this Python and a subset (GPU_DRY_ARGS)
GPU_BUNDLE_PYTHON ?= 3.12
GPU_BUNDLE ?= .gpu-bundle
GPU_DRY_VENV ?= /tmp/minifrcnn-gpu-dry
GPU_DRY_ARGS ?= --tests-k "nms or boxes" --lessons "01 03" --workers 2 --nb-workers 2 --train-steps 5 \
	--timing-args "--train-images 64 --test-images 24 --repeats 1" --bench-steps 2 --bench-args "--quick --threads 1"
BUNDLE_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
# The bundle for the GPU machine resolves against its torch 2.11 / torchvision 0.26 / numpy 2.5;
# one for another Python, against this venv's versions.
gpu-bundle:
	$(BUNDLE_PY) benchmarks/gpu_report.py bundle --python $(GPU_BUNDLE_PYTHON) --dest $(GPU_BUNDLE) \
		$(if $(filter-out 3.12,$(GPU_BUNDLE_PYTHON)),--pins-from $(PY))

gpu-dry-run:
	@test -x $(PY) || { echo "make gpu-dry-run needs $(PY): run make test-package once"; exit 1; }
	$(MAKE) gpu-bundle GPU_BUNDLE_PYTHON=$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
		GPU_BUNDLE=.gpu-bundle-dry
	$(PY) benchmarks/gpu_report.py dry-env $(GPU_DRY_VENV)
	OUT=build/gpu-check-dry nice -n 19 bash benchmarks/gpu_check.sh --python $(GPU_DRY_VENV)/bin/python \
		--bundle .gpu-bundle-dry --device cpu $(GPU_DRY_ARGS)
