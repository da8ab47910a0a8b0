"""The built book: a strict build that executes every chapter, its pages, and cache invalidation."""

import html.parser
import json
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import load_tool

ROOT = pathlib.Path(__file__).resolve().parents[2]


build_book = load_tool("build_book")
nbtools = load_tool("notebooks")
CHAPTERS = [p.stem for p in nbtools.toc_notebooks()]
NOTEBOOK_PAGES = [p.stem for p in nbtools.toc_notebooks(pages=True)]  # the chapters and the companion pages


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
    assert "exercise" in page.classes and "solution" in page.classes, "exercise and solution boxes"
    assert "footnote-reference" in page.classes, "citations resolve to the chapter's references"
    if chapter != "00_setup":
        assert "eqno" in page.classes, "numbered equations"
    if chapter == "03_gd_dynamics":
        assert "theorem" in page.classes and "proof" in page.classes
    assert "output_error" not in " ".join(page.classes) and "Traceback" not in (built_book / "chapters" / f"{chapter}.html").read_text()


def _pages(built_book):
    return sorted(p for p in built_book.rglob("*.html") if "_static" not in p.parts and "reports" not in p.parts)


def test_colab_links_open_the_chapter_edition_at_the_release(built_book, colab_edition):
    """Every Colab link opens the Colab edition of its page's chapter, on the `colab` branch under
    v<version>/ (where the release workflow publishes `make colab`), never a moving branch."""
    url, version = nbtools.release()
    org_repo = url.removeprefix("https://github.com/")
    pattern = re.compile(
        rf"https://colab\.research\.google\.com/github/{re.escape(org_repo)}/blob/colab/v{re.escape(version)}/(.+\.ipynb)")
    seen = {}
    for html in _pages(built_book):
        links = [h for h in parse(html).links if "colab.research.google.com" in h]
        for h in links:
            m = pattern.fullmatch(h)
            assert m, f"{html.relative_to(built_book)}: Colab link {h} is not the release edition's"
            page = html.relative_to(built_book).with_suffix(".ipynb").as_posix()
            assert m.group(1) == page, f"{html.relative_to(built_book)}: Colab link opens {m.group(1)}"
            assert (colab_edition / m.group(1)).exists(), f"{h}: {m.group(1)} is not in the Colab edition"
            seen[page] = h
    assert sorted(seen) == [f"chapters/{c}.ipynb" for c in NOTEBOOK_PAGES], "every notebook page has its Colab link"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_download_is_the_executed_notebook(built_book, chapter):
    page = parse(built_book / "chapters" / f"{chapter}.html")
    href = f"../_notebooks/chapters/{chapter}.ipynb"
    assert href in page.links, "the page links its executed notebook"
    assert not any(h.endswith(f"_sources/chapters/{chapter}.ipynb") for h in page.links), "not the bare source"
    nb = json.loads((built_book / "chapters" / href).resolve().read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code[1:]), "every cell was executed"
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 1, "with its figures"
    source = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    assert ["".join(c["source"]) for c in code] == [
        "".join(c["source"]) for c in source["cells"] if c["cell_type"] == "code"], "of the current chapter"


def test_bibliography_and_landing_page(built_book):
    bib = (built_book / "chapters" / "bibliography.html").read_text().lower()
    for key in ("pruning before training may improve generalization", "benign overfitting", "snip", "synaptic flow"):
        assert key in bib
    assert (built_book / "intro.html").exists() and (built_book / "index.html").exists()


def test_the_introduction_tells_the_story_and_points_to_the_changelog(built_book):
    """The story figures, drawn by the build from the shipped tables; the erratum in the changelog."""
    page = parse(built_book / "intro.html")
    text = (built_book / "intro.html").read_text()
    shown = [i["src"] for i in page.imgs if "_images/" in i.get("src", "")]
    assert sorted(pathlib.Path(s).name for s in shown) == ["story-regimes.png", "story-schematic.png"]
    assert all(i.get("alt", "").strip() for i in page.imgs if "_images/" in i.get("src", ""))
    for name in ("story-regimes.png", "story-schematic.png"):
        built, drawn = built_book / "_images" / name, ROOT / "_static" / "generated" / name
        assert built.read_bytes() == drawn.read_bytes(), f"{name}: the book shows the figure this build drew"
    assert "Erratum" not in text and "CHANGELOG.html" in text, "the erratum moved; one pointer remains"
    changelog = (built_book / "CHANGELOG.html").read_text()
    assert "Erratum: what earlier versions said about over-pruning" in changelog


def test_the_interactive_page_serves_vega_itself(built_book):
    """The explorer's output loads Vega from the book's _static (the CDN only as a fallback outside it)."""
    from prunebook.book import explore

    html = (built_book / "chapters" / "04b_explore_phase.html").read_text()
    assert 'class="prunebook-explorer"' in html
    for script in explore.LOCAL_SCRIPTS:
        assert script in html
        assert (built_book / "chapters" / script).resolve().is_file(), f"{script} is in the built site"


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
