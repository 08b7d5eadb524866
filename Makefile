# Entry points for people and CI (.ci/run calls `make test`). Nothing here needs Docker:
# shared/devinfra.py runs PostgreSQL (127.0.0.1:55432) and Kafka (127.0.0.1:59092) natively.
# Set DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS to use servers of your own instead.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# bootstrap.sh may install uv into ~/.local/bin.
export PATH := $(HOME)/.local/bin:$(HOME)/.cargo/bin:$(PATH)

PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help bootstrap infra test run down status lint migrate

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

bootstrap: ## Install what this machine lacks (uv, PostgreSQL, Java 17, Maven, Kafka jars).
	scripts/bootstrap.sh

infra: bootstrap ## Start PostgreSQL and Kafka (if not running) and create the topics.
	uv run python -m shared.devinfra up

test: infra ## Run every test against the local servers.
	uv run pytest $(PYTEST_ARGS)

run: bootstrap ## Start everything (servers, migrations, five services), replay the sample; Ctrl-C stops it all.
	uv run cfp run --replay-sample

migrate: infra ## Apply every service's migrations.
	uv run cfp migrate

down: ## Stop the local Kafka broker and PostgreSQL server.
	uv run python -m shared.devinfra down

status: ## Show what runs.
	uv run python -m shared.devinfra status

lint: ## Lint and check formatting.
	uv run ruff check . && uv run ruff format --check .
