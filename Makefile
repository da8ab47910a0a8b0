# The two commands of the README, and the instructor's commands for course assignments. Each does
# all the set-up on a fresh machine: a virtual environment in .venv, the CPU build of torch first,
# then the package with its extras; `make test`, `make assignments` and `make grade` add the
# grading extra (otter-grader); `make test` also installs headless Chromium when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
GRADER := $(VENV)/.installed-grading
TIME_LIMIT ?= 300
JOBS   ?= 1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install browser book test assignments grade clean

help:
	@echo "make book         - set up .venv, execute every chapter and build _build/html (strict)"
	@echo "make test         - set up .venv and run the whole test suite (includes the strict book build)"
	@echo "make assignments  - student and solution copies and the grading bundle in _build/assignments [EXTRA_TESTS=<dir>]"
	@echo "make grade SUBMISSIONS=<dir> - grade every notebook in <dir>: _build/grades.csv, _build/feedback/ [TIME_LIMIT=300 JOBS=1 CHAPTER=]"

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

$(GRADER): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[grading]'
	touch $(GRADER)

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

test: $(GRADER) browser
	$(BIN)/python -m pytest

assignments: $(GRADER)
	$(BIN)/python tools/assignments.py --out _build/assignments $(if $(EXTRA_TESTS),--extra-tests $(EXTRA_TESTS))

grade: $(GRADER)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder> [TIME_LIMIT=300] [JOBS=1] [CHAPTER=<chapter>]"; exit 2; }
	$(BIN)/python tools/grading.py --submissions $(SUBMISSIONS) --time-limit $(TIME_LIMIT) --jobs $(JOBS) $(if $(CHAPTER),--chapter $(CHAPTER))

clean:
	rm -rf _build chapters/sweep-cache
