"""The Colab edition (tools/colab_edition.py): MyST flattened to plain Markdown, numbered like the book."""

import json
import pathlib
import re
import textwrap

import pytest

from conftest import ROOT, load_tool

ce = load_tool("colab_edition")
nbtools = load_tool("notebooks")

BIB = """
@article{smith2020one, title={One}, author={Smith, Ann}, journal={J}, year={2020}}
@article{lee2021two, title={Two}, author={Lee, Bo and Kim, Cy}, journal={J}, year={2021}}
@inproceedings{cao2022three, title={Three}, author={Cao, Yuan and Chen, Zixiang and Belkin, Mikhail}, booktitle={NeurIPS}, year={2022}}
"""


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": textwrap.dedent(text).strip("\n")}


def code(text, tags=(), **meta):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags), **meta},
            "outputs": [], "source": text}


INSTALL = code("# install", tags=["colab-install", "hide-cell"])


def tiny_book(root: pathlib.Path, chapters: dict) -> pathlib.Path:
    """A book with an unnumbered part (the first chapter) and a numbered one (the others)."""
    names = list(chapters)
    (root / "chapters").mkdir(parents=True, exist_ok=True)
    (root / "src" / "prunebook").mkdir(parents=True, exist_ok=True)
    (root / "src" / "prunebook" / "_version.py").write_text('__version__ = "9.8.7"\n')
    (root / "chapters" / "references.bib").write_text(BIB)
    (root / "_config.yml").write_text(
        "title: t\nrepository:\n  url: https://github.com/someorg/somebook\n"
        "bibtex_bibfiles:\n  - chapters/references.bib\n")
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "A", "chapters": [{"file": f"chapters/{names[0]}"}]},
        {"caption": "B", "numbered": True, "chapters": [{"file": f"chapters/{n}"} for n in names[1:]]}]}
    (root / "_toc.yml").write_text(json.dumps(toc))
    for name, cells in chapters.items():
        cells = [{**c, "id": f"cell-{i}"} for i, c in enumerate([INSTALL, *cells])]
        nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
        (root / "chapters" / f"{name}.ipynb").write_text(json.dumps(nb))
    return root


def render(root):
    out = root / "_build" / "colab"
    ce.write(out, root)
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "chapters").glob("*.ipynb"))}


def markdown(nb):
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


CHAPTER_ONE = [
    md("""
        (chapter-one)=
        # Chapter one

        Text citing {footcite:t}`cao2022three` and {footcite:p}`smith2020one,lee2021two`.

        :::{admonition} Learning goals
        :class: tip
        - goal with $x^2$
        :::

        ```{math}
        :label: eq-a
        a = b
        ```

        $$
        c = d \\\\
        e = f
        $$ (eq-b)

        ```{note}
        A note.
        ```
        """),
    code("x = 1", tags=["parameters"]),
    code("plot()", mystnb={"figure": {"name": "fig-one", "caption": "A figure with $y$ and {eq}`eq-a`."}}),
    code("secret()", tags=["remove-cell"]),
    code("assert hidden", tags=["hidden-check"]),
    code("shown_output_only()", tags=["remove-input"]),
    md("""
        See {eq}`eq-b`, {numref}`fig-one`, {numref}`Figure %s <fig-one>`, {numref}`ex-one` and
        {ref}`chapter-one`; the other chapter: {eq}`eq-two` and {doc}`02_two`; value {glue:text}`best:.2f`.

        ```{exercise}
        :label: ex-one

        Prove {eq}`eq-a`.
        ```

        ```{solution} ex-one
        :class: dropdown

        Since $a = b$.
        ```

        ```{prf:theorem} Big result
        :label: thm-one

        It holds.
        ```

        ```{prf:proof}
        1. Step.
        ```

        ## References

        ```{footbibliography}
        ```
        """),
    code("glue('best', 0.123456)", tags=["check"]),
]

CHAPTER_TWO = [
    md("""
        # Chapter two

        ```{math}
        :label: eq-two
        z = 1
        ```

        Back to {eq}`eq-a` and {numref}`thm-one`; {cite:t}`lee2021two`, {cite:p}`smith2020one`.
        """),
]

CHAPTER_ZERO = [
    md("""
        # Setup

        ```{exercise}
        :label: ex-zero
        Zero.
        ```

        $$ w = 0 $$ (eq-zero)

        and {eq}`eq-zero`.
        """),
]


@pytest.fixture
def book(tmp_path):
    return tiny_book(tmp_path, {"00_zero": CHAPTER_ZERO, "01_one": CHAPTER_ONE, "02_two": CHAPTER_TWO})


def test_myst_is_flattened_and_numbered_like_the_book(book):
    eds = render(book)
    one, text = eds["01_one"], markdown(eds["01_one"])
    assert "(chapter-one)=" not in text and text.startswith("*Colab edition")
    assert "Cao et al. (2022)" in text and "(Smith, 2020; Lee and Kim, 2021)" in text
    assert "> **Learning goals**\n>\n> - goal with $x^2$" in text
    assert "$$\na = b \\tag{1.1}\n$$" in text
    assert "$$\n\\begin{split}c = d \\\\\ne = f\\end{split} \\tag{1.2}\n$$" in text
    assert "> **Note**\n>\n> A note." in text
    assert "**Fig. 1.1.** A figure with $y$ and (1.1)." in text
    assert "See (1.2), Fig. 1.1, Figure 1.1, Exercise 1.1 and\nChapter one;" in text
    assert "the other chapter: [(2.1)](https://someorg.github.io/somebook/chapters/02_two.html#equation-eq-two)" in text
    assert "[Chapter two](https://someorg.github.io/somebook/chapters/02_two.html)" in text
    assert "value *(`best`, computed in a cell below)*" in text
    assert "> **Exercise 1.1**\n>\n> Prove (1.1)." in text
    assert "<details>\n<summary><b>Solution to Exercise 1.1</b></summary>\n\nSince $a = b$.\n\n</details>" in text
    assert "> **Theorem 1.1 (Big result)**\n>\n> It holds." in text
    assert "> **Proof.**\n>\n> 1. Step.\n>\n> ∎" in text
    refs = text.split("## References")[1]
    assert refs.count("\n- ") == 3 and "Yuan Cao" in refs and "Ann Smith" in refs
    two = markdown(eds["02_two"])
    assert "$$\nz = 1 \\tag{2.1}\n$$" in two
    assert "[(1.1)](https://someorg.github.io/somebook/chapters/01_one.html#equation-eq-a)" in two
    assert "[theorem 1.1](https://someorg.github.io/somebook/chapters/01_one.html#thm-one)" in two
    assert "Lee and Kim (2021), (Smith, 2020)" in two
    zero = markdown(eds["00_zero"])  # an unnumbered chapter numbers without a chapter prefix, as the book does
    assert "> **Exercise 1**" in zero and "\\tag{1}" in zero and "and (1)." in zero
    assert all(ce.raw_myst(nb) == [] for nb in eds.values())


def test_cells_install_first_dropped_tags_and_no_outputs(book):
    one = render(book)["01_one"]
    sources = ["".join(c["source"]) for c in one["cells"]]
    assert sources[0] == "# install" and "colab-install" in one["cells"][0]["metadata"]["tags"]
    assert not any(s in src for src in sources for s in ("secret()", "assert hidden", "shown_output_only()"))
    assert "x = 1" in sources and "glue('best', 0.123456)" in sources
    assert [c["metadata"]["tags"] for c in one["cells"] if "x = 1" == "".join(c["source"])] == [["parameters"]]
    assert all(c.get("outputs") == [] for c in one["cells"] if c["cell_type"] == "code")
    assert "mystnb" not in json.dumps(one)


def test_glue_values_come_from_the_books_execution_of_the_same_code(book, tmp_path):
    from jupyter_cache import get_cache

    assert "value *(`best`, computed in a cell below)*" in markdown(render(book)["01_one"]), "no execution yet"
    source = book / "chapters" / "01_one.ipynb"
    nb = json.loads(source.read_text())
    for k, c in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        c["execution_count"] = k + 1
        if "glue(" in c["source"]:
            c["outputs"] = [{"output_type": "display_data", "data": {"text/plain": "0.123456"},
                             "metadata": {"scrapbook": {"name": "best", "mime_prefix": ""}}}]
    executed = tmp_path / "executed.ipynb"
    executed.write_text(json.dumps(nb))
    get_cache(book / "_build" / ".jupyter_cache").cache_notebook_file(executed, check_validity=False)
    assert "value 0.12." in markdown(render(book)["01_one"])
    # once the chapter's code changes, that execution is no longer its own
    nb = json.loads(source.read_text())
    next(c for c in nb["cells"] if "glue(" in "".join(c["source"]))["source"] = "glue('best', 0.5)"
    source.write_text(json.dumps(nb))
    assert "value *(`best`, computed in a cell below)*" in markdown(render(book)["01_one"])


@pytest.mark.parametrize("bad, message", [
    ("```{margin-note}\nx\n```", "unknown directive {margin-note}"),
    ("Some {wiki}`thing` here.", "unknown role {wiki}`thing`"),
    ("See {eq}`eq-missing`.", "{eq}`eq-missing`: no such label"),
    ("See {footcite:t}`nobody1999`.\n```{footbibliography}\n```", "citation key 'nobody1999'"),
    ("Hello {{ name }}.", "substitution"),
])
def test_unknown_myst_fails_naming_chapter_and_cell(tmp_path, bad, message):
    root = tiny_book(tmp_path, {"00_zero": CHAPTER_ZERO, "01_one": [md("# One"), code("x = 1"), md(bad)]})
    with pytest.raises(ce.EditionError) as info:
        render(root)
    assert "chapters/01_one.ipynb, cell 3" in str(info.value) and message in str(info.value)


def test_the_command_line_reports_errors(tmp_path, capsys, monkeypatch):
    root = tiny_book(tmp_path, {"00_zero": CHAPTER_ZERO, "01_one": [md("```{unknown}\n```")]})
    monkeypatch.setattr(ce, "ROOT", root)
    assert ce.main(["--out", str(tmp_path / "out")]) == 1
    assert "unknown directive {unknown}" in capsys.readouterr().err


# --- the book's own chapters


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("edition")
    paths = ce.write(out, ROOT)
    return {p.stem: json.loads(p.read_text()) for p in paths}


def test_every_chapter_has_an_edition(edition):
    assert list(edition) == [p.stem for p in nbtools.toc_notebooks()]


@pytest.mark.parametrize("chapter", [p.stem for p in nbtools.toc_notebooks()])
def test_chapter_edition(edition, chapter):
    nb, source = edition[chapter], json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    assert ce.raw_myst(nb) == []
    assert "".join(nb["cells"][0]["source"]) == nbtools.colab_source()
    kept = ["".join(c["source"]) for c in source["cells"] if c["cell_type"] == "code"
            and not set(c["metadata"].get("tags", [])) & ce.DROP_TAGS]
    assert ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"] == kept
    text = markdown(nb)
    src_md = "\n".join("".join(c["source"]) for c in source["cells"] if c["cell_type"] == "markdown")
    assert text.count("<details>") == src_md.count("{solution}"), "every solution sits in a closed <details>"
    assert len(re.findall(r"^> \*\*Exercise \d", text, re.M)) == src_md.count("{exercise}")
    assert text.count("\\tag{") == len(re.findall(r":label:\s*eq-", src_md))
    figures = [c for c in source["cells"] if c["metadata"].get("mystnb", {}).get("figure")]
    assert len(re.findall(r"^\*\*Fig\. [\d.]+\.\*\* ", text, re.M)) == len(figures)
    if "{footcite" in src_md:
        assert re.search(r"^- .+\d{4}\.", text.split("References")[-1], re.M), "a reference list"


def test_numbers_match_the_built_book(built_book):
    """Every numbered target of the edition carries the number the built book shows."""
    book = ce.load_book(ROOT)
    targets = ce.collect(book)
    numbered = {k: t for k, t in targets.items() if t.number}
    assert len(numbered) > 30
    pages: dict = {}
    for label, t in numbered.items():
        page = pages.setdefault(t.doc, (built_book / f"{t.doc}.html").read_text())
        at = page.find(f'id="{t.anchor}"')
        assert at >= 0, f"{label}: no element #{t.anchor} in {t.doc}.html"
        if t.kind == "equation":
            shown = re.search(r'class="eqno">\(([^)]*)\)<a class="headerlink" href="#' + re.escape(t.anchor), page)
            assert shown and shown.group(1) == t.number, f"{label}: book ({shown and shown.group(1)}), edition ({t.number})"
        else:
            shown = re.search(r'class="caption-number">([^<]*)</span>', page[at:])
            assert shown and shown.group(1).split()[-1] == t.number, f"{label}: book {shown and shown.group(1)!r}, edition {t.number}"


def test_download_links_point_where_sphinx_puts_the_file(book):
    """{download}`data <figure-data/x.csv>` becomes a link to the online book's copy of the file,
    at the path Sphinx itself gives it (_downloads/<md5 of the source-relative path>/<name>)."""
    try:
        from sphinx.util._files import DownloadFiles
    except ImportError:  # older Sphinx
        from sphinx.util import DownloadFiles

    b = ce.load_book(book)
    flat = ce.Flattener(b, "chapters/01_one", ce.collect(b), {}, [], 0)
    got = flat.inline("the {download}`data <figure-data/phase-pn.csv>` and {download}`../extra/raw.csv`")
    want = DownloadFiles()
    first = want.add_file("chapters/01_one", "chapters/figure-data/phase-pn.csv")
    second = want.add_file("chapters/01_one", "extra/raw.csv")
    assert got == (f"the [data]({b.base_url}_downloads/{first}) and [raw.csv]({b.base_url}_downloads/{second})")
