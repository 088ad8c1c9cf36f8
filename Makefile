# Every target bootstraps .venv from nothing (Python >= 3.11 and pip are all it needs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check bench fmt clean venv

venv: $(STAMP)

# The hot path (irisd/_hot.py) is compiled into C extensions beside its sources (setup.py), so a
# change to any of them reinstalls, or the tests would run the old compiled code.
HOT    := $(shell $(PYTHON) -c 'import runpy; print(*runpy.run_path("irisd/_hot.py")["hot_sources"]())')

$(STAMP): pyproject.toml setup.py irisd/_hot.py $(HOT)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/irisd demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .bench build irisd_hot__mypyc*.so irisd/*/*.so
