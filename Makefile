# The two commands a newcomer needs (see README.md). Both set up what they need first.
.PHONY: demo test lint bench restore setup

setup:
	@scripts/bootstrap.sh

demo: setup
	@.venv/bin/conntrack-harness run scenarios/exhaustion.yaml --report-dir reports/demo

test: setup
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench: setup
	@.venv/bin/python -m bench

restore: setup
	@.venv/bin/conntrack-harness restore
