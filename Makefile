# relayflow: two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
FUZZ_MINUTES ?= 10

.PHONY: help install kafka tls-tools prometheus asyncapi-specs asyncapi browser htmx lint typecheck check docs docs-build test test-unit test-integration test-faults fuzz demo bench fakefrontend s3 dev-up dev-down dev-status clean temporal-server

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)  ## Create .venv and install relayflow with its dev extras

kafka: install  ## Fetch the Kafka jars and the tests' schema registry (Maven Central) and build Toxiproxy (Go) into the cache, once
	$(BIN)/relayflow dev fetch
	$(BIN)/python -m devtools.toxiproxy

s3: install  ## Build versitygw (Go, the S3-compatible server of the claim-check tests) into the cache, once
	$(BIN)/python -m devtools.versitygw

fakefrontend: install  ## Build bench/fakefrontend (Go, the stand-in Temporal frontend of bench.ceiling) into the cache, once
	$(BIN)/python -m devtools.fakefrontend

temporal-server: install  ## PostgreSQL (Debian) and the real Temporal server (Go, go.temporal.io/server) for `dev up --temporal server` and bench.servers, once (a cold build takes minutes)
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
		(apt-get update && apt-get install -y --no-install-recommends postgresql)
	$(BIN)/python -m relayflow.devstack.temporal_server

tls-tools:  ## nginx from Debian: the TLS terminator in front of Temporal in the TLS tests
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
		(apt-get update && apt-get install -y nginx-light)

prometheus:  ## Prometheus from Debian: the metrics tests start their own server process
	@command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] || \
		(apt-get update && apt-get install -y --no-install-recommends prometheus)

asyncapi-specs: install  ## npm (Debian) and the official AsyncAPI JSON Schema (@asyncapi/specs) into the cache, once
	@command -v npm >/dev/null || (apt-get update && apt-get install -y npm)
	$(BIN)/python -m devtools.asyncapi_specs

asyncapi: install  ## Regenerate docs/asyncapi.yaml (the Kafka contract, default settings) from the code
	$(BIN)/relayflow asyncapi --defaults --output docs/asyncapi.yaml

browser:  ## Debian's chromium: the real browser the console's tests drive (Playwright, never `playwright install`)
	@[ -x /usr/bin/chromium ] || (apt-get update && apt-get install -y chromium)

HTMX_VERSION ?= 2.0.11
htmx:  ## Re-vendor the console's htmx.min.js from the npm registry (htmx.org@HTMX_VERSION); a unit test pins its sha256
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null && \
		tar xzf htmx.org-$(HTMX_VERSION).tgz && \
		cp package/dist/htmx.min.js $(CURDIR)/relayflow/console/static/htmx.min.js && \
		cp package/LICENSE $(CURDIR)/relayflow/console/static/htmx.LICENSE && rm -rf $$tmp

lint: install  ## ruff
	$(BIN)/ruff check .

typecheck: install  ## mypy --strict
	$(BIN)/mypy

check: lint typecheck  ## ruff + mypy

DOCS_PORT ?= 8000
docs: install  ## Serve the documentation site (mkdocs, live reload) on http://127.0.0.1:DOCS_PORT
	$(BIN)/python -m mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: install  ## Build the documentation site with --strict (a broken link or page left out of the nav fails)
	tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
		NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --quiet --site-dir $$tmp

test: install kafka fakefrontend s3 tls-tools prometheus asyncapi-specs browser check docs-build  ## Install, start the real Kafka + Temporal the tests need, run everything
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install asyncapi-specs  ## Unit tests only (no services)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install kafka fakefrontend s3 tls-tools prometheus browser  ## Integration tests on a real Kafka + Temporal
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-faults: install kafka  ## Fault tests (processes killed, services restarted)
	$(BIN)/pytest tests/faults $(PYTEST_ARGS)

fuzz: install  ## Fuzz the decoder for FUZZ_MINUTES (default 10), fresh seeds; failures kept in .hypothesis/fuzz
	RELAYFLOW_FUZZ_MINUTES=$(FUZZ_MINUTES) $(BIN)/pytest tests/unit/bridge/test_decoder_fuzz.py --timeout=0 $(PYTEST_ARGS)

demo: install kafka  ## Start the stack, bridge and worker, send sample events, show outcomes (with the carts example beside)
	$(BIN)/relayflow demo --with examples.carts.app:APP

bench: install kafka fakefrontend temporal-server  ## Benchmarks on their own stack (ports 29092/27233, minutes): tables + ratios
	$(BIN)/python -m bench.codec
	$(BIN)/python -m bench.start_throughput
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.secured
	$(BIN)/python -m bench.observability
	$(BIN)/python -m bench.ceiling
	$(BIN)/python -m bench.servers

dev-up: install kafka  ## Start the local Kafka + Temporal dev stack
	$(BIN)/relayflow dev up

dev-down: install  ## Stop the local dev stack
	$(BIN)/relayflow dev down

dev-status: install  ## What runs where
	$(BIN)/relayflow dev status

clean:  ## Remove the venv and local state (the Kafka jar cache in ~/.cache/relayflow stays)
	-$(BIN)/relayflow dev down
	rm -rf $(VENV) .relayflow .relayflow-test .mypy_cache .ruff_cache .pytest_cache
