# Telerad: `make run` sets everything up and serves on http://127.0.0.1:5000/ ; `make test` checks it all.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export TELERAD_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: install run test lint typecheck unit migrate deploy demo clean translations

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Telerad needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

NPM ?= npm
NPM_STAMP := web/static/vendor/.npm-stamp

# Front-end libraries (bpmn-js, the Cornerstone3D viewer bundled by esbuild) come from npm with the committed lock file, never from a CDN.
$(NPM_STAMP): package-lock.json package.json scripts/copy_vendor.mjs scripts/build_viewer.mjs
	@command -v $(NPM) >/dev/null || { echo "Telerad needs Node.js 18+ and npm to install the diagram viewer and editor (no CDN is used)"; exit 1; }
	$(NPM) ci --no-audit --no-fund
	$(NPM) run --silent vendor
	@touch $@

MO := web/translations/en/LC_MESSAGES/messages.mo

$(MO): web/translations/en/LC_MESSAGES/messages.po | $(STAMP)
	$(BIN)/pybabel compile -d web/translations

install: $(STAMP) $(NPM_STAMP) $(MO)

# Maintainers: refresh the catalogue after changing user-visible strings, then translate the new entries.
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext -k _l --project=Telerad -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --no-fuzzy-matching --ignore-obsolete

migrate: install
	$(BIN)/telerad db upgrade

deploy: migrate
	$(BIN)/telerad deploy

demo: deploy
	$(BIN)/telerad demo

run: demo
	$(BIN)/telerad run

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# The suite runs in TEST_WORKERS processes (pytest-xdist), one test file per process at a time: each file's
# module fixtures (servers, Orthanc, Chromium) stay in one process. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

test: lint typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache node_modules web/static/vendor
