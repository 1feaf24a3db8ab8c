# Two commands matter: `make demo` (the main job) and `make test` (every check).
# Both set up the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck contracts pytest bench evaluate model clean

$(STAMP): pyproject.toml
	@echo "meshwatch: installing meshwatch and its dependencies into $(VENV) (first run, or pyproject.toml changed; a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/meshwatch demo

lint: install
	$(BIN)/ruff check meshwatch tests
	$(BIN)/ruff format --check meshwatch tests

typecheck: install
	$(BIN)/mypy --strict meshwatch

contracts: install
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest -q

test: lint typecheck contracts pytest

bench: install
	$(BIN)/meshwatch bench audit
	$(BIN)/meshwatch bench detect
	$(BIN)/meshwatch bench ingest

evaluate: install
	$(BIN)/meshwatch evaluate --profile full

# Regenerate the shipped default model (learned on simulated Bookinfo traffic, seeded).
model: install
	$(BIN)/meshwatch evaluate --profile full --topology bookinfo --save-model models/bookinfo.skops

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
