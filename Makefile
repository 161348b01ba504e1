# Two commands do everything on a fresh machine:
#   make demo   - set up .venv and run the gate chain on the bundled example
#   make test   - run the whole test suite
# and `make bench` re-runs the benchmarks and rewrites docs/benchmarks.md.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

PIP    := $(VENV)/bin/python -m pip --quiet --disable-pip-version-check --no-input

# Everything downloaded is pinned by hash, as the actions install (--require-hashes):
# requirements/dev.txt is runtime.txt's dependencies plus the test runner and the tools
# the tests drive (its header says how to regenerate it). tw-gates itself is then
# installed editable from this checkout without fetching anything (--no-deps, and the
# build backend from the lock: --no-build-isolation).
$(STAMP): pyproject.toml requirements/dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements/dev.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tw-gates demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n auto

bench: $(STAMP)
	$(VENV)/bin/python -m tests.bench.run_all --write-docs

lint: $(STAMP)
	$(VENV)/bin/ruff format --check scripts tests
	$(VENV)/bin/ruff check scripts tests
	$(VENV)/bin/mypy
	$(VENV)/bin/zizmor --offline --min-severity informational .
	$(VENV)/bin/actionlint

clean:
	rm -rf $(VENV) .metrics demo-out .pytest_cache
