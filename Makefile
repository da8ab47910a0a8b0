# The two commands of the README, and the instructor's commands for course assignments. Each does
# all the set-up on a fresh machine: a virtual environment in .venv, torch first (PyTorch's CPU wheel
# index asked first, then the default index: tools/install_torch.py), then the package with its
# extras under constraints.txt; `make test`, `make assignments` and `make grade` add the grading
# extra (otter-grader); `make test` also installs headless Chromium for the browser test when missing.
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
TORCH       := torch==2.13.0
TORCH_INDEX := https://download.pytorch.org/whl/cpu
CONSTRAINTS := constraints.txt
STAMP       := $(VENV)/.installed
GRADER      := $(VENV)/.installed-grading
TORCH_SRC   := $(VENV)/torch-source.txt
LOCK_VENV   := $(or $(TMPDIR),/tmp)/prunebook-constraints-venv
TIME_LIMIT  ?= 300
JOBS        ?= 1
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install browser book colab test assignments grade dist constraints tables clean

help:
	@echo "make book         - set up .venv, execute every chapter and build _build/html (strict)"
	@echo "make test         - set up .venv and run the whole test suite (includes the strict book build)"
	@echo "make colab        - write the Colab edition of every chapter to _build/colab/chapters"
	@echo "make assignments  - student and solution copies and the grading bundle in _build/assignments [EXTRA_TESTS=<dir>]"
	@echo "make grade SUBMISSIONS=<dir> - grade every notebook in <dir>: _build/grades.csv, _build/feedback/ [TIME_LIMIT=300 JOBS=1 CHAPTER=]"
	@echo "make dist         - build the sdist and wheel into dist/ and check them (twine check --strict)"
	@echo "make constraints  - re-resolve the toolchain (book, test, grading) in a fresh venv and rewrite $(CONSTRAINTS)"
	@echo "make tables       - recompute the precomputed sweep tables shipped in src/prunebook/book/tables (slow)"

$(STAMP): pyproject.toml Makefile $(CONSTRAINTS) tools/install_torch.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python tools/install_torch.py $(TORCH) --index $(TORCH_INDEX) --record $(TORCH_SRC)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[book,test]'
	touch $(STAMP)

$(GRADER): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[grading]'
	touch $(GRADER)

install: $(STAMP)
	@echo "torch: $$(cat $(TORCH_SRC) 2>/dev/null || echo 'source not recorded (installed before tools/install_torch.py)')"

# Debian's chromium and chromium-driver (or an already installed Chrome and chromedriver)
browser:
	@if command -v chromedriver >/dev/null 2>&1 && { command -v chromium || command -v google-chrome; } >/dev/null 2>&1; then \
		echo "browser: $$(command -v chromium || command -v google-chrome), $$(command -v chromedriver)"; \
	else \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

book: install
	$(BIN)/python tools/build_book.py

# plain-Markdown notebooks for Colab/JupyterLab; {glue} values from the execution cache of `make book`
colab: install
	$(BIN)/python tools/colab_edition.py

test: $(GRADER) browser
	$(BIN)/python -m pytest

assignments: $(GRADER)
	$(BIN)/python tools/make_assignments.py --out _build/assignments $(if $(EXTRA_TESTS),--extra-tests $(EXTRA_TESTS))

grade: $(GRADER)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder> [TIME_LIMIT=300] [JOBS=1] [CHAPTER=<chapter>]"; exit 2; }
	$(BIN)/python tools/grading.py --submissions $(SUBMISSIONS) --time-limit $(TIME_LIMIT) --jobs $(JOBS) $(if $(CHAPTER),--chapter $(CHAPTER))

tables: install
	$(BIN)/python -m prunebook.book.precomputed build $(TABLES)

dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

# A fresh venv, torch as above, the book and test extras resolved anew (no constraints) and frozen;
# then the grading extra (otter-grader) installed under those pins, so that it never moves the
# book's tree (it fails instead), and all three extras' tree frozen into $(CONSTRAINTS).
constraints:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python tools/install_torch.py $(TORCH) --index $(TORCH_INDEX)
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[book,test]'
	$(LOCK_VENV)/bin/python tools/constraints.py freeze --extras book,test --out $(LOCK_VENV)/book-test.txt
	$(LOCK_VENV)/bin/python -m pip install --quiet -c $(LOCK_VENV)/book-test.txt -e '.[grading]'
	$(LOCK_VENV)/bin/python tools/constraints.py freeze --out $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)

clean:
	rm -rf _build dist chapters/sweep-cache
