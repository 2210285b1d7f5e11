# One command sets up and runs the default benchmark (`make demo`), one the
# tests (`make test`). Both create the local virtual environment .venv from
# nothing with only python3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iqabench run
	@echo "report: $(CURDIR)/leaderboard/index.html (open it in a browser; no server needed)"

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/attacks.py

clean:
	rm -rf $(VENV) iqabench-results .pytest_cache
