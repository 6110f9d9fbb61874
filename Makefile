# The two commands a newcomer needs: `make run` and `make test`. Both are safe to run twice.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | md5sum | cut -c1-12)

.PHONY: run test setup services venv db lint bench chromium alerts tsclient

$(STAMP): requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

services:
	@bash scripts/services.sh
	@bash scripts/pgclient.sh
	@bash scripts/opstools.sh
	@bash scripts/receipts.sh

db: venv services
	@$(PY) scripts/createdb.py

setup: db
	$(PY) manage.py migrate --noinput
	$(PY) manage.py sync_schedules

run: setup
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py metrics_backfill
	@bash scripts/run.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

chromium:
	@bash scripts/chromium.sh

# The TypeScript client check's npm packages (tests/clients/ts/), installed once per lock file.
tsclient:
	@bash scripts/tsclient.sh

# The alert rules of deploy/prometheus/ and their unit tests (promtool, Debian's prometheus package).
alerts: services
	promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml alerts_test_hours.yml

test: venv services chromium tsclient lint alerts
	$(VENV)/bin/pytest
