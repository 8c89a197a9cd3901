# arbbot: `make demo` runs the full pipeline on the embedded devnet; `make test` runs the tests.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: setup venv lock npm services validators demo test test-explore chaos lint typecheck bench-scan bench-paths bench-scale bench-pipeline bench-floor bench-backtest bench-latency bench-ml bench-ml-devnet load-web demo-xchain test-xchain clean

setup: venv npm services

# The .venv gets the locked dev set (runtime + tests, linters, validators); the images get
# requirements.txt only. Either lock file changing re-runs the install.
venv: .venv/.installed
.venv/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PIP) install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt
	@touch $@

# Re-lock after editing requirements.in / requirements-dev.in: same versions unless a pin
# changed (pip-compile keeps the existing ones), hashes for every file PyPI has. pip-tools
# runs from its own venv, never the project's.
PIPTOOLS := $(or $(PIPTOOLS_VENV),/tmp/arbbot-piptools)
PIP_COMPILE := PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" $(PIPTOOLS)/bin/pip-compile -q \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	--index-url https://pypi.org/simple
lock:
	@test -x $(PIPTOOLS)/bin/pip-compile || { python3.11 -m venv $(PIPTOOLS) && $(PIPTOOLS)/bin/pip install -q pip-tools==7.7.0; }
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in

npm: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

services:
	@bash scripts/ensure-services.sh

validators:
	@bash deployment/install-validators.sh

# the local targets run on the embedded devnet: ARBBOT_DEVNET=1 allows its development SECRET_KEY
migrate: setup
	ARBBOT_DEVNET=1 $(PY) manage.py migrate --noinput

demo: setup
	ARBBOT_DEVNET=1 $(PY) manage.py migrate --noinput -v 0
	$(PY) scripts/demo.py

# Cross-chain arbitrage on two devnet chains joined by the project's bridge (issue 20)
demo-xchain: setup
	ARBBOT_DEVNET=1 $(PY) manage.py migrate --noinput -v 0
	$(PY) scripts/demo_xchain.py

# Two pytest processes (pytest-xdist), each taking whole files, so a file's devnet and fleet
# stay in one process; each is a run of its own on the shared services (tests/conftest.py).
# Much of the suite waits on anvil, the broker and the worker processes it starts: one
# process left a core idle. TEST_WORKERS=0 runs it in this process alone.
TEST_WORKERS ?= 2

# Compiled first: the processes the tests start (manage.py, the workers, the scripts) then
# read the project's modules compiled even where the environment sets
# PYTHONDONTWRITEBYTECODE (some machines here do), instead of compiling them again at each
# start (~0.8 s each on a slow machine).
test: setup validators
	$(PY) -m compileall -q -j 0 arbbot webapp workers bench scripts tests >/dev/null
	$(PY) -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile

# The chaos suite: the quick cases (RPC faults, poison messages, unreadable pools) also run in
# `make test`; the fleet under faults on private PostgreSQL, Redis and RabbitMQ instances
# (about 10 minutes) runs here only, and prints its summary table.
chaos: setup
	ARBBOT_CHAOS=1 $(PY) -m pytest -q tests/chaos tests/chain/test_unreadable_pools.py

# The cross-chain suite with the bridge worker SIGKILLed at every saga step (a few minutes);
# `make test` runs its quick cases and one crash point
test-xchain: setup
	ARBBOT_XCHAIN_LONG=1 $(PY) -m pytest -q tests/crosschain

# ruff and the import contracts (both configured in pyproject.toml)
# Property tests with random draws (the Hypothesis "explore" profile), several rounds; a
# failing case it prints goes into its test as an @example.
test-explore: setup
	for i in 1 2 3 4 5; do HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q tests/math tests/paths/test_sizing.py tests/paths/test_bad_input.py tests/pools/test_v3_quote_fast.py tests/test_types.py || exit 1; done

lint: venv
	.venv/bin/ruff check arbbot workers webapp tests
	.venv/bin/lint-imports

typecheck: venv
	.venv/bin/mypy arbbot

bench-scan: setup
	$(PY) bench/scan/run.py

bench-paths: setup
	bash bench/paths/setup_degenbot.sh
	$(PY) -m bench.paths.run

# 20,000 genuine V2 pairs on a devnet + a 100k-pool synthetic market (a scratch database)
bench-scale: setup
	$(PY) -m bench.scale.run

# The fleet's workers on real RabbitMQ, Redis and PostgreSQL, fed blocks over a 10,176-pool
# market (bench/pipeline/README.md); 5-8 minutes. BENCH_ARGS="--soak 600" for the soak.
bench-pipeline: setup
	$(PY) -m bench.pipeline.run $(BENCH_ARGS)

# PostgreSQL's CPU a recorded opportunity, the fleet's write against bare COPY; ~1 minute.
bench-floor: setup
	$(PY) -m bench.pipeline.floor $(BENCH_ARGS)

bench-backtest: setup
	$(PY) -m bench.backtest.run

# block arrival -> execute decision through the real fleet on a devnet of its own port,
# the follower beside beat's 1 s tick, and the code before (bench/latency/README.md); about 6 minutes
bench-latency: setup
	$(PY) bench/latency/run.py

bench-ml: setup
	$(PY) -m bench.ml.run

# the learned scorer against the rule on a devnet recording made with competitors
# (bench/ml/devnet.py): make bench-ml-devnet REC=/tmp/rec/chain-31337-....arbrec [BENCH_ARGS="--gas-x 30"]
bench-ml-devnet: setup
	$(PY) -m bench.ml.devnet $(REC) $(BENCH_ARGS)

# The console through the repository's nginx under Locust (bench/web/run.py): inside the
# 100 r/s limit nothing is refused; a burst far beyond it gets 429s and never a 5xx;
# baseline: the same burst straight to gunicorn. Headless, about a minute and a half.
load-web: setup
	$(PY) bench/web/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv node_modules .devnet .run
