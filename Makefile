# The README's two commands: `make demo` and `make test`. Each sets up what it
# needs (a .venv with the project installed) when it is missing, and is quick
# when it is already there.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/myotone demo

test: $(STAMP)
	@$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) build *.egg-info host/*.egg-info
