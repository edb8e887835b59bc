# Billing Portal — developer commands. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest arguments, e.g. `make test ARGS="-k billing -x"`
ARGS ?=
# `make run LOCALSTRIPE=1`: card payments against a local fake Stripe started on LOCALSTRIPE_PORT.
LOCALSTRIPE ?=
LOCALSTRIPE_PORT ?= 8420
ifneq ($(LOCALSTRIPE),)
export STRIPE_API_BASE := http://127.0.0.1:$(LOCALSTRIPE_PORT)
endif

.PHONY: help system-deps system-deps-test venv install-base install-dev run demo migrate test bench-smoke lint format worker beat clean localstripe localstripe-background

help:
	@echo "make run          set up everything and serve the demo on http://$(HOST):$(PORT)/"
	@echo "make test         install test dependencies and run the whole suite"
	@echo "make lint         ruff lint + format check, the apps' dependency order (import-linter), mypy"
	@echo "make worker/beat  run a Celery worker / beat against CELERY_BROKER_URL"
	@echo "make run LOCALSTRIPE=1   the demo with card payments, against a local fake Stripe"
	@echo "make localstripe  the local fake Stripe alone, on 127.0.0.1:$(LOCALSTRIPE_PORT)"

system-deps:
	@bash .ci/system-deps.sh requirements/system.txt

system-deps-test: system-deps
	@bash .ci/system-deps.sh requirements/system-test.txt

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Re-install only when the requirement files change.
$(VENV)/.base-installed: requirements/base.txt | $(PY)
	$(PIP) install --quiet -r requirements/base.txt
	@touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/dev.txt | $(PY)
	$(PIP) install --quiet -r requirements/dev.txt
	@touch $@ $(VENV)/.base-installed

install-base: system-deps $(VENV)/.base-installed
install-dev: system-deps-test $(VENV)/.dev-installed

migrate: install-base
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo_data
	$(PY) manage.py stripe_webhooks_setup --base-url http://$(HOST):$(PORT)
	$(PY) manage.py load_stripe_demo_data
	$(PY) manage.py reports_rebuild
	HOST=$(HOST) PORT=$(PORT) $(PY) manage.py ensure_demo_admin

ifneq ($(LOCALSTRIPE),)
# The fake Stripe runs for as long as the demo: started first, stopped when the server (or the set-up) stops.
run: localstripe-background
	@trap 'kill $$(cat .localstripe.pid) 2>/dev/null; rm -f .localstripe.pid' EXIT; \
	$(MAKE) --no-print-directory demo && \
	$(PY) manage.py serve $(HOST):$(PORT) --banner "(admin: /admin/, customer portal: /portal/, API docs: /api/docs/; card payments: localstripe)"
else
# The web server and the scheduled jobs (billing run, draft finalization, dunning, webhooks, PDFs).
run: demo
	@$(PY) manage.py serve $(HOST):$(PORT) --banner "(admin: /admin/, customer portal: /portal/, API docs: /api/docs/)"
endif

# The local fake Stripe (localstripe, in memory, 127.0.0.1 only) in the foreground.
localstripe: install-dev
	$(PY) -m apps.payments.stripe.fake_server --port $(LOCALSTRIPE_PORT)

# The same in the background for `make run LOCALSTRIPE=1` (stopped when the server stops).
localstripe-background: install-dev
	@if [ -f .localstripe.pid ] && kill -0 $$(cat .localstripe.pid) 2>/dev/null; then kill $$(cat .localstripe.pid); fi
	@$(PY) -m apps.payments.stripe.fake_server --port $(LOCALSTRIPE_PORT) > .localstripe.log 2>&1 & echo $$! > .localstripe.pid
	@for i in $$(seq 50); do grep -q "listening" .localstripe.log 2>/dev/null && break; sleep 0.2; done; head -1 .localstripe.log

# One test worker per core (pytest-xdist); `make test TEST_WORKERS=0` runs in this process only. The API
# fuzzing cannot be split between workers (schemathesis gives its generated tests one node id): without
# ARGS it runs beside them in a single process of its own, its output printed when both are done.
TEST_WORKERS ?= auto
PYTEST_PARALLEL = $(PY) -m pytest $(if $(CI),--create-db,) -n $(TEST_WORKERS) --dist worksteal --durations=25 $(ARGS)
test: install-dev
	$(PY) manage.py makemigrations --check --dry-run
ifeq ($(strip $(ARGS))$(filter 0,$(TEST_WORKERS)),)
	@fuzz_log=$$(mktemp); \
	echo "API fuzzing: running beside the parallel stage (output below when done)"; \
	( $(PY) -m pytest $(if $(CI),--create-db,) -n 0 -m fuzz > $$fuzz_log 2>&1; echo $$? >> $$fuzz_log.rc ) & \
	fuzz_pid=$$!; \
	$(PYTEST_PARALLEL); parallel_rc=$$?; \
	wait $$fuzz_pid; echo "--- API fuzzing stage ---"; cat $$fuzz_log; fuzz_rc=$$(cat $$fuzz_log.rc); \
	rm -f $$fuzz_log $$fuzz_log.rc; \
	test $$parallel_rc -eq 0 && test $$fuzz_rc -eq 0
else
	$(PYTEST_PARALLEL)
endif

# Every benchmark at a tiny size (CI's smoke stage; needs PostgreSQL and Redis): a broken bench fails.
bench-smoke: install-dev
	$(PIP) install --quiet -r requirements/prod.txt
	PY=$(PY) bash bench/smoke.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

worker: install-base
	$(VENV)/bin/celery -A billing_portal worker -Q celery,billing,pdf,email,webhooks,alerts --loglevel INFO

beat: install-base
	$(VENV)/bin/celery -A billing_portal beat --scheduler django_celery_beat.schedulers:DatabaseScheduler --loglevel INFO

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
