# Every target does its own set-up on a fresh machine: a .venv in the project folder.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# asyncio's tasks and timeouts differ between Python 3.11 and 3.12, and the manager steps
# coroutines by hand: the tests also run on a Python 3.12 when the machine has one (on
# PATH, or under pyenv), in .venv312, and say so when it has none.
PYTHON_312 ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
VENV_312 := .venv312

.PHONY: demo test lint typecheck unit unit-312 bench docs redis-server clean

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

$(VENV_312)/.dev: pyproject.toml
	$(PYTHON_312) -m venv $(VENV_312)
	$(VENV_312)/bin/python -m pip install -q --upgrade pip
	$(VENV_312)/bin/python -m pip install -q -e '.[dev]'
	touch $@

unit-312: redis-server
ifeq ($(strip $(PYTHON_312)),)
	@echo "no Python 3.12 on this machine: the tests ran on $$($(PYTHON) --version) only"
else
	$(MAKE) $(VENV_312)/.dev
	NYX_REQUIRE_REDIS=1 $(VENV_312)/bin/python -m pytest -q -p no:cacheprovider
endif

test: lint typecheck unit unit-312

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.dev redis-server
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(VENV_312) .mypy_cache .pytest_cache .ruff_cache
