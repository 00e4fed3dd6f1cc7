# The two commands of the README:
#   make train   set up .venv and train an AAE on MNIST (plots and model in runs/default/)
#   make test    set up .venv and run the whole test suite (what CI runs)
#   make lab     set up .venv with JupyterLab and open the teaching notebooks (notebooks/); the server's
#                root is the repository, so what the notebooks link (../docs/derivations.md) opens too
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

# Use the MNIST copy beside the repo (../shared/data/mnist) when it is there;
# otherwise aae-np resolves --data-dir / AAE_NP_DATA / data/mnist / download.
SHARED_MNIST := $(abspath ../shared/data/mnist)
ifneq ($(wildcard $(SHARED_MNIST)/train-images-idx3-ubyte.gz),)
export AAE_NP_DATA ?= $(SHARED_MNIST)
endif

.PHONY: setup train test lab clean

# Extra options for the lab server, e.g. make lab LAB_ARGS="--no-browser --port=8899"
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to; the server still binds 127.0.0.1 only
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
	  { echo "aae_np needs Python >= 3.10; set PY=/path/to/python3.x"; exit 1; }
	@$(PY) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv module missing; installing python3-venv with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

train: setup
	$(BIN)/aae-np train --out runs/default --overwrite

test: setup
	$(BIN)/python -m pytest

lab: setup
	@$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[dev,lab]'
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
	  $(LAB_ROOT) $(LAB_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
