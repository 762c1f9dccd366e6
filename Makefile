# The two commands a new user needs; each sets itself up first (idempotently).
.PHONY: run test lint setup setup-test

run: setup
	.venv/bin/swarmkeeper serve $(ARGS)

test: setup-test
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest $(ARGS)

lint: setup-test
	.venv/bin/ruff check .
	.venv/bin/mypy

setup:
	scripts/setup

setup-test:
	scripts/setup --test
