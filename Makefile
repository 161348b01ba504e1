# Two commands do everything on a fresh machine:
#   make demo   - set up .venv and run the gate chain on the bundled example
#   make test   - run the whole test suite
# and `make bench` re-runs the benchmarks and rewrites docs/benchmarks.md.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml requirements/runtime.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/runtime.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tw-gates demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n auto

bench: $(STAMP)
	$(VENV)/bin/python -m tests.bench.run_all --write-docs

lint: $(STAMP)
	$(VENV)/bin/zizmor --offline .
	$(VENV)/bin/actionlint

clean:
	rm -rf $(VENV) .metrics demo-out .pytest_cache
