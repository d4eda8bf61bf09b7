# Feedline: the real stack (PostgreSQL, Redis, Kafka, Connect + Debezium, Cassandra) without
# Docker, and the app on top. Everything lands in var/ (ignored); jars are cached in ~/.m2.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
FEEDLINE := $(BIN)/feedline
# Reinstall the venv when a requirements file or pyproject changes.
STAMP := $(VENV)/.installed

.PHONY: venv up run stack-up down status clean test test-failure lint \
	up-cluster stack-up-cluster down-cluster status-cluster clean-cluster test-cluster
# The replicated topology: 3 Cassandra nodes, 3 Kafka brokers and 2 Connect workers on
# 127.0.0.2-4, its own PostgreSQL and Redis ports and var/cluster/ (beside the single node's).
CLUSTER := FEEDLINE_TOPOLOGY=cluster

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q -e .
	touch $@

## stack-up: start the services (installs what is missing), migrate, register the connector
stack-up: venv
	@$(FEEDLINE) stack up

## up: stack-up, then the Procfile's processes in the background (honcho, pid-tracked)
up: venv
	@$(FEEDLINE) stack up --app

## run: stack-up, then the Procfile's processes in the foreground (Ctrl-C stops them)
run: stack-up
	PATH="$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

## down: stop everything `up`/`run` started, by pid
down: venv
	@$(FEEDLINE) stack down

## status: each service's state and the connector's
status: venv
	@$(FEEDLINE) stack status

## clean: down, drop the replication slot and publication, wipe var/ data and logs
clean: venv
	@$(FEEDLINE) stack clean

## test: the whole suite against the real stack
test: stack-up
	$(BIN)/pytest

## test-failure: only the failure-injection suite (kills and restarts the stack's services)
test-failure: stack-up
	$(BIN)/pytest -m failure tests/failure

## up-cluster, stack-up-cluster, down-cluster, status-cluster, clean-cluster: the same on the
## replicated cluster (FEEDLINE_TOPOLOGY=cluster; set it to run anything else against it)
up-cluster: venv
	@$(CLUSTER) $(FEEDLINE) stack up --app

stack-up-cluster: venv
	@$(CLUSTER) $(FEEDLINE) stack up

down-cluster: venv
	@$(CLUSTER) $(FEEDLINE) stack down

status-cluster: venv
	@$(CLUSTER) $(FEEDLINE) stack status

clean-cluster: venv
	@$(CLUSTER) $(FEEDLINE) stack clean

## test-cluster: the cluster failure suite (a node of each replicated service lost under load)
test-cluster: stack-up-cluster
	$(CLUSTER) $(BIN)/pytest -m cluster tests/failure

## lint: ruff check and format check
lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## bench: every benchmark beside its baseline (stack-up first); writes bench/results/<date>.json
## and BENCHMARKS.md
bench: stack-up
	$(BIN)/python -m bench.run

## bench-quick: each benchmark at a tiny size (results under var/bench/ only)
bench-quick: stack-up
	$(BIN)/python -m bench.run --quick
