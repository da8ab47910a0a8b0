"""The built book: a strict build that executes every chapter, its pages, and cache invalidation."""

import html.parser
import json
import pathlib
import subprocess
import sys

import pytest

from conftest import load_tool

ROOT = pathlib.Path(__file__).resolve().parents[1]


build_book = load_tool("build_book")
nbtools = load_tool("notebooks")
CHAPTERS = [p.stem for p in nbtools.toc_notebooks()]


class Page(html.parser.HTMLParser):
    """Collects what the checks need from one HTML page."""

    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.classes, self.ids = [], [], [], set()
        self.figcaptions = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        self.classes += (a.get("class") or "").split()
        if tag == "img":
            self.imgs.append(a)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "figcaption":
            self.figcaptions += 1


def parse(path: pathlib.Path) -> Page:
    p = Page()
    p.feed(path.read_text())
    return p


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page(built_book, chapter):
    page = parse(built_book / "chapters" / f"{chapter}.html")
    figures = [i for i in page.imgs if "_images/" in i.get("src", "")]
    assert figures, "the chapter shows its figures"
    assert all(i.get("alt", "").strip() for i in figures), "every figure has alt text"
    assert page.figcaptions >= len(figures), "every figure has a caption"
    assert any("colab.research.google.com" in h and h.endswith(f"{chapter}.ipynb") for h in page.links)
    assert any(h.endswith(f"_sources/chapters/{chapter}.ipynb") for h in page.links), ".ipynb download"
    assert "exercise" in page.classes and "solution" in page.classes, "exercise and solution boxes"
    assert "footnote-reference" in page.classes, "citations resolve to the chapter's references"
    if chapter != "00_setup":
        assert "eqno" in page.classes, "numbered equations"
    if chapter == "03_gd_dynamics":
        assert "theorem" in page.classes and "proof" in page.classes
    assert "output_error" not in " ".join(page.classes) and "Traceback" not in (built_book / "chapters" / f"{chapter}.html").read_text()


def test_bibliography_and_landing_page(built_book):
    bib = (built_book / "chapters" / "bibliography.html").read_text().lower()
    for key in ("pruning before training may improve generalization", "benign overfitting", "snip", "synaptic flow"):
        assert key in bib
    assert (built_book / "intro.html").exists() and (built_book / "index.html").exists()


def _tiny_book(root: pathlib.Path, value: int) -> None:
    (root / "fakesrc").mkdir(parents=True, exist_ok=True)
    (root / "fakesrc" / "fakemod.py").write_text(f"VALUE = {value}\n")
    (root / "_config.yml").write_text(
        "title: tiny\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: cache\n  cache: _build/.jupyter_cache\n"
    )
    (root / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Tiny"]},
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
             "source": ["import sys, importlib\n", "sys.path.insert(0, 'fakesrc')\n", "import fakemod\n",
                        "print('VALUE IS', fakemod.VALUE)"]},
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    if not (root / "index.ipynb").exists():
        (root / "index.ipynb").write_text(json.dumps(nb))


def test_package_change_reexecutes_the_chapters(tmp_path):
    """A change under src/ must not be served from the execution cache."""
    _tiny_book(tmp_path, 1)
    assert build_book.build(tmp_path, tmp_path / "fakesrc") == 0
    page = tmp_path / "_build" / "html" / "index.html"
    assert "VALUE IS 1" in page.read_text()
    # control: a plain jupyter-book build serves the stale cached output after a package change
    _tiny_book(tmp_path, 2)
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jb), "build", str(tmp_path)], check=True, capture_output=True)
    assert "VALUE IS 1" in page.read_text()
    # the book's build notices the change and re-executes
    assert build_book.build(tmp_path, tmp_path / "fakesrc") == 0
    assert "VALUE IS 2" in page.read_text()
    # and with no change it reuses the cache (no re-execution needed)
    stamp = (tmp_path / "_build" / ".src-fingerprint").read_text()
    assert build_book.build(tmp_path, tmp_path / "fakesrc") == 0
    assert (tmp_path / "_build" / ".src-fingerprint").read_text() == stamp
