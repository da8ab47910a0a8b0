"""Every chapter in _toc.yml: hygiene, the page conventions, and a papermill run in smoke mode."""

import json
import subprocess
import sys
import textwrap

import nbformat
import papermill as pm
import pytest

from conftest import ROOT, load_tool

nbtools = load_tool("notebooks")

CHAPTERS = nbtools.toc_notebooks()
PAGES = nbtools.toc_notebooks(pages=True)  # the chapters and the companion notebook pages


def test_toc_lists_chapters():
    names = [p.stem for p in CHAPTERS]
    assert names == ["00_setup", "01_data_model", "02_pruning_at_initialization", "03_gd_dynamics",
                     "04_phase_transition", "05_pruning_criteria", "06_real_data"]
    assert all(p.exists() for p in CHAPTERS)
    pages = [p.stem for p in PAGES]
    assert pages == names[:5] + ["04b_explore_phase"] + names[5:], "the interactive page follows chapter 4"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_notebook_hygiene(path):
    """No outputs, one parameters cell with a smoke switch, the current Colab cell first."""
    assert nbtools.problems(path) == []


def test_warnings_are_caught_only_scoped_targeted_and_explained():
    ok = (
        "import warnings\n"
        "with warnings.catch_warnings():\n"
        "    # numba: the first call compiles, and says so; harmless here\n"
        "    warnings.filterwarnings('ignore', category=FutureWarning, message='compil')\n"
        "    f()\n"
        "with warnings.catch_warnings(action='ignore', category=UserWarning):  # seaborn's palette note\n"
        "    g()\n"
        "%time h()\n"
    )
    assert nbtools.warning_problems(ok) == []
    bad = "import warnings\nwarnings.filterwarnings('ignore')\nwith warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n"
    found = nbtools.warning_problems(bad)
    assert "line 2: filterwarnings outside `with warnings.catch_warnings():`" in found
    assert "line 2: filterwarnings without a category=" in found
    assert "line 4: simplefilter without a comment saying why (on its line or the line above)" in found
    assert not any("line 4" in f and "outside" in f for f in found)


def test_hygiene_refuses_silenced_warnings_and_hidden_stderr(tmp_path, monkeypatch):
    cell = {"cell_type": "code", "execution_count": None, "outputs": [], "metadata": {"tags": ["remove-stderr"]},
            "source": "import warnings\nwarnings.simplefilter('ignore')\n"}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    monkeypatch.setattr(nbtools, "ROOT", tmp_path)
    (tmp_path / "c.ipynb").write_text(__import__("json").dumps(nb))
    found = "\n".join(nbtools.problems(tmp_path / "c.ipynb"))
    assert "cell 0: line 2: simplefilter outside" in found and "cell 0: hides its stderr" in found


def test_stderr_outputs_are_found():
    nb = {"cells": [{"cell_type": "markdown", "source": "x"},
                    {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": "ok\n"},
                                                      {"output_type": "stream", "name": "stderr",
                                                       "text": ["a.py:1: FutureWarning: ", "soon\n"]}]}]}
    assert nbtools.stderr_outputs(nb) == ["cell 1: a.py:1: FutureWarning: soon"]


def test_the_book_build_fails_on_stderr():
    """A warning a chapter does not catch is stderr output; MyST-NB turns it into a Sphinx warning
    (stderr_output: warn), which the strict build (-W) makes an error."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["stderr_output"] in ("warn", "error", "severe")
    assert "mystnb.stderr" not in str(config["sphinx"]["config"].get("suppress_warnings", []))
    assert '"-W"' in (ROOT / "tools" / "build_book.py").read_text()


def test_a_stray_warning_fails_the_strict_build(tmp_path):
    """The same check end to end: a one-page book with the book's execution settings, whose one cell
    warns, built by tools/build_book.py (jupyter-book build -n -W --keep-going)."""
    import json

    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({
        "title": "t", "execute": {**config["execute"], "execute_notebooks": "force"}, "only_build_toc_files": True}))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": "import warnings\nwarnings.warn('a warning no one caught', FutureWarning)"}
    (tmp_path / "page.ipynb").write_text(json.dumps({
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Page"}, cell], "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}))
    (tmp_path / "src").mkdir()
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--root", str(tmp_path),
                          "--src", str(tmp_path / "src")], capture_output=True, text=True, timeout=600)
    assert res.returncode != 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "stderr was found in the cell outputs of cell 2" in res.stdout + res.stderr


def test_colab_cell_is_pinned_to_the_release():
    url, version = nbtools.release()
    src = nbtools.colab_source()
    assert f"git+{url}@v{version}" in src
    assert "torch==" in src  # the running torch is pinned, never replaced
    assert "google.colab" in src


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercise_format(path):
    """Code exercises carry solution markers and are followed by a `check` cell."""
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    for i, c in enumerate(cells):
        if c.cell_type == "code" and "# BEGIN SOLUTION" in c.source:
            assert c.source.count("# BEGIN SOLUTION") == c.source.count("# END SOLUTION")
            nxt = next(cc for cc in cells[i + 1 :] if cc.cell_type == "code")
            assert "check" in nxt.metadata.get("tags", []), f"cell {i}: the next code cell must be tagged check"
    if path.stem != "00_setup":
        n_code = sum("# BEGIN SOLUTION" in c.source for c in cells if c.cell_type == "code")
        assert n_code >= 2, "chapters from 1 on have at least two code exercises"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    out = tmp_path / path.name
    pm.execute_notebook(
        str(path), str(out), parameters={"smoke": True}, kernel_name="python3", cwd=str(path.parent),
        progress_bar=False, execution_timeout=600,
    )
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    stderr = nbtools.stderr_outputs(nb)
    assert not stderr, "stderr (a warning the chapter neither catches nor explains):\n" + "\n".join(stderr)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    if path in CHAPTERS and path.stem != "00_setup":
        assert len(images) >= 2, "chapters draw their figures in smoke mode too"
    if path not in CHAPTERS:  # the interactive page: a Vega-Lite figure, its data inlined
        bundles = [o["data"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "data" in o]
        assert any("application/vnd.vegalite.v6+json" in b and "text/html" in b for b in bundles)


@pytest.mark.notebooks
def test_bad_parameter_fails_fast_with_its_name(tmp_path):
    path = next(p for p in CHAPTERS if p.stem == "01_data_model")
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(path), str(tmp_path / "bad.ipynb"), parameters={"smoke": True, "n_seeds": 0},
            kernel_name="python3", cwd=str(path.parent), progress_bar=False,
        )
    assert "n_seeds: must be an integer >= 1" in str(info.value)
    nb = nbformat.read(tmp_path / "bad.ipynb", as_version=4)
    executed = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert len(executed) <= 4, "the error comes right after the parameters, before any work"


# ----------------------------------------------------------------------------- page conventions


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_page_conventions(path):
    """What this chapter shows / Takeaways boxes, evidence blocks folded, short cells, about 150
    visible code lines, lines of at most 88 characters (tools/notebooks.py conventions)."""
    assert nbtools.conventions(path) == []


def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": textwrap.dedent(text).strip("\n")}


def _code(lines, tags=(), width=10):
    src = "\n".join("x" * width for _ in range(lines)) if isinstance(lines, int) else lines
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)}, "outputs": [], "source": src}


GOOD = [
    _code(60, ["colab-install", "hide-cell"], width=120),  # the generated install cell: exempt from every rule
    _md("""
        # A chapter

        One paragraph.

        :::{admonition} What this chapter shows
        :class: tip
        Three lines.
        :::

        ## Section one

        Prose {glue:text}`x:.2f` and $a + b$ here.

        :::{admonition} Evidence: the claim holds on fresh seeds
        :class: dropdown
        Five words of evidence here.
        :::
        """),
    _code(40, ["parameters"]),  # the parameters cell: exempt from the 30-line rule
    _code(30),
    _code(12, ["hide-input"]),
    _code(5, ["check"]),
    _code(40, ["hidden-check", "remove-cell"]),
    _md("""
        ## Section two

        :::{admonition} Takeaways
        :class: important
        - one
        :::

        ## Exercises

        ```{exercise}
        :label: ex-1
        Four words of exercise.
        ```

        ## References
        """),
]


def _nb(tmp_path, cells, name="01_x.ipynb"):
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_conventions_accept_a_conforming_chapter(tmp_path):
    assert nbtools.conventions(_nb(tmp_path, GOOD)) == []


@pytest.mark.parametrize("change, message", [
    (lambda c: c[1].update(source=c[1]["source"].replace("What this chapter shows", "What it shows")),
     "needs exactly one '{admonition} What this chapter shows'"),
    (lambda c: c[1].update(source=c[1]["source"].replace(":class: tip", ":class: note")), "needs ':class: tip'"),
    (lambda c: c.insert(1, _md("## Early section")), "must come before the first section"),
    (lambda c: c[7].update(source=c[7]["source"].replace("## Exercises", "## More results")),
     "must close the chapter; sections after it: ['More results']"),
    (lambda c: c[7].update(source=c[7]["source"].replace(":class: important", "")), "needs ':class: important'"),
    (lambda c: c[1].update(source=c[1]["source"].replace(":class: dropdown", ":class: note")),
     "needs ':class: dropdown'"),
    (lambda c: c[1].update(source=c[1]["source"].replace("Evidence: the claim", "Evidence the claim")),
     "titled 'Evidence: <what it supports>'"),
    (lambda c: c.append(_md("```{admonition} Evidence: x\n:class: dropdown\ny\n```")), "write it as ':::{admonition}'"),
    (lambda c: c.append(_md(":::{dropdown} Evidence: x\ny\n:::")), "not {dropdown}"),
    (lambda c: c.insert(3, _code(31)), "31 lines of code (at most 30"),
    (lambda c: c.insert(3, _code(31, ["hide-input"])), "31 lines of code (at most 30"),  # folded cells too
    (lambda c: c.insert(3, _code("y = 1\n" + "z" * 89)), "lines [2] are longer than 88"),
    (lambda c: c.insert(3, _code("z" * 89, ["remove-cell", "hidden-check"])), "lines [1] are longer than 88"),
    (lambda c: c.extend([_code(30), _code(30), _code(30), _code(30)]), "195 unfolded code lines"),
])
def test_conventions_name_each_departure(tmp_path, change, message):
    cells = json.loads(json.dumps(GOOD))
    change(cells)
    found = nbtools.conventions(_nb(tmp_path, cells))
    assert any(message in f for f in found), found


def test_folded_cells_do_not_count_as_visible(tmp_path):
    cells = json.loads(json.dumps(GOOD)) + [_code(30, [tag]) for tag in ("hide-input", "hide-cell", "remove-cell")] * 3
    assert nbtools.conventions(_nb(tmp_path, cells)) == []
    assert nbtools.stats(_nb(tmp_path, cells))["visible_code_lines"] == 40 + 30 + 5  # parameters, plain, check


def test_stats_count_what_a_reader_meets(tmp_path):
    s = nbtools.stats(_nb(tmp_path, GOOD))
    # main: "A chapter", "One paragraph.", "Three lines.", "Section one", "Prose ROLE and MATH here.",
    # "Section two", "- one", "Exercises", "References"
    assert s == {"chapter": "01_x", "words_main": 2 + 2 + 2 + 2 + 5 + 2 + 1 + 1 + 1, "words_evidence": 5,
                 "words_exercises": 4, "evidence_blocks": 1, "visible_code_lines": 75, "longest_cell": 30,
                 "longest_cell_index": 3, "code_cells": 6, "figures": 0}


def test_the_stats_command_prints_a_row_per_chapter(capsys):
    assert nbtools.main(["stats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| chapter | words: main | words: evidence")
    assert [line.split("|")[1].strip() for line in out[2:]] == [p.stem for p in CHAPTERS]
