# The two set-up commands of the README:
#   make demo   install and launch the dashboard on the embedded demo (building its cache first if absent)
#   make test   install (with test tools and Debian's headless Chromium), lint and type-check, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lint install install-test browser bench clean-cache

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e .

install-test: $(PY)
	$(PY) -m pip install -q -e '.[test]'

# Debian's chromium + chromedriver serve the browser tests (a test tool's own browser download fails offline).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "install Debian's chromium and chromium-driver (sudo apt-get install chromium chromium-driver) for the browser tests"; fi; }

demo: install
	$(PY) -m dashboard

# ruff over the whole tree and mypy over the packages named in pyproject.toml, both clean
lint: install-test
	$(PY) -m ruff check .
	$(PY) -m mypy

test: install-test browser lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/build.py
	$(PY) benchmarks/conductance.py
	$(PY) benchmarks/callbacks.py

clean-cache:
	rm -rf cache/.builds cache/digits
