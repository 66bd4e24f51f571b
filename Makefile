# Two commands on a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv on first use (needs only python3 and make).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mediatools demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

fuzz: $(STAMP)
	MEDIATOOLS_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q tests -k fuzz

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/mix_bench.py
	$(BIN)/python benchmarks/merge_bench.py
	$(BIN)/python benchmarks/verify_bench.py
	$(BIN)/python benchmarks/activity_bench.py
	$(BIN)/python benchmarks/fetch_bench.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info demo-output
