# arbbot: `make demo` runs the full pipeline on the embedded devnet; `make test` runs the tests.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: setup venv npm services validators demo test lint typecheck bench-scan bench-paths clean

setup: venv npm services

venv: .venv/.installed
.venv/.installed: requirements.txt
	@test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	@touch $@

npm: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

services:
	@bash scripts/ensure-services.sh

validators:
	@bash deployment/install-validators.sh

migrate: setup
	$(PY) manage.py migrate --noinput

demo: setup
	$(PY) manage.py migrate --noinput -v 0
	$(PY) scripts/demo.py

test: setup validators
	$(PY) -m pytest -q

lint:
	.venv/bin/ruff check arbbot workers webapp tests
	.venv/bin/lint-imports

typecheck:
	.venv/bin/mypy arbbot

bench-scan: setup
	$(PY) bench/scan/run.py

bench-paths: setup
	bash bench/paths/setup_degenbot.sh
	$(PY) -m bench.paths.run

clean:
	rm -rf .venv node_modules .devnet .run
