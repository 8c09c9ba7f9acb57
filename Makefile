# Marionette developer commands. Each sets up what it needs from nothing (venv, packages, data).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROMPT ?=
SECONDS ?=
SEED ?=

.PHONY: venv data dataset test demo build bench train clean

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

data: venv
	$(PY) -m training.data

# The built dataset (about 5 min, once): training reads it, and so does the evaluator's tremor test.
DATASET := .cache/dataset/clips.json
$(DATASET): | venv data
	$(PY) -m training.build_dataset

test: venv data $(DATASET)
	$(PY) -m pytest -q tests

demo: venv data
	$(PY) scripts/demo.py $(if $(PROMPT),--prompt "$(PROMPT)") $(if $(SECONDS),--seconds $(SECONDS)) $(if $(SEED),--seed $(SEED)) $(if $(STYLE),--style "$(STYLE)")

dataset: venv data
	$(PY) -m training.build_dataset

# Quality and speed of the shipped model on the held-out test split -> out/bench.json
bench: venv data
	$(PY) -m benchmarks.bench

# CPU by default; the same command uses CUDA (bf16) where present. Resumes from .cache/runs/$(RUN).
RUN ?= base
MINUTES ?= 60
train: venv data $(DATASET)
	$(PY) -m training.train --run $(RUN) --minutes $(MINUTES)

build: venv
	$(PY) scripts/build.py

clean:
	rm -rf out dist .pytest_cache
