# Marionette developer commands. Each sets up what it needs from nothing (venv, packages, data).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROMPT ?=
SECONDS ?=
SEED ?=

.PHONY: venv data test demo build bench clean

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

data: venv
	$(PY) -m training.data

test: venv data
	$(PY) -m pytest -q tests

demo: venv data
	$(PY) scripts/demo.py

build: venv
	$(PY) scripts/build.py

clean:
	rm -rf out dist .pytest_cache
