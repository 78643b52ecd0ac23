# postloan: `make demo` and `make test` work on a fresh clone (they create .venv).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export DO_NOT_TRACK := true

.PHONY: help demo test test-fast lint bench clean venv mlflow lab serve postgres fonts chromium

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)  ## create .venv and install the project (editable, dev extras)

demo: $(STAMP) fonts  ## generate the synthetic book and run the main job end to end
	$(BIN)/postloan demo

# The tests start their own throwaway PostgreSQL server (tests/postgres.py) from Debian's
# binaries; install them when missing (root, or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres:  ## install Debian's PostgreSQL server binaries when missing (the tests need them)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  echo "installing postgresql (tests start a throwaway server)"; \
	  $(SUDO) apt-get install -y postgresql || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y postgresql; }; }

# The Chinese validation pack and customer pages need real CJK fonts (Debian's Noto CJK);
# without them Chinese text shows as empty boxes in the pages and the figures.
fonts:  ## install Debian's fonts-noto-cjk when no CJK font is present (the Chinese pages need it)
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  echo "installing fonts-noto-cjk (Chinese text of the validation pack)"; \
	  $(SUDO) apt-get install -y --no-install-recommends fonts-noto-cjk fontconfig || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends fonts-noto-cjk fontconfig; } || \
	  echo "warning: fonts-noto-cjk not installed: Chinese text of the packs will show as boxes"; }

# Headless Chromium prints the packs to PDF and renders them in the browser tests;
# pdftoppm (poppler-utils) checks the PDF page by page.
chromium: fonts  ## install Debian's chromium and poppler-utils when missing (PDF packs, browser tests)
	@{ command -v chromium >/dev/null && command -v pdftoppm >/dev/null; } || { \
	  echo "installing chromium and poppler-utils (PDF packs, browser tests)"; \
	  $(SUDO) apt-get install -y --no-install-recommends chromium poppler-utils || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium poppler-utils; }; }

test: $(STAMP) postgres chromium  ## run the whole test suite (installs postgresql, chromium, CJK fonts when missing)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## run the unit tests only (no trained models, servers, Dask or demo book), on 2 cores
	$(BIN)/python -m pytest -m "not slow and not integration" -n 2

lint: $(STAMP)  ## ruff lint and the wings' import rule (import-linter, docs/architecture.md)
	$(BIN)/ruff check src pipelines serving tests benchmarks
	PYTHONPATH=src:. $(BIN)/lint-imports --no-cache

bench: $(STAMP)  ## run the benchmarks (results JSON + docs/benchmarks.md; serving ones need `make demo` first)
	$(BIN)/python benchmarks/generator.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/queue_capture.py
	$(BIN)/python benchmarks/policy_replay.py
	$(BIN)/python benchmarks/german_credit.py
	$(BIN)/python benchmarks/scorecard.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/serving.py --docs
	$(BIN)/python benchmarks/by_id.py --docs
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/treeshap.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/ingest.py --peer skip --arrow-peers --name ingest_1m_arrow_peers
	$(BIN)/python benchmarks/performance_estimation.py
	$(BIN)/python benchmarks/pack.py
	$(BIN)/python benchmarks/clean_book_warnings.py
	$(BIN)/python benchmarks/uplift_windows.py
	$(BIN)/python benchmarks/cycle_month.py --docs
	$(BIN)/python benchmarks/holdout_cost.py
	$(BIN)/python benchmarks/operations_year.py --customers 2000 --seeds 6 --capacity 100

NB_STAMP := $(VENV)/.notebooks-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
$(NB_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	@rm -f $(VENV)/.notebooks-*; touch $@

lab: $(NB_STAMP)  ## JupyterLab on 127.0.0.1 with the project's environment
	$(BIN)/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir=$(CURDIR)/notebooks

serve: $(STAMP)  ## run the scoring service on 127.0.0.1:3000 (needs POSTLOAN_API_TOKENS; see serving/README.md)
	POSTLOAN_MODEL_DIR=$${POSTLOAN_MODEL_DIR:-models} $(BIN)/python -m serving --port $${PORT:-3000}

mlflow: $(STAMP)  ## open the MLflow UI on 127.0.0.1:5000 (runs, plots, registry)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --default-artifact-root ./mlartifacts --host 127.0.0.1 --port 5000

clean:  ## remove generated data, MLflow store and caches (keeps .venv)
	rm -rf data/raw data/processed mlflow.db mlartifacts .cache .pytest_cache
