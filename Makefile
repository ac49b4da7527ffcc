# `make demo`: set up .venv and run the example pipeline. `make test`: set up .venv and run every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/nbflow compile
	$(BIN)/nbflow run
	$(BIN)/nbflow show

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check nbflow tests
	$(BIN)/mypy nbflow

clean:
	rm -rf .nbflow notebooks/data
