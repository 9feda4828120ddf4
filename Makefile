# Every target does its own set-up on a fresh machine: a .venv in the project folder.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint typecheck unit bench docs redis-server clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[demo]'
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.base
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(VENV)/.docs: pyproject.toml $(VENV)/.base
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

demo: $(VENV)/.base
	$(PY) -m nyx_sessions demo

# Installs redis-server from Debian's packages when it is missing (the Redis tests start
# their own server on a free 127.0.0.1 port, and fail when it cannot be found).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy

unit: $(VENV)/.dev redis-server
	NYX_REQUIRE_REDIS=1 $(PY) -m pytest -q

test: lint typecheck unit

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.dev redis-server
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
