# Two commands do all the set-up: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
SAMPLE ?= examples/kitchen_table/scene.usda
OUT ?= bp-out

.PHONY: run test venv schemas lint clean

$(VENV)/.synced: pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8; }
	$(UV) sync --frozen --all-packages
	touch $@

venv: $(VENV)/.synced

run: venv
	$(VENV)/bin/bp run $(SAMPLE) --out $(OUT)

test: venv
	MUJOCO_GL=egl $(VENV)/bin/python -m pytest

schemas: venv
	$(VENV)/bin/python -m bp_common.contracts.schemas

lint: venv
	$(VENV)/bin/ruff check libs services tests benchmarks examples

clean:
	rm -rf $(VENV) $(OUT)
