# Two commands do all the set-up on a fresh machine:
#   make reproduce   create .venv, install, run the main job on the built-in synthetic glaciers
#   make test        create .venv, install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PRESET ?= demo
STAMP  := $(VENV)/.installed
# test workers: one per core (pytest-xdist); each test file runs whole on one worker, so a
# module's shared fixture (e.g. experiment 4's job) is built once; files are handed out in
# collection order, the longest first (tests/conftest.py: LONGEST_FIRST), not xdist's
# most-tests-first order, which left the whole-job files for last
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := $(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile --no-loadscope-reorder

.PHONY: install reproduce reproduce-motion reproduce-predictability test test-slow test-cluster lint typecheck bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/glacier-movement reproduce --preset $(PRESET)

# experiment 4, the motion benchmark (beyond the paper); adds its section to results/README.md
reproduce-motion: $(STAMP)
	$(BIN)/glacier-movement reproduce --preset $(PRESET) --experiments 4

# experiment 5, the predictability sweep (beyond the paper; 12.8 min measured at the demo preset on
# a quiet 2-core machine, install included: docs/evaluation.md); adds its section and figure to
# results/README.md
reproduce-predictability: $(STAMP)
	$(BIN)/glacier-movement reproduce --preset $(PRESET) --experiments 5

test: $(STAMP)
	$(PYTEST) -m "not slow and not cluster"

test-slow: $(STAMP)
	$(PYTEST) -m "slow and not cluster"

# `reproduce --executor slurm|dask` end to end: needs a SLURM daemon (scripts/start_slurm.sh
# starts one on this machine, as root) and a dask LocalCluster; the two tests are independent
# and run at once (-n 2), the --jobs 1 run they compare with is built once for both
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m cluster tests/test_jobs.py

lint: typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pyright, basic mode ([tool.pyright] in pyproject.toml); offline: its wheel bundles the checker
# and node comes from the system
typecheck: $(STAMP)
	$(BIN)/pyright --pythonpath $(BIN)/python

bench: $(STAMP)
	for b in $(filter-out benchmarks/gpu.py,$(wildcard benchmarks/*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done
	if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/python benchmarks/gpu.py; else echo "== benchmarks/gpu.py skipped: no usable CUDA GPU"; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
