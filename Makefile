# Two commands matter: `make demo` (the main job) and `make test` (every check).
# Both set up the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck contracts pytest test-fallback fuzz bench evaluate model clean

$(STAMP): pyproject.toml setup.py meshwatch/decoding/_native.pyx meshwatch/graph/_recording.pyx meshwatch/_slots.pxd
	@echo "meshwatch: installing meshwatch and its dependencies into $(VENV) (first run, or pyproject.toml changed; a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/meshwatch demo

lint: install
	$(BIN)/ruff check meshwatch tests setup.py
	$(BIN)/ruff format --check meshwatch tests setup.py

typecheck: install
	$(BIN)/mypy --strict meshwatch

contracts: install
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest -q

test: lint typecheck contracts pytest

# The real-Envoy tests again, with the pure-Python (upb) wire decoder forced instead of the
# native extractor: both must serve. `.ci/run` runs it after `make test`.
test-fallback: install
	MESHWATCH_INGEST_DECODER=upb $(BIN)/pytest -q -m envoy

# A long differential fuzz of the native extractor against upb (make test runs a short one).
FUZZ_EXAMPLES ?= 50000
fuzz: install
	MESHWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider \
		tests/decoding/test_native_differential.py -k "generated or random or mutated"

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build meshwatch/decoding/_native.c meshwatch/decoding/_native.*.so meshwatch/graph/_recording.c meshwatch/graph/_recording.*.so
