# The two commands a newcomer needs (see README.md). Both set up what they need first.
.PHONY: demo test lint bench restore setup

# One line and exit 2 when not root: every target changes the host (apt, namespaces, sysctls).
ifneq ($(shell id -u),0)
$(error conntrack-harness: must run as root (it installs packages, builds network namespaces and changes sysctls); re-run with sudo)
endif

setup:
	@scripts/bootstrap.sh

demo: setup
	@.venv/bin/conntrack-harness run scenarios/exhaustion.yaml --report-dir reports/demo

# `make test` runs every tier; `make test TIER=unit|kernel|cluster` runs one (the folders
# tests/unit, tests/kernel + scenarios/, tests/cluster; conftest.py marks each test by its folder).
TIERS := unit kernel cluster
ifneq ($(TIER),)
ifeq ($(filter $(TIER),$(TIERS)),)
$(error TIER=$(TIER) is not a tier; the tiers are: $(TIERS))
endif
endif

test: setup
	@.venv/bin/python -m pytest $(if $(TIER),-m $(TIER)) $(PYTEST_ARGS)

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench: setup
	@.venv/bin/python -m bench

restore: setup
	@.venv/bin/conntrack-harness restore
