# Everything runs from the project virtualenv (.venv), created on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LAKEHOUSE_ENV_FILE ?= envs/local.env

.PHONY: help venv run-local test test-unit test-integration soak check format lint typecheck bench generate query clean-lake

help:  ## list targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies

run-local: $(STAMP)  ## whole pipeline on the local lake (lake/), generating scale-1 data if raw is empty
	$(PY) -m infra.generator --if-empty
	$(PY) -m jobs run
	@echo
	@echo "Example DuckDB query over gold:"
	$(PY) -m jobs query "SELECT week_start, count(*) AS prints, round(avg(clicked::INT), 4) AS ctr, sum(prior_amount) AS prior_amount FROM gold.print_features GROUP BY ALL ORDER BY week_start"

test: $(STAMP)  ## the whole test suite (what CI runs), with the coverage floor
	$(PY) -m pytest

test-unit: $(STAMP)  ## tests that need no server (no S3, no Airflow): seconds to minutes
	$(PY) -m pytest -m "not integration" --no-cov

test-integration: $(STAMP)  ## tests against real servers (weed mini, airflow)
	$(PY) -m pytest -m integration --no-cov

SOAK_TRIALS ?= 30
soak: $(STAMP)  ## kill -9 fault injection at many random points (outside CI): make soak SOAK_TRIALS=100
	SOAK_TRIALS=$(SOAK_TRIALS) $(PY) -m pytest tests/integrity/test_exactly_once.py -k killed --no-cov

SCALE ?= 10
bench: $(STAMP)  ## benchmark (infra/bench): stages + gold vs DuckDB/pandas/I/O floor (make bench SCALE=1|10|100)
	$(PY) -m infra.bench --scale $(SCALE) $(BENCH_ARGS)

check: lint typecheck  ## what CI enforces before the tests: format, lint, types
	$(VENV)/bin/ruff format --check jobs dags infra tests

format: $(STAMP)  ## apply ruff's formatting and safe lint fixes
	$(VENV)/bin/ruff format jobs dags infra tests
	$(VENV)/bin/ruff check --fix jobs dags infra tests

lint: $(STAMP)  ## ruff lint (bugbear and bandit security rules included)
	$(VENV)/bin/ruff check jobs dags infra tests

typecheck: $(STAMP)  ## mypy on jobs/ and dags/
	$(VENV)/bin/mypy

generate: $(STAMP)  ## raw data (infra/generator): make generate ARGS="--scale 10"
	$(PY) -m infra.generator $(ARGS)

query: $(STAMP)  ## make query SQL="SELECT ..."
	$(PY) -m jobs query "$(SQL)"

clean-lake:  ## delete the local lake's data (keeps lake/README.md)
	find lake -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

# -- Airflow 3, native (no Docker): python -m infra.airflow.native -----------------------------
AIRFLOW_ENV ?= envs/airflow.env
AIRFLOW_LAKE_ENV ?= envs/stack.env

.PHONY: airflow-up airflow-down airflow-status dag-test
airflow-up: $(STAMP)  ## airflow standalone on 127.0.0.1 (.airflow/), DAG unpaused on the local S3 stack
	$(PY) -m infra.airflow.native up --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV)

airflow-down:  ## stop airflow standalone (by its process group)
	$(PY) -m infra.airflow.native down --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV)

airflow-status:  ## is airflow standalone running? (JSON)
	$(PY) -m infra.airflow.native status --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV)

dag-test: $(STAMP)  ## airflow dags test lakehouse against the local S3 stack (make stack-up first)
	$(PY) -m infra.airflow.native dag-test --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV)

# -- Object storage: the local S3 stack without Docker (SeaweedFS `weed mini`, envs/stack.env) --
STACK_ENV ?= envs/stack.env
.PHONY: stack-up stack-down stack-status run-s3 seed-more duckdb
stack-up: $(STAMP)  ## start weed mini on 127.0.0.1 (.stack/), buckets + identities, seed scale-1 raw data
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack up $(ARGS)

stack-down:  ## stop the local S3 stack by its PID (data kept in .stack/)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack down

stack-status:  ## is the local S3 stack running? (JSON)
	@LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack status

run-s3: $(STAMP)  ## whole pipeline against the local S3 stack (make stack-up first)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m jobs run $(ARGS)

seed-more: $(STAMP)  ## trickle: upload the next DAYS (default 1) days of raw data to the stack
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack seed --generate --days $(or $(DAYS),1)

duckdb: $(STAMP)  ## duckdb CLI over gold on the stack, as the analyst (read gold only)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m jobs duckdb-init --out .stack/duckdb-init.sql
	set -a && . ./$(STACK_ENV) && set +a && \
	  AWS_ACCESS_KEY_ID=$$ANALYST_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$$ANALYST_SECRET_ACCESS_KEY \
	  $(VENV)/bin/duckdb -init .stack/duckdb-init.sql

# -- Table maintenance (jobs/maintain.py) -------------------------------------------------------
.PHONY: maintain
maintain: $(STAMP)  ## compact, checkpoint and vacuum every lake table: make maintain ARGS="--format json"
	$(PY) -m jobs maintain $(ARGS)
