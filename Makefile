# make run   install into .venv, migrate, serve the embedded default at http://127.0.0.1:9000
# make bench install into .venv, run the benchmark (bench/run.py, behind nginx; BENCH_ARGS=--soak 300 etc.)
# make test  install into .venv, run the suite on the embedded backend (with the
#            multi-host cluster tests, as root), and again, without them, on
#            PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set
# make cluster-up / cluster-down / cluster-test
#            the multi-host test cluster of deploy/cluster (as root): start it, remove it,
#            or run its tests on a cluster of their own
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench cluster-up cluster-down cluster-test

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py runserver 127.0.0.1:9000

test: install
	@echo "== suite on the embedded backend (SQLite, no hot store), with the multi-host cluster tests"
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest
	@if [ -n "$$DATABASE_URL$$REDIS_URL" ]; then \
		echo "== suite on DATABASE_URL=$${DATABASE_URL:-(embedded)} REDIS_URL=$${REDIS_URL:-(none)}"; \
		$(BIN)/python -m pytest -m "not cluster"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

cluster-up: install
	$(BIN)/python deploy/cluster/cluster.py up

cluster-down:
	$(PYTHON) deploy/cluster/cluster.py down

cluster-test: install
	$(BIN)/python -m pytest tests/cluster
