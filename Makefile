# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := app

.PHONY: venv run test lint clean seed screenshots

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/flask db upgrade
	$(BIN)/flask demo seed
	@echo "Starting the console at http://127.0.0.1:5000 (Ctrl-C stops every process)."
	$(BIN)/honcho start -f Procfile

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Full-page PNGs of the overview, mailbox list, run page and a mailbox page at 1280 and 390 px, into
# docs/screenshots/ (a fresh console, sandbox and worker on free ports; Debian's chromium).
screenshots: venv
	$(BIN)/python tools/screenshots.py

lint: venv
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) instance/*.sqlite* .pytest_cache
