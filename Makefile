# Developer and CI entry points. Every target creates .venv first when it is missing.
# make demo installs the product alone (its runtime dependencies); every other target
# installs the dev extras too (test tools, linters, plotting), once.
#
#   make install   create .venv and install the package with its dev extras (editable)
#   make test      run the tests on both engines (memory and a throw-away real mongod)
#   make test-faults  pause, kill and cut off real servers under load (tests/faults)
#   make fuzz      the hostile-input and schemathesis suites with a long profile
#   make lint      ruff + mypy --strict
#   make bench     run every benchmark on a throw-away mongod; write bench/RESULTS.md + plots
#   make bench-quick  the same at small sizes (under two minutes)
#   make demo      run the end-to-end demonstration (installs only what the product needs)
#   make clean     remove build and cache files (keeps .venv)
#
# make test starts one mongod for the whole run unless DATACATALOG_TEST_MONGODB_URI names a
# server already; DATACATALOG_TEST_ENGINES=memory runs the in-memory engine only.
# Extra pytest arguments: make test PYTEST_ARGS="-k jobs -x"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Product and dev installs; a dev install is a product install too, so it marks both.
PRODUCT_STAMP := $(VENV)/.installed-product
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Two workers when pytest-xdist is there (it is in the test extra); serial otherwise.
PYTEST_WORKERS ?= 2

.PHONY: install test test-faults fuzz lint bench bench-quick demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	@# What pip does for an installed wheel: the command line starts without compiling
	@# (and where PYTHONDONTWRITEBYTECODE is set, without compiling on every start).
	$(PY) -m compileall -q datacatalog
	touch $(PRODUCT_STAMP) $@

$(PRODUCT_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e .
	$(PY) -m compileall -q datacatalog
	touch $@

test: $(STAMP)
	@workers=""; \
	if [ "$(PYTEST_WORKERS)" != "0" ] && $(PY) -c 'import xdist' 2>/dev/null; then \
		workers="-n $(PYTEST_WORKERS)"; \
	fi; \
	if [ -n "$${DATACATALOG_TEST_MONGODB_URI:-}" ] || [ "$${DATACATALOG_TEST_ENGINES:-}" = "memory" ]; then \
		set -x; $(PY) -m pytest $$workers $(PYTEST_ARGS); \
	else \
		set -x; $(PY) -m datacatalog.testing.mongod run -- $(PY) -m pytest $$workers $(PYTEST_ARGS); \
	fi

# Each fault test starts (and breaks) its own mongod and service processes.
test-faults: $(STAMP)
	$(PY) -m pytest -p no:xdist -q tests/faults $(PYTEST_ARGS)

# The fuzz suites with many more examples than the CI profile (FUZZ_EXAMPLES per case).
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	DATACATALOG_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m datacatalog.testing.mongod run -- \
		$(PY) -m pytest -q tests/hostile/test_hostile_input.py tests/service/test_service_schema.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict datacatalog

bench: $(STAMP)
	$(PY) bench/report.py

bench-quick: $(STAMP)
	$(PY) bench/report.py --quick --output bench/RESULTS-quick.md

demo: $(PRODUCT_STAMP)
	$(VENV)/bin/datacatalog demo

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
