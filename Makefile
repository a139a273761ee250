# gwvault: `make run` and `make test` work on a fresh machine with python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= gwvault-data

.PHONY: run test lint typecheck unit security bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Two stamps, so `make run` never waits for the test toolchain and `make test`
# still gets all of it after a `make run`: .installed-run is what serving needs
# (the package and its runtime dependencies, no extras); .installed is that
# plus the test, lint and fuzzing tools.  Each is redone only when the project's
# dependencies change.
$(VENV)/.installed-run: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# sslyze (the TLS scan in tests/security) pins cryptography<47, which this
	# project and jwcrypto have outgrown; it runs on the newer one, so it goes in
	# without its pins, at versions the scan was proven with.
	$(BIN)/python -m pip install --quiet --no-deps sslyze==6.3.1 nassl==5.4.0 tls-parser==2.0.2
	touch $@

## run: install what serving needs, initialise a gateway in ./gwvault-data if there is none,
## add an admin, serve https://127.0.0.1:8050 (a weak key or password at the prompt is asked again)
run: $(VENV)/.installed-run
	@if [ ! -e "$(DATA_DIR)/vault.db" ]; then \
		echo "No gateway in $(DATA_DIR): initialising one. Choose a recovery key (12+ characters, not a common password)."; \
		$(BIN)/gwvault --data-dir "$(DATA_DIR)" init --name "$$(hostname)"; \
	fi
	@if [ "$$($(BIN)/gwvault --data-dir "$(DATA_DIR)" users list --json)" = "[]" ]; then \
		echo "No web user yet: adding 'admin'. Choose its password."; \
		$(BIN)/gwvault --data-dir "$(DATA_DIR)" users add admin --role admin; \
	fi
	$(BIN)/gwvault --data-dir "$(DATA_DIR)" status
	@# A developer's make run as root (a container, a scratch VM) still serves, and
	@# says so; `gwvault serve` alone refuses root (README "Install as a service").
	@if [ "$$(id -u)" = 0 ]; then \
		echo "make run as root: serving with --allow-root; a real install runs as its own user"; fi
	exec $(BIN)/gwvault --data-dir "$(DATA_DIR)" serve $$([ "$$(id -u)" = 0 ] && echo --allow-root)

## test: lint, type-check and the whole test suite
test: lint typecheck unit

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The suite runs in PYTEST_WORKERS parallel processes (pytest-xdist), one more
# than CI's 2 cores: much of it waits on Chromium, TLS servers, PostgreSQL and
# gwvault subprocesses, and each worker repeats the session's set-up (vault
# templates, a private PostgreSQL cluster, a browser), which a fourth did not
# earn back.  Tests marked xdist_group("NAME") run on one worker (--dist loadgroup).
# `make unit PYTEST_WORKERS=0` runs the suite in this one process.
PYTEST_WORKERS ?= 3

unit: $(VENV)/.installed node_modules/.installed
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# axe-core, the accessibility check the browser tests inject into each page,
# at the version package-lock.json pins (test-only; nothing of it is served).
node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --silent
	touch $@

## security: the long security suite (fuzzing, crash loops, concurrency, schema and TLS scans), then its table
security: $(VENV)/.installed
	@mkdir -p test-artifacts
	-GWVAULT_SECURITY_LONG=1 GWVAULT_REQUIRE_SERVICES=$${GWVAULT_REQUIRE_SERVICES:-1} \
		$(BIN)/pytest tests/security -o junit_family=xunit1 --junitxml=test-artifacts/security.xml
	$(BIN)/python -m tests.security.summary test-artifacts/security.xml

## bench: gwvault against jwcrypto, Tink, the AWS Encryption SDK and the raw primitives, and the
## HTTPS endpoint under wrk against a hello-world; writes bench/results.md
bench: $(VENV)/.installed-bench
	@# Debian's wrk is the independent HTTPS load generator (like chromium in .ci/run).
	@command -v wrk >/dev/null 2>&1 || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
