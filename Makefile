# Two commands do all set-up on a fresh machine with Python 3.11+: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The modeler-side diagram checks (tests/bpmn) need the npm packages pinned in package-lock.json; `make test`
# installs them into ./node_modules when Node.js and npm are on PATH (the tests skip only without Node.js).
NODE_MODULES := $(if $(and $(shell command -v node),$(shell command -v npm)),node_modules/.installed)
# pytest runs on every core (pytest-xdist: one worker per CPU). `--dist loadgroup` hands out single tests,
# except that the tests of one `xdist_group` mark go to one worker, one after the other (the marks say why:
# an expensive system a module shares, or tests that must not overlap). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= auto

.PHONY: up test lint typecheck unit protos docs pictures console-assets bench clean

up: $(VENV)/.installed          ## run the whole system: NATS, the orchestrator and five services
	$(BIN)/consultflow up

# checkov (tests/deploy/test_release.py) lives in a virtual environment of its own: its pins clash with ours.
test: $(VENV)/.installed-dev $(NODE_MODULES) .venv-checkov/bin/checkov  ## lint, type-check and run every test
	$(BIN)/ruff check services tests scripts
	$(BIN)/ruff format --check services tests scripts
	$(BIN)/mypy
	CONSULTFLOW_CHECKOV=$(CURDIR)/.venv-checkov/bin/checkov $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "consultflow needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

protos: $(VENV)/.installed-dev  ## regenerate services/consultflow/api from protos/
	rm -rf services/consultflow/api
	$(BIN)/python scripts/gen_protos.py

docs: $(VENV)/.installed-dev    ## regenerate the generated documents under docs/
	$(BIN)/python -m consultflow.platform.settings > docs/configuration.md
	$(BIN)/python -m consultflow.traceability

pictures: $(VENV)/.installed-dev $(NODE_MODULES)  ## draw every bpmn/*.bpmn into docs/images/<name>.png (chromium)
	$(BIN)/python scripts/render_diagrams.py

console-assets: node_modules/.installed  ## rebuild the console's front end (console/) into services/consultflow/console/static
	node console/build.mjs

bench: $(VENV)/.installed-dev   ## print the benchmark figures (not pass/fail)
	$(BIN)/pytest -q -s -m benchmark tests/benchmarks

.PHONY: bench-system
bench-system: $(VENV)/.installed-dev  ## K demo engagements through the whole system as processes; prints figures (K: CONSULTFLOW_BENCH_ENGAGEMENTS, default 20)
	CONSULTFLOW_BENCH_SYSTEM=1 $(BIN)/pytest -q -s -p no:cacheprovider -m benchmark tests/benchmarks/test_system_bench.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .venv-checkov node_modules .consultflow .pytest_cache .mypy_cache .ruff_cache

.PHONY: console-screenshots
console-screenshots: $(VENV)/.installed-dev  ## retake docs/images/console-*.png: the console's browser tests (chromium)
	CONSULTFLOW_SCREENSHOTS=1 $(BIN)/pytest -q -p no:cacheprovider tests/e2e/console

.PHONY: lock checkov
lock:  ## refresh requirements.lock (the image's hashed dependencies) from pyproject.toml; needs Python 3.11
	deploy/lock-requirements.sh

.venv-checkov/bin/checkov:
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'

checkov: $(VENV)/.installed-dev .venv-checkov/bin/checkov  ## checkov on every rendered kustomization (its own venv, not a dev dependency)
	CONSULTFLOW_CHECKOV=$(CURDIR)/.venv-checkov/bin/checkov $(BIN)/pytest -q -p no:cacheprovider tests/deploy/test_release.py -k checkov
