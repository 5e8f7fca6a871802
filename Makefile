# The two commands: `make run` (the whole system, sim mode) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test bench sample lint clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed (found %s)" % sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m controlpanel.launcher

# A real Redis for the tests: TEST_REDIS_URL when it answers, else an embedded one.
test: $(VENV)/.installed
	TEST_REDIS_URL=$$($(PY) -m controlpanel.redis_boot --url $(TEST_REDIS_URL)) && \
	  TEST_REDIS_URL=$$TEST_REDIS_URL $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
