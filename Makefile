# Two commands do everything on a fresh machine with Python 3.11+:
#   make paper   - a paper session (simulated fills) against the built-in sandbox exchange
#   make test    - the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: paper test prove lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("pmm needs Python 3.11 or newer, this is " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

paper: $(STAMP)
	$(BIN)/pmm paper $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

prove: $(STAMP)
	$(BIN)/pmm prove

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/pmm bench $(ARGS)

clean:
	rm -rf $(VENV) artifacts dist build *.egg-info
