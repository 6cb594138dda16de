# Journeyline: `make demo` runs the product with demo data, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

# Local development runs with DEBUG on; production sets DEBUG=false and SECRET_KEY.
export DEBUG ?= true
export PYTHONPATH := $(CURDIR)

.PHONY: install demo serve test bench lint format stop migrate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --no-input

demo: install
	$(BIN)/python -m config.stack --port $(PORT) --demo

serve: install
	$(BIN)/python -m config.stack --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/ingest.py --start-server

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stop:
	@test -x $(BIN)/python && $(BIN)/python -m config.embedded stop || true

clean: stop
	rm -rf var
