# The two commands of the README. Each does all the set-up on a fresh machine:
# a virtual environment in .venv, the CPU build of torch first, then the package with its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: help install book test notebooks-check clean

help:
	@echo "make book   - set up .venv, execute every chapter and build _build/html"
	@echo "make test   - set up .venv and run the whole test suite"

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/python tools/build_book.py

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build
