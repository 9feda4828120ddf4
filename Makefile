# Every target does its own set-up on a fresh machine. The tools are pinned: the lock
# files in requirements/ (made by `make lock`, hashes included) fix every package that the
# tests, the type check, the lint and the docs install, so `make test` gives the same
# result next month. The library's own dependencies stay ranges in pyproject.toml.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

VENV := .venv
PY := $(VENV)/bin/python

# The supported Pythons that the tests run on, where this machine has them (on PATH or
# under pyenv). The first one found runs the lint and the type check too.
SUPPORTED := 3.11 3.12 3.13
find_python = $(shell for p in python$(1) $$(pyenv root 2>/dev/null)/versions/$(1).*/bin/python; do \
	$$p -c 'import sys; assert sys.version_info[:2] == tuple(map(int, "$(1)".split(".")))' \
	2>/dev/null && { echo $$p; break; }; done)
FOUND := $(foreach v,$(SUPPORTED),$(if $(call find_python,$(v)),$(v)))

.PHONY: demo test lint typecheck unit bench docs redis-server lock clean

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q "uv==$(UV_VERSION)"

# One environment per purpose: .venv (the demo; it can also run the testing guide's
# example), .venv-docs, and .venv-3.x (the tests on each supported Python; the first one
# also runs the lint and the type check).
DEV := .venv-$(firstword $(FOUND))

$(VENV)/.demo: requirements/demo.lock pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync -q --python $(PY) requirements/demo.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

.venv-docs/.docs: requirements/docs.lock pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv-docs
	$(UV) pip sync -q --python .venv-docs/bin/python requirements/docs.lock
	$(UV) pip install -q --python .venv-docs/bin/python --no-deps -e .
	touch $@

.venv-%/.dev: requirements/dev.lock pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing --python $(call find_python,$*) .venv-$*
	$(UV) pip sync -q --python .venv-$*/bin/python requirements/dev.lock
	$(UV) pip install -q --python .venv-$*/bin/python --no-deps -e .
	touch $@

demo: $(VENV)/.demo
	$(PY) -m nyx_sessions demo

# Installs the servers the tests start on free 127.0.0.1 ports from Debian's packages
# when they are missing: redis-server (single, Cluster), redis-sentinel, and haproxy (the
# load balancer in front of HTTP workers). The tests fail when they cannot find them.
SYSTEM_BINARIES := redis-server redis-sentinel haproxy
redis-server:
	@missing=""; for b in $(SYSTEM_BINARIES); do \
		command -v $$b >/dev/null 2>&1 || test -x /usr/sbin/$$b || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			redis-server redis-sentinel haproxy >/dev/null; \
	fi

lint: $(DEV)/.dev
	$(DEV)/bin/ruff check .
	$(DEV)/bin/ruff format --check .

typecheck: $(DEV)/.dev
	$(DEV)/bin/mypy

unit: redis-server $(foreach v,$(FOUND),.venv-$(v)/.dev)
	@test -n "$(FOUND)" || { echo "no supported Python (3.11+) found"; exit 1; }
	@for v in $(FOUND); do \
		echo "== tests on $$(.venv-$$v/bin/python --version)"; \
		NYX_REQUIRE_REDIS=1 .venv-$$v/bin/python -m pytest -q -p no:cacheprovider || exit 1; \
	done
	@echo "the tests ran on Python $(FOUND)$(if $(filter-out $(FOUND),$(SUPPORTED)), (not on this machine: $(filter-out $(FOUND),$(SUPPORTED))))"

test: lint typecheck unit

docs: .venv-docs/.docs
	NO_MKDOCS_2_WARNING=1 .venv-docs/bin/mkdocs build --strict

bench: $(DEV)/.dev redis-server
	$(DEV)/bin/python -m bench

# Re-resolves the pinned tool chain (run by hand, then commit requirements/).
lock: | $(UV)
	for extra in dev docs demo; do \
		$(UV) pip compile pyproject.toml $$(case $$extra in demo) echo --extra testing;; esac) --extra $$extra --universal --python-version 3.11 \
			--generate-hashes --no-header -q -o requirements/$$extra.lock; \
	done

clean:
	rm -rf $(VENV) .venv-3.* .venv-docs $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
