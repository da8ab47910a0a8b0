# The two commands of the README, and the course-assignment copies. Each does all the set-up on a
# fresh machine: a virtual environment in .venv, the CPU build of torch first, then the package
# with its extras; `make test` also installs headless Chromium for the browser test when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install browser book colab test assignments clean

help:
	@echo "make book         - set up .venv, execute every chapter and build _build/html (strict)"
	@echo "make test         - set up .venv and run the whole test suite (includes the strict book build)"
	@echo "make assignments  - write student and solution copies to _build/assignments"
	@echo "make colab        - write the Colab edition of every chapter to _build/colab/chapters"

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium and chromium-driver (or an already installed Chrome and chromedriver)
browser:
	@if command -v chromedriver >/dev/null 2>&1 && { command -v chromium || command -v google-chrome; } >/dev/null 2>&1; then \
		echo "browser: $$(command -v chromium || command -v google-chrome), $$(command -v chromedriver)"; \
	else \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

book: $(STAMP)
	$(BIN)/python tools/build_book.py

# plain-Markdown notebooks for Colab/JupyterLab; {glue} values from _build/jupyter_execute after `make book`
colab: $(STAMP)
	$(BIN)/python tools/colab_edition.py

test: $(STAMP) browser
	$(BIN)/python -m pytest

assignments: $(STAMP)
	$(BIN)/python tools/assignments.py --out _build/assignments

clean:
	rm -rf _build chapters/sweep-cache
