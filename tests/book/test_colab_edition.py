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
    assert list(edition) == [p.stem for p in nbtools.toc_notebooks(pages=True)]


def _expected_code(cell):
    """The code cell(s) the edition makes of a chapter's code cell (module docstring of the tool)."""
    src, tags = "".join(cell["source"]), set(cell["metadata"].get("tags", []))
    if "# BEGIN SOLUTION" in src:
        solution = "\n".join(ln for ln in src.split("\n") if ln.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION"))
        return [load_tool("assignments").strip_code(src), ce.SOLUTION_TITLE + "\n" + solution]
    if tags & ce.FOLD_TAGS and "colab-install" not in tags:
        return [None]  # folded under a title: checked below
    return [src]


@pytest.mark.parametrize("chapter", [p.stem for p in nbtools.toc_notebooks(pages=True)])
def test_chapter_edition(edition, chapter):
    nb, source = edition[chapter], json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    assert ce.raw_myst(nb) == []
    assert "".join(nb["cells"][0]["source"]) == nbtools.colab_source()
    kept = [c for c in source["cells"] if c["cell_type"] == "code" and not set(c["metadata"].get("tags", [])) & ce.DROP_TAGS]
    got = [c for c in nb["cells"] if c["cell_type"] == "code"]
    want = [(c, w) for c in kept for w in _expected_code(c)]
    assert len(got) == len(want)
    for g, (c, w) in zip(got, want):
        text = "".join(g["source"])
        if w is None:  # a hide-input / hide-cell cell: folded (a form) under a title, its code unchanged
            assert g["metadata"]["cellView"] == "form" and text.startswith("#@title ")
            assert text.split("\n", 1)[1] == "".join(c["source"])
        else:
            assert text == w
            folded = text.startswith(ce.SOLUTION_TITLE)
            assert (g["metadata"].get("cellView") == "form") == folded, "only solutions are folded among these"
    text = markdown(nb)
    src_md = "\n".join("".join(c["source"]) for c in source["cells"] if c["cell_type"] == "markdown")
    dropdowns = len(re.findall(r"^:::+\{admonition\}[^\n]*\n(?::[\w-]+:[^\n]*\n)*?:class:[^\n]*dropdown", src_md, re.M))
    sections = nb["metadata"]["colab"].get("collapsed_sections", [])
    assert text.count("<details>") + len(sections) == src_md.count("{solution}") + dropdowns, \
        "every solution and dropdown sits in a closed <details> or a collapsed section"
    assert len(re.findall(r"^> \*\*Exercise \d", text, re.M)) == src_md.count("{exercise}")
    assert text.count("\\tag{") == len(re.findall(r":label:\s*eq-", src_md))
    figures = [c for c in source["cells"] if c["metadata"].get("mystnb", {}).get("figure")]
    assert len(re.findall(r"^\*\*Fig\. [\d.]+\.\*\* ", text, re.M)) == len(figures)
    if "{footcite" in src_md:
        assert re.search(r"^- .+\d{4}\.", text.split("References")[-1], re.M), "a reference list"


# --- Colab's interface: exercises, folded cells, evidence blocks

EXERCISE_CHAPTER = [
    md("""
        # One

        ## First section

        Main text.

        :::{admonition} Evidence: the claim holds on fresh seeds
        :class: dropdown
        The statistics, $p = 0.9$.
        :::
        """),
    code("# compute the statistics\nstats = 1 + 1", tags=["hide-cell"]),
    md("""
        ## Second section

        :::{admonition} Evidence: an ablation
        :class: dropdown
        Ablation text.
        :::

        More main text after the block.

        Code exercise 1.1 (core, 1 point): write `double`.
        """),
    code("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", tags=["hide-input"],
         exercise={"id": "1.1", "points": 1, "level": "core"}),
    code('assert double(3) == 6\nprint("check passed")', tags=["check"]),
    code("assert double(4) == 8", tags=["hidden-check", "remove-cell"]),
    code("import sys\nprint('figure', file=sys.stdout)", tags=["hide-input"]),
    md("## References"),
]


@pytest.fixture
def exercise_book(tmp_path):
    return tiny_book(tmp_path, {"00_zero": CHAPTER_ZERO, "01_one": EXERCISE_CHAPTER})


def test_a_code_exercise_shows_its_stub_and_folds_its_solution(exercise_book):
    cells = render(exercise_book)["01_one"]["cells"]
    code_cells = [c for c in cells if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in code_cells]
    k = next(i for i, s in enumerate(sources) if s.startswith("def double"))
    assert "NotImplementedError" in sources[k] and "return 2 * x" not in sources[k], "the stub comes first"
    assert code_cells[k]["metadata"].get("cellView") is None and "hide-input" not in code_cells[k]["metadata"]["tags"]
    assert code_cells[k]["metadata"]["exercise"]["id"] == "1.1"
    assert sources[k + 1] == ce.SOLUTION_TITLE + "\ndef double(x):\n    return 2 * x"
    assert code_cells[k + 1]["metadata"]["cellView"] == "form", "the solution is one click away"
    assert sources[k + 2].startswith("assert double(3) == 6"), "then the check"
    assert not any("double(4)" in s for s in sources), "hidden checks stay out"


def test_hide_input_cells_are_folded_under_a_title(exercise_book):
    cells = [c for c in render(exercise_book)["01_one"]["cells"] if c["cell_type"] == "code"]
    folded = {"".join(c["source"]).split("\n")[0]: c for c in cells if c["metadata"].get("cellView") == "form"}
    assert set(folded) == {"#@title compute the statistics", "#@title Code (double-click to show)", ce.SOLUTION_TITLE}
    install = cells[0]
    assert "cellView" not in install["metadata"] and "".join(install["source"]) == "# install"


def test_evidence_blocks_become_collapsed_sections_or_details(exercise_book):
    nb = render(exercise_book)["01_one"]
    cells = nb["cells"]
    texts = ["".join(c["source"]) for c in cells]
    collapsed = nb["metadata"]["colab"]["collapsed_sections"]
    # the first block and its folded code cell are followed by a "##" heading: a collapsed "###" section
    h = texts.index("### Evidence: the claim holds on fresh seeds")
    assert collapsed == [cells[h]["id"]] and cells[h]["metadata"]["id"] == cells[h]["id"]
    assert texts[h + 1] == "The statistics, $p = 0.9$." and "".join(cells[h + 2]["source"]).startswith("#@title")
    assert texts[h + 3].startswith("## Second section")
    # the second is followed by main text, which a section would swallow: a closed <details>
    assert "<details>\n<summary>Evidence: an ablation</summary>\n\nAblation text.\n\n</details>" in texts
    assert not any("prunebook_evidence" in c["metadata"] for c in cells)
    assert all(ce.raw_myst(nb) == [] for nb in [nb])


def test_flattened_copies_keep_their_cells(exercise_book):
    """Student and solution copies are flattened without Colab's interface: cells stay as they are."""
    source = json.loads((exercise_book / "chapters" / "01_one.ipynb").read_text())
    source["metadata"]["prunebook"] = {"assignment": "01_one"}
    flat = ce.flatten_notebook(source, exercise_book)
    codes = ["".join(c["source"]) for c in flat["cells"] if c["cell_type"] == "code"]
    assert any("# BEGIN SOLUTION" in s for s in codes) and not any(s.startswith("#@title") for s in codes)
    assert "collapsed_sections" not in flat["metadata"]["colab"]
    assert "<details>\n<summary>Evidence: the claim holds on fresh seeds</summary>" in markdown(flat)


@pytest.mark.notebooks
def test_run_all_completes_with_the_folded_solution(exercise_book, tmp_path):
    """"Run all" on the edition: the stub defines, the folded solution redefines, the check passes.
    Control: without the solution cell, the check fails on the stub."""
    import papermill as pm

    nb = render(exercise_book)["01_one"]
    path = tmp_path / "edition.ipynb"
    path.write_text(json.dumps(nb))
    pm.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    out = json.loads((tmp_path / "out.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in out["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert "check passed" in printed
    nb["cells"] = [c for c in nb["cells"] if not "".join(c["source"]).startswith(ce.SOLUTION_TITLE)]
    path.write_text(json.dumps(nb))
    with pytest.raises(pm.PapermillExecutionError, match="NotImplementedError"):
        pm.execute_notebook(str(path), str(tmp_path / "out2.ipynb"), kernel_name="python3", progress_bar=False)


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


def test_the_landing_page_counts_with_the_unnumbered_chapters(book):
    """Sphinx numbers the landing page and the unnumbered chapters with one count: an equation on
    the landing page makes the unnumbered chapter's first equation (2), as in the built book."""
    (book / "intro.md").write_text("# Intro\n\n$$ a = 1 $$ (eq-intro)\n\n```{figure} x.png\n---\nname: fig-intro\n---\nA.\n```\n")
    eds = render(book)
    zero = markdown(eds["00_zero"])
    assert "\\tag{2}" in zero and "and (2)." in zero
    assert "\\tag{1.1}" in markdown(eds["01_one"]), "numbered chapters count on their own"
    targets = ce.collect(ce.load_book(book))
    assert targets["fig-intro"].number == "1" and targets["fig-intro"].doc == "intro"
