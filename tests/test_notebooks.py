"""Every chapter in _toc.yml: hygiene, and a papermill run in smoke mode."""

import subprocess
import sys

import nbformat
import papermill as pm
import pytest

from conftest import ROOT, load_tool

nbtools = load_tool("notebooks")

CHAPTERS = nbtools.toc_notebooks()


def test_toc_lists_chapters():
    names = [p.stem for p in CHAPTERS]
    assert names == ["00_setup", "01_data_model", "02_pruning_at_initialization", "03_gd_dynamics",
                     "04_phase_transition", "05_pruning_criteria", "06_real_data"]
    assert all(p.exists() for p in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
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
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
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
    if path.stem != "00_setup":
        assert len(images) >= 2, "chapters draw their figures in smoke mode too"


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
