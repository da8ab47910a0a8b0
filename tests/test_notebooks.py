"""Every chapter in _toc.yml: hygiene, and a papermill run in smoke mode."""


import nbformat
import papermill as pm
import pytest

from conftest import load_tool

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
