# `make run` and `make test` do all the set-up on a fresh machine (see README).
# The Makefile builds .venv/ from Python 3.12+ (override with PYTHON=...).
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.12 python3.13 $(wildcard /root/.pyenv/versions/3.1[23]*/bin/python3); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# Two workers: the machine has two cores (pytest-xdist; each worker has its own test database).
PYTEST_ARGS ?= -n 2

.PHONY: run test install install-dev lint format migrate seed static

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

# The static files where production serves them from (the dev server also reads the apps'
# own, so an edited file shows without running this again).
static: install
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0

run: seed static
	$(BIN)/python manage.py runserver $(HOST)

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
