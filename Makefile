# `make demo`: set up .venv and run the example pipeline. `make test`: set up .venv and run every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint clean labextension

# `pip install -e` also builds the JupyterLab panel (labextension/ -> nbflow/labextension, by
# hatch-jupyter-builder) and copies it into $(VENV)/share/jupyter/labextensions/nbflow.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

# After editing labextension/: rebuild the panel and refresh the venv's copy (`make labextension`).
LABEXT_OUT := nbflow/labextension/package.json
LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/style/*.css labextension/style/*.js labextension/style/icons/*) labextension/tsconfig.json labextension/install.json \
  labextension/package.json labextension/yarn.lock

$(LABEXT_OUT): $(LABEXT_SRC) | $(BIN)/.installed
	cd labextension && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm install && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm build
	rm -rf $(VENV)/share/jupyter/labextensions/nbflow
	cp -r nbflow/labextension $(VENV)/share/jupyter/labextensions/nbflow
	touch $@

labextension: $(LABEXT_OUT)

setup: $(BIN)/.installed $(LABEXT_OUT)

demo: setup
	$(BIN)/nbflow compile
	$(BIN)/nbflow run
	$(BIN)/nbflow show

# The core run tests run twice: kernels forked from the template (the default), then launched (`kernel_start = "spawn"`).
SPAWN_TESTS := tests/test_run.py tests/test_kernels.py tests/test_crash.py

test: setup
	$(BIN)/python -m pytest
	NBFLOW_KERNEL_START=spawn $(BIN)/python -m pytest -q $(SPAWN_TESTS)

lint: setup
	$(BIN)/ruff check nbflow tests
	$(BIN)/mypy nbflow

clean:
	rm -rf .nbflow nbflow-runs notebooks/data
