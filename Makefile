# The two commands of the README:
#   make serve   build what is missing (venv, default model) and serve on the embedded defaults
#   make test    format, lint, types, import contracts, proto drift, Prometheus rules, all tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test check pytest protos model clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

model: $(STAMP)
	$(BIN)/triage-models build-default

serve: model
	$(BIN)/triage serve

protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=protos --pyi_out=protos \
		--grpc_python_out=protos protos/triage/v1/triage.proto

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_protos.py
	promtool check rules deploy/prometheus/*.rules.yml
	promtool test rules deploy/prometheus/tests/*.yml

# pytest exits 5 when it collects nothing; make treats any non-zero exit as failure.
pytest: $(STAMP)
	$(BIN)/pytest

test: check pytest

clean:
	rm -rf $(VENV) var build *.egg-info
