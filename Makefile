# Normwacht. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .run/tools
UV := $(TOOLS)/bin/uv
VENV := .venv

.PHONY: help install system-deps run test test-unit lint format schemas dashboards alertmanager-intervals kafka-up kafka-down bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-23s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-deps: ## Install the Debian packages the project needs (PostgreSQL, kcat, Prometheus, Alertmanager, curl, Node) if missing
	@deploy/system-deps.sh

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# The AsyncAPI parser the contract test runs (tests/integration/test_asyncapi.py), pinned by
# its lock file; --ignore-scripts: it needs none (one dependency would send telemetry).
ASYNCAPI := tools/asyncapi
$(ASYNCAPI)/node_modules/.installed: $(ASYNCAPI)/package.json $(ASYNCAPI)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 1; }
	cd $(ASYNCAPI) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

install: system-deps $(VENV)/.synced $(ASYNCAPI)/node_modules/.installed ## Set up everything: Debian packages, .venv, the Kafka jars, the AsyncAPI parser
	@deploy/kafka/kafka.sh install

run: install ## Run the whole system: broker, processor, ingest (:8000), api (:8001), notifier (:8002), Prometheus (:9090), Alertmanager (:9093)
	@deploy/run.sh

test: install ## Run every test (unit, integration on a real broker and database, end to end)
	$(VENV)/bin/pytest

test-unit: $(VENV)/.synced ## Run the unit tests only (no I/O, seconds)
	$(VENV)/bin/pytest tests/unit

lint: $(VENV)/.synced ## ruff, mypy --strict, and the schema files are current
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/normwacht schemas check

format: $(VENV)/.synced ## Format and autofix the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schemas: $(VENV)/.synced ## Export the JSON Schemas into schemas/
	$(VENV)/bin/normwacht schemas export

dashboards: $(VENV)/.synced ## Generate the Grafana dashboards into deploy/grafana/dashboards
	$(VENV)/bin/python -m normwacht.ops.dashboards

alertmanager-intervals: $(VENV)/.synced ## Regenerate Alertmanager's office hours from the calendars
	$(VENV)/bin/normwacht alertmanager-intervals

kafka-up: install ## Start the local broker on 127.0.0.1:9092 (data in .run/kafka)
	@deploy/kafka/kafka.sh start

kafka-down: ## Stop the local broker
	@deploy/kafka/kafka.sh stop

bench: install ## Run the benchmarks of docs/BENCHMARKS.md (2 hours or more)
	$(VENV)/bin/python -m bench deadlines --lines 10000 --runs 5
	$(VENV)/bin/python -m bench apply-cost
	$(VENV)/bin/python -m bench handler-cost
	$(VENV)/bin/python -m bench report-cost
	$(VENV)/bin/python -m bench throughput --events 30000 --runs 3
	$(VENV)/bin/python -m bench throughput --events 100000 --runs 3 --floors
	$(VENV)/bin/python -m bench throughput --events 30000 --runs 3 --workers 2
	$(VENV)/bin/python -m bench breach-latency --background-rate 200 --runs 3
	$(VENV)/bin/python -m bench breach-latency --background-rate 500 --runs 3
	$(VENV)/bin/python -m bench breach-latency --relative-load 0.5 --capacity-events 100000 --runs 3
	$(VENV)/bin/python -m bench breach-latency --background-rate 2000 --runs 3
	$(VENV)/bin/python -m bench breach-latency --background-rate 2000 --runs 3 --workers 2
	$(VENV)/bin/python -m bench notify-latency --breaches 200 --background-rate 100 --runs 3
	$(VENV)/bin/python -m bench open-clocks --reports 500000
	$(VENV)/bin/python -m bench open-clocks --reports 500000 --static-membership
	$(VENV)/bin/python -m bench replay --events 1000000
	$(VENV)/bin/python -m bench ingest-throughput --events 50000 --batch 500 --clients 4 --runs 3
	$(VENV)/bin/python -m bench ingest-latency --rate 500 --seconds 30 --runs 3

clean: kafka-down ## Remove everything generated (.venv, .run)
	rm -rf $(VENV) .run
