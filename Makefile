# Two set-up commands for a fresh machine (see README):
#   make demo   installs into .venv and runs the whole stack on the simulated device
#   make test   installs into .venv (with test tools) and runs the full test suite
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# local CPU wheel: an unpinned torch would pull several GB of CUDA packages
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dfa,test]'
	touch $@

.PHONY: install demo test lint bench
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/opu demo
	# DFA through the simulated OPU (the CLI's demo leaves training to the example)
	$(PY) examples/dfa_digits.py

# The suite runs on the machine's own OpenBLAS kernel (OPENBLAS_CORETYPE unset), then the
# `numerics` tests (float-order sensitive, see tests/conftest.py) again on the AVX2 (Haswell)
# kernel, which every x86-64 machine can run: results must not depend on the kernel.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	env -u OPENBLAS_CORETYPE $(PY) -m pytest
	OPENBLAS_CORETYPE=Haswell $(PY) -m pytest -m numerics -q

bench: $(VENV)/.installed
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done
