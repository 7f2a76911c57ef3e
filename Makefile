# trustspace developer entry points. The README names two: `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint typecheck unit integration e2e e2e-kind crds crds-check bins venv clean

run: venv ## the quickstart: a local hub and two edges, until Ctrl-C
	@hack/quickstart.sh

test: venv bins lint typecheck ## everything CI runs: lint, types, then every test
	@echo "== pytest (unit, integration, e2e)"
	@TRUSTSPACE_K8S_BIN=$$(hack/k8s-bin.sh | tail -n 1) $(BIN)/pytest -m 'not kind' $(PYTEST_ARGS)

unit: venv
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

integration: venv bins
	TRUSTSPACE_K8S_BIN=$$(hack/k8s-bin.sh | tail -n 1) $(BIN)/pytest -m integration $(PYTEST_ARGS)

e2e: venv bins
	TRUSTSPACE_K8S_BIN=$$(hack/k8s-bin.sh | tail -n 1) $(BIN)/pytest -m e2e $(PYTEST_ARGS)

lint: venv
	@echo "== ruff"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: venv
	@echo "== mypy"
	@$(BIN)/mypy

e2e-kind: venv bins ## the e2e suite in real Pods: kind clusters up, tests/kind + tests/e2e/dataspace, down
	@hack/e2e-kind.sh

crds: venv ## regenerate crds/ and docs/api.md from the pydantic models
	$(BIN)/python -m trustspace.api.crdgen

crds-check: venv
	$(BIN)/python -m trustspace.api.crdgen --check

bins: ## build or find kube-apiserver, etcd, kubectl, helm (cached under ~/.cache/trustspace)
	@hack/k8s-bin.sh >/dev/null

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "== setting up $(VENV) (Python: $$($(PYTHON) --version))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test,postgres,gmssl-pyx]'
	@touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
