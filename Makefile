# Two commands, each from a fresh clone:  `make serve`  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev

.PHONY: serve test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel

# Installs the package (generating the gRPC code from protos/) with the given extras.
install: $(BIN)/python
	$(BIN)/pip install -e '.[$(EXTRAS)]'

serve:
	$(MAKE) install EXTRAS=local,fast
	$(BIN)/modelrouter serve $(ARGS)

test:
	$(MAKE) install EXTRAS=dev,local,fast,learned
	$(BIN)/pip install ./plugins/examples/modelrouter-example-classifier
	$(MAKE) lint
	# The dashboard's browser test drives Debian's chromium (never `playwright install`).
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
		(apt-get install -y chromium || sudo -n apt-get install -y chromium) || \
		echo "chromium is not installed: tests/test_http_dashboard.py will skip its browser test"
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	cd clients/node && npm ci --no-audit --no-fund && npm test

lint:
	cd protos && ../$(BIN)/buf lint
	$(BIN)/ruff check server plugins clients tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy server/modelrouter plugins/modelrouter_* clients/python/modelrouter_client

# Issue 14's table (docs/performance.md): each script prints its figures; none asserts timings.
# http_overhead.py adds the LiteLLM proxy column when LITELLM_BIN names its executable (its own
# venv, see the script's docstring); without it that column is skipped with a message.
bench:
	$(BIN)/python benchmarks/route_throughput.py
	$(BIN)/python benchmarks/execute_overhead.py
	$(BIN)/python benchmarks/state_throughput.py
	$(BIN)/python benchmarks/scaling.py workers
	$(BIN)/python benchmarks/scaling.py memory
	$(BIN)/python benchmarks/http_overhead.py
	$(BIN)/python benchmarks/classifier_latency.py

clean:
	rm -rf $(VENV) build *.egg-info server/modelrouter/v1/*_pb2*.py*
