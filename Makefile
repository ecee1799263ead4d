# Everything runs from the project virtualenv (.venv), created on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LAKEHOUSE_ENV_FILE ?= envs/local.env

.PHONY: help venv lock run-local test test-unit test-integration soak check format lint typecheck bench generate query clean-lake

help:  ## list targets and the variables a user may set
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
	@echo "variables (make TARGET NAME=value):"
	@grep -E '^#: ' $(MAKEFILE_LIST) | sed 's/^#: /  /'
	@echo "exit codes: make exits 2 on any failure and names the command's own code in a line"
	@echo "  'make: TARGET failed (python -m jobs exit N: ...)'; scripts run python -m jobs directly"

#: LAKEHOUSE_ENV_FILE  settings of run-local/test/bench (default envs/local.env; comma-separated list)
#: ARGS                extra arguments of the command a target runs, e.g. make run-s3 ARGS="--full"
#: SCALE               data scale of make bench (1, 10, 100; default 10); BENCH_ARGS more options
#: SQL                 the statement of make query
#: DAYS                days make seed-more uploads (default 1)
#: ACTION              make identities ACTION=apply applies the identity changes it shows
#: STACK_ENV           env file of the local S3 stack (default envs/stack.env)
#: STACK_KEYS          where stack-up writes each identity's keys (default .stack/keys)
#: STACK_PORT_OFFSET   a second dev stack: every port moves by this, files in .stack-N/ .airflow-N/
#: AIRFLOW_ENV         Airflow's own settings (default envs/airflow.env)
#: AIRFLOW_LAKE_ENV    the lake the DAG runs against (default envs/stack.env)
#: COVERAGE_FLOOR      make test fails below this coverage percentage (default 85)
#: SOAK_TRIALS         kill -9 trials and frozen-writer trials of make soak (default 30 each)
#: PYTHON              the interpreter the virtualenv is made with (default python3, 3.11)
# Exit codes: make exits 2 whenever a recipe fails (GNU make's own code). A target running
# `python -m jobs` then prints "make: TARGET failed (python -m jobs exit N: what N means)";
# scripts that need the exit-code table (python -m jobs --help) run `python -m jobs ...` directly.
JOBS_FAILED = || { code=$$?; echo "make: $@ failed (python -m jobs exit $$code: $$($(PY) -m jobs.cli.exits $$code))" >&2; exit $$code; }

$(STAMP): infra/requirements-pip.txt requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r infra/requirements-pip.txt
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies (every file's hash checked)

PIP_COMPILE ?= pip-compile
lock:  ## re-hash requirements*.txt and infra/requirements-pip.txt after editing a pin (needs pip-tools' pip-compile; slow)
	$(PYTHON) -m infra.lock --pip-compile $(PIP_COMPILE)

run-local: $(STAMP)  ## whole pipeline on the local lake (lake/), generating scale-1 data if raw is empty
	$(PY) -m infra.generator --if-empty
	$(PY) -m jobs run $(JOBS_FAILED)
	@echo
	@echo "Example DuckDB query over gold:"
	$(PY) -m jobs query "SELECT week_start, count(*) AS prints, round(avg(clicked::INT), 4) AS ctr, sum(prior_amount) AS prior_amount FROM gold.print_features GROUP BY ALL ORDER BY week_start" $(JOBS_FAILED)

COVERAGE_FLOOR ?= 85
test: $(STAMP)  ## the whole test suite (what CI runs), failing under the coverage floor
	$(PY) -m pytest --cov-fail-under=$(COVERAGE_FLOOR)

test-unit: $(STAMP)  ## tests that need no server (no S3, no Airflow): seconds to minutes
	$(PY) -m pytest -m "not integration" --no-cov

test-integration: $(STAMP)  ## tests against real servers (weed mini, airflow)
	$(PY) -m pytest -m integration --no-cov

SOAK_TRIALS ?= 30
soak: $(STAMP)  ## kill -9 and frozen-writer trials at many random points (outside CI): make soak SOAK_TRIALS=100
	SOAK_TRIALS=$(SOAK_TRIALS) $(PY) -m pytest tests/integrity/test_exactly_once.py tests/integrity/test_frozen_writer.py -k "killed or soak" --no-cov

SCALE ?= 10
bench: $(STAMP)  ## benchmark (infra/bench): stages gates on/off, plain alternatives, gold baselines (SCALE=1|10|100)
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
	$(PY) -m jobs query "$(SQL)" $(JOBS_FAILED)

clean-lake:  ## delete the local lake's data (keeps lake/README.md)
	find lake -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

# A second copy of the dev stack on this machine: `make stack-up STACK_PORT_OFFSET=100` (and the
# same on every target) moves every port of the S3 stack and Airflow by 100 and keeps its files
# in .stack-100/ (infra/stack/settings.py applies it) and .airflow-100/ (infra/airflow/native.py).
# The pipeline knows nothing of it: it reads that stack's endpoint from .stack-100/endpoint.env
# (written by its stack-up) after envs/stack.env.
STACK_PORT_OFFSET ?= 0
export STACK_PORT_OFFSET
STACK_HOME := $(if $(filter 0,$(STACK_PORT_OFFSET)),.stack,.stack-$(STACK_PORT_OFFSET))
comma := ,
STACK_ENDPOINT := $(if $(filter 0,$(STACK_PORT_OFFSET)),,$(comma)$(STACK_HOME)/endpoint.env)

# -- Airflow 3, native (no Docker): python -m infra.airflow.native -----------------------------
AIRFLOW_ENV ?= envs/airflow.env
AIRFLOW_LAKE_ENV ?= envs/stack.env
# The pipeline's keys, generated by make stack-up (the tasks get that identity only).
AIRFLOW_LAKE_KEYS ?= --lake-keys $(STACK_HOME)/keys/pipeline.env

.PHONY: airflow-up airflow-down airflow-status dag-test
airflow-up: $(STAMP)  ## airflow standalone on 127.0.0.1 (.airflow/), DAG unpaused on the local S3 stack
	$(PY) -m infra.airflow.native up --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV) $(AIRFLOW_LAKE_KEYS)

airflow-down:  ## stop airflow standalone (by its process group)
	$(PY) -m infra.airflow.native down --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV)

airflow-status:  ## is airflow standalone running? (JSON)
	$(PY) -m infra.airflow.native status --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV)

dag-test: $(STAMP)  ## airflow dags test lakehouse against the local S3 stack (make stack-up first)
	$(PY) -m infra.airflow.native dag-test --airflow-env $(AIRFLOW_ENV) --lake-env $(AIRFLOW_LAKE_ENV) $(AIRFLOW_LAKE_KEYS)

# -- Object storage: the local S3 stack without Docker (SeaweedFS `weed mini`, envs/stack.env) --
# envs/stack.env holds no secret; each identity's keys are in .stack/keys/<identity>.env
# (generated by stack-up, owner-only) and each target hands exactly one identity to its process.
STACK_ENV ?= envs/stack.env
STACK_KEYS ?= $(STACK_HOME)/keys
.PHONY: stack-up stack-down stack-status run-s3 seed-more duckdb identities audit
stack-up: $(STAMP)  ## start weed mini on 127.0.0.1 (.stack/), keys, buckets, seed scale-1 raw data (admin)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack up $(ARGS)

stack-down:  ## stop the local S3 stack by its PID (data kept in .stack/)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack down

stack-status:  ## is the local S3 stack running? (JSON)
	@LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack status

run-s3: $(STAMP)  ## whole pipeline against the local S3 stack, as the pipeline (make stack-up first)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV)$(STACK_ENDPOINT),$(STACK_KEYS)/pipeline.env $(PY) -m jobs run $(ARGS) $(JOBS_FAILED)

seed-more: $(STAMP)  ## trickle: upload the next DAYS (default 1) days of raw data to the stack (admin)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack seed --generate --days $(or $(DAYS),1)

identities: $(STAMP)  ## show what `identities apply` would change (make identities ACTION=apply)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack identities $(or $(ACTION),show) $(ARGS)

duckdb: $(STAMP)  ## duckdb CLI over gold on the stack, as the analyst (its keys only; read gold only)
	LAKEHOUSE_ENV_FILE=$(STACK_ENV) $(PY) -m infra.stack duckdb

audit: $(STAMP)  ## pip-audit (fails if every package was skipped), ruff S rules, secret scan
	$(PY) -m infra.audit $(AUDIT_ARGS)

# -- docker compose (infra/docker-compose.yml): its secrets and image digests ------------------
.PHONY: compose-secrets compose-pin compose-check
compose-secrets: $(STAMP)  ## generate compose's missing secrets into infra/.env (0600, git-ignored; never rotates)
	$(PY) -m infra.compose.secrets_env

compose-pin: $(STAMP)  ## resolve tag-only images to digests and write them (needs a reachable registry)
	$(PY) -m infra.compose.pin

compose-check: $(STAMP)  ## offline: every image pinned by digest or allow-listed (infra/unpinned-images.txt)
	$(PY) -m infra.compose.pin --check

# -- Table maintenance (jobs/maintain.py) -------------------------------------------------------
.PHONY: maintain
maintain: $(STAMP)  ## compact, checkpoint and vacuum every lake table: make maintain ARGS="--format json"
	$(PY) -m jobs maintain $(ARGS) $(JOBS_FAILED)
