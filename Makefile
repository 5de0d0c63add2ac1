# Two commands on a fresh machine:
#   make demo   install, build the bundled sample episode from real face media, run it, print screen time
#   make test   install with test extras and run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export RAY_USAGE_STATS_ENABLED ?= 0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/screenalytics demo --data-dir data

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) -m bench.accuracy
	$(PY) -m bench.throughput

.PHONY: install demo test bench
