"""Every TeX command a chapter writes is one Colab's MathJax knows.

Colab and classic Jupyter typeset Markdown with MathJax 2 (TeX-AMS). A command it does not know
(a book-only macro such as ``\\bmu``, or a typo such as ``\\rVerte_1``) shows as red raw text there,
even though the book, which may define extra macros, renders it. The list of known commands is
generated from the real MathJax 2.7.9 package by tools/mathjax2_commands.py and committed.
"""

import json
import re

import pytest

from conftest import ROOT, load_tool

mj = load_tool("mathjax2_commands")
nbtools = load_tool("notebooks")
COMMANDS, ENVIRONMENTS = mj.read()

CODE_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)


def _fence(m: re.Match) -> str:
    info = m.group("info").strip()
    is_directive = info.startswith("{") and not info.startswith(("{code", "{literalinclude"))
    return math_text(m.group("body")) + "\n" if is_directive else ""  # directives hold Markdown; code is not math


def math_text(markdown: str) -> str:
    """The Markdown without code: fenced code blocks (not MyST directives) and inline code spans."""
    return CODE_SPAN.sub("", CODE_FENCE.sub(_fence, markdown))


def unknown_tex(markdown: str) -> list[str]:
    """The TeX commands and environments in ``markdown`` that MathJax 2 TeX-AMS does not define."""
    text = math_text(markdown)
    bad = [f"\\{c}" for c in re.findall(r"\\([A-Za-z]+)", text) if c not in COMMANDS]
    bad += [f"\\begin{{{e}}}" for e in re.findall(r"\\begin\{([^}]*)\}", text) if e not in ENVIRONMENTS]
    return sorted(set(bad))


def markdown_of(path):
    """(place, text) of every Markdown cell and every figure caption of a chapter."""
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            yield f"cell {i}", "".join(cell["source"])
        caption = cell["metadata"].get("mystnb", {}).get("figure", {}).get("caption")
        if caption:
            yield f"cell {i} (figure caption)", caption


def test_the_list_is_the_generated_one():
    assert mj.OUT.exists()
    assert {"alpha", "lVert", "boldsymbol", "mathbb", "operatorname", "tag", "tfrac"} <= COMMANDS
    assert {"align", "cases", "pmatrix"} <= ENVIRONMENTS
    # book-only macros and commands MathJax 2 lacks are not in it
    assert not {"bmu", "SNR", "norm", "ip", "argmax", "bm", "coloneqq", "cancel"} & COMMANDS


def test_the_check_catches_unknown_commands():
    md = ("Text $\\lVert \\bmu \\rVerte_1$ and\n```{math}\n:label: x\n\\SNR_p = 1\n```\n"
          "```{exercise}\n:label: e\n$\\mathbf{x}\\Foo$\n```\n`\\notmath` in code\n```python\nx = '\\\\alsocode'\n```\n$$\\begin{align} a \\end{align}\\begin{foo}\\end{foo}$$")
    assert unknown_tex(md) == ["\\Foo", "\\SNR", "\\begin{foo}", "\\bmu", "\\rVerte"]


@pytest.mark.parametrize("chapter", [p.stem for p in nbtools.toc_notebooks(pages=True)])
def test_chapter_math_is_known_to_colab_mathjax(chapter):
    path = ROOT / "chapters" / f"{chapter}.ipynb"
    found = [f"{place}: {', '.join(bad)}" for place, text in markdown_of(path) if (bad := unknown_tex(text))]
    assert not found, f"{path.name}: TeX that Colab's MathJax 2 does not know:\n" + "\n".join(found)


def test_landing_and_bibliography_pages():
    for name in ("intro.md", "chapters/bibliography.md", "CHANGELOG.md"):
        assert unknown_tex((ROOT / name).read_text()) == [], name
