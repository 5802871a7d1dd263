# Two commands do all the set-up: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
SAMPLE ?= examples/kitchen_table/scene.usda
OUT ?= bp-out

.PHONY: run test venv browser schemas lint typecheck clean

# The .proto files too: syncing regenerates the gRPC code (libs/collector-api, libs/genie-sim-api).
$(VENV)/.synced: pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) \
		$(wildcard proto/*/*/*/*.proto proto/*/*/*/*/*.proto libs/*/hatch_build.py)
	test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8; }
	$(UV) sync --frozen --all-packages
	touch $@

venv: $(VENV)/.synced

run: venv
	$(VENV)/bin/bp run $(SAMPLE) --out $(OUT)

# The status page's browser test drives Debian's Chromium through chromedriver.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: venv browser
	MUJOCO_GL=egl $(VENV)/bin/python -m pytest

schemas: venv
	$(VENV)/bin/python -m bp_common.contracts.schemas
	$(VENV)/bin/python -m bp_scene_contract.schemas

lint: venv
	$(VENV)/bin/ruff check libs services tests benchmarks examples

# mypy --strict over the whole workspace: every library and service, the tests and the benchmarks.
typecheck: venv
	$(VENV)/bin/mypy --strict libs/*/src services/*/src tests benchmarks examples

clean:
	rm -rf $(VENV) $(OUT)
