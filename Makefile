# streamrec: every target installs what it needs on first use and is a no-op after that.
#   make test   the whole test suite (starts and stops its own Kafka broker)
#   make demo   the whole stack on this machine
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_STAMP := var/kafka/lib/.installed
# Beam's portable local runner, built from the Go module proxy (the streaming pipeline runs on it).
BEAM_VERSION := 2.75.0
PRISM := var/prism/bin/prism
# The Flink job's own virtualenv (apache-flink 2.3.0 pins Beam <= 2.61) and Kafka connector jar.
FLINK_STAMP := var/flink/.installed
DATA ?= ../shared/data/ml-latest-small
# make demo options: RATE (live replay, events/s), PORT (web), KAFKA_PORT, STORE (URL; default SQLite in
# var/demo), BOOTSTRAP (share of the ratings the backfill loads first, default 0.05)
RATE ?= 200
PORT ?= 8080
KAFKA_PORT ?= 9092
STORE ?=
# make demo / make bench-pipeline: the streaming engine, flink (default) or beam (Prism)
ENGINE ?= flink
DEMO_FLAGS = --dataset $(DATA) --rate $(RATE) --port $(PORT) --kafka-port $(KAFKA_PORT) $(if $(STORE),--store $(STORE)) \
	$(if $(BOOTSTRAP),--bootstrap-fraction $(BOOTSTRAP))
# The browser tests drive Debian's chromium (Playwright's own browser download does not work here).
CHROMIUM := /usr/bin/chromium

.PHONY: all venv jars prism flink flink-stop test test-fast demo demo-stop demo-reset bench-store bench-pipeline bench-serving eval lint clean

all: test

venv: $(STAMP)
$(STAMP): setup.py requirements-core.txt
	@echo "==> creating $(VENV) and installing streamrec with its dependencies (first run: a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install --disable-pip-version-check -q --upgrade pip setuptools wheel
	@$(VENV)/bin/pip install --disable-pip-version-check --progress-bar on -e '.[dev]'
	@touch $@

jars: $(KAFKA_STAMP)
$(KAFKA_STAMP): infra/local/kafka-pom.xml
	@echo "==> fetching Apache Kafka jars from Maven Central (first run only)"
	@bash infra/local/fetch-kafka.sh

test: $(STAMP) $(KAFKA_STAMP) $(PRISM) $(FLINK_STAMP) $(CHROMIUM) lint
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not kafka and not browser and not e2e and not flink"

demo: $(STAMP) $(KAFKA_STAMP) $(PRISM) $(FLINK_STAMP)
	STREAMREC_DEMO_ENGINE=$(ENGINE) $(VENV)/bin/streamrec demo $(DEMO_FLAGS)

demo-stop: $(STAMP)
	$(VENV)/bin/streamrec demo-stop

demo-reset: $(STAMP)
	$(VENV)/bin/streamrec demo-stop
	rm -rf var/demo

$(CHROMIUM):
	@echo "==> installing Debian's chromium for the browser tests (first run only)"
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	 else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi

flink: $(FLINK_STAMP)
$(FLINK_STAMP): setup.py requirements-core.txt infra/local/flink-pom.xml infra/local/fetch-flink.sh
	@echo "==> installing PyFlink into var/flink/venv and the Kafka connector into var/flink/lib (first run only)"
	@bash infra/local/fetch-flink.sh
	@touch $@

# Stop a local Flink cluster left running by `python -m streamrec_cli.localflink start`.
flink-stop: $(STAMP)
	$(PY) -m streamrec_cli.localflink stop

prism: $(PRISM)
$(PRISM):
	@echo "==> building Beam's Prism runner $(BEAM_VERSION) with go install (first run: a few minutes)"
	@mkdir -p $(dir $(PRISM))
	GOBIN=$(abspath $(dir $(PRISM))) go install github.com/apache/beam/sdks/v2/go/cmd/prism@v$(BEAM_VERSION)

bench-pipeline: $(STAMP) $(KAFKA_STAMP) $(PRISM) $(FLINK_STAMP)
	$(PY) bench/bench_pipeline.py --engine $(ENGINE) --out bench/results/pipeline.json
	$(if $(PEERS),$(PY) bench/peers/pipeline_peers.py --engines $(PEERS) --out bench/results/pipeline.json)
	$(PY) bench/report.py

bench-store: $(STAMP)
	$(PY) bench/bench_store.py --out bench/results/store.json
	$(PY) bench/report.py

bench-serving: $(STAMP)
	@command -v wrk >/dev/null || { echo "==> installing wrk (Debian package)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q wrk || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q wrk; }; }
	$(PY) bench/bench_serving.py --dataset $(DATA) --out bench/results/serving.json
	$(PY) bench/report.py

# Issue 18's peers, installed on first use: Debian's redis-server and the redis client (in .venv)
# beside the stores of bench-store; Quix Streams and Faust, each in its own virtualenv under
# var/peers (quixstreams pins confluent-kafka below .venv's), beside the Beam job of bench-pipeline.
.PHONY: peers
REDIS_SERVER := /usr/bin/redis-server
REDIS_CLIENT_STAMP := $(VENV)/.redis-client
PEERS_STAMP := var/peers/.installed
# make bench-pipeline: the peers run after the ENGINE's run, each merged under engines (PEERS= for none)
PEERS ?= quixstreams,faust
bench-store: $(REDIS_SERVER) $(REDIS_CLIENT_STAMP)
bench-pipeline: $(PEERS_STAMP)
$(REDIS_SERVER):
	@echo "==> installing Debian's redis-server (bench-store starts and stops its own; first run only)"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q redis-server || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q redis-server; }
$(REDIS_CLIENT_STAMP): $(STAMP)
	$(VENV)/bin/pip install --disable-pip-version-check -q 'redis[hiredis]>=5,<7'
	@touch $@
peers: $(PEERS_STAMP)
$(PEERS_STAMP): setup.py requirements-core.txt bench/peers/install.sh
	@bash bench/peers/install.sh
	@touch $@

# Prequential replay of both shared rating logs: streamrec vs the baselines -> docs/quality.md
EVAL_DATA ?= ../shared/data/ml-latest-small ../shared/data/movietweetings-100k
eval: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/streamrec eval $(foreach d,$(EVAL_DATA),--dataset $(d)) \
		--format markdown --out docs/quality --doc docs/quality.md

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy streamrec pipelines serving evaluation streamrec_cli

clean:
	rm -rf var build *.egg-info
