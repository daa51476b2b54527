# Two commands do all the set-up on a fresh machine:
#   make reproduce   create .venv, install, run the main job on the built-in synthetic glaciers
#   make test        create .venv, install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PRESET ?= demo
STAMP  := $(VENV)/.installed

.PHONY: install reproduce reproduce-motion test test-slow test-cluster lint bench clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not cluster"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# the tests that need a SLURM cluster (scripts/start_slurm.sh starts one on this machine)
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	for b in $(filter-out benchmarks/gpu.py,$(wildcard benchmarks/*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done
	if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/python benchmarks/gpu.py; else echo "== benchmarks/gpu.py skipped: no usable CUDA GPU"; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
