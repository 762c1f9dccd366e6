# The two commands a new user needs; each sets itself up first (idempotently).
.PHONY: run test lint setup setup-test demo

run: setup
	.venv/bin/swarmkeeper serve $(ARGS)

test: setup-test
	.venv/bin/ruff check .
	.venv/bin/mypy
	scripts/test $(ARGS)

# A first image: installs the real ComfyUI (.peers/), makes the tiny model, starts swarmkeeper on
# ./DemoData with a self-starting ComfyUI backend, prints where to open.
demo: setup
	.venv/bin/python scripts/demo $(ARGS)

lint: setup-test
	.venv/bin/ruff check .
	.venv/bin/mypy

setup:
	scripts/setup

setup-test:
	scripts/setup --test
