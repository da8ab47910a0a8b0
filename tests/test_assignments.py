"""Course assignments: student copies fail at their first check, solutions run, no solution leaks."""

import json
import pathlib

import nbformat
import papermill as pm
import pytest

from conftest import load_tool

ROOT = pathlib.Path(__file__).resolve().parents[1]


assign = load_tool("assignments")
nbtools = load_tool("notebooks")
CHAPTERS = nbtools.toc_notebooks()


def test_strip_code_keeps_indentation_and_everything_else():
    src = "def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n\n\ndef g():\n    # BEGIN SOLUTION\n    return 2\n    # END SOLUTION\nprint('kept')"
    out = assign.strip_code(src)
    assert "y = x + 1" not in out and "return 2" not in out and "print('kept')" in out
    assert out.count("    raise NotImplementedError(") == 2
    ns = {}
    exec(out, ns)
    with pytest.raises(NotImplementedError):
        ns["f"](1)


@pytest.mark.parametrize("src", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_unbalanced_markers_are_rejected(src):
    with pytest.raises(assign.MarkerError, match="cell"):
        assign.strip_code(src)


def test_strip_prose_removes_solution_blocks_only():
    md = "Intro\n\n```{exercise}\n:label: e1\nDo it.\n```\n\n```{solution} e1\n:class: dropdown\nSecret $x$.\n```\n\nAfter"
    out = assign.strip_prose(md)
    assert "Secret" not in out and "{solution}" not in out
    assert "Do it." in out and "After" in out and "{exercise}" in out


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    assign.write(out, CHAPTERS)
    return out


def _solution_lines(nb):
    """Every substantive line of every code solution and prose solution of a notebook."""
    lines = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "code":
            inside = False
            for ln in src.splitlines():
                if ln.strip() == assign.BEGIN:
                    inside = True
                elif ln.strip() == assign.END:
                    inside = False
                elif inside and len(ln.strip()) > 8:
                    lines.append(ln.strip())
        else:
            fence = None
            for ln in src.splitlines():
                if fence is None and assign._FENCE.match(ln):
                    fence = assign._FENCE.match(ln).group(2)
                elif fence is not None and ln.strip() == fence:
                    fence = None
                elif fence is not None and len(ln.strip()) > 20 and not ln.startswith(":"):
                    lines.append(ln.strip())
    return lines


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_text_in_student_copy(copies, path):
    original = json.loads(path.read_text())
    student = (copies / "student" / path.name).read_text()
    secrets = _solution_lines(original)
    assert secrets, "every chapter has exercises with solutions"
    leaked = [s for s in secrets if s in student]
    assert not leaked, leaked
    assert "BEGIN SOLUTION" not in student and "{solution}" not in student
    nb = nbformat.reads(student, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


CODE_EXERCISE_CHAPTERS = [p for p in CHAPTERS if "# BEGIN SOLUTION" in p.read_text()]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", CODE_EXERCISE_CHAPTERS, ids=lambda p: p.stem)
def test_student_copy_fails_at_its_first_check(copies, path, tmp_path):
    student = copies / "student" / path.name
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(student), str(tmp_path / "out.ipynb"), parameters={"smoke": True},
                            kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    assert info.value.ename == "NotImplementedError"
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))]
    first_check = next(c for c in nb.cells if "check" in c.metadata.get("tags", []))
    assert failed and failed[0].source == first_check.source, "the failure is the first check cell"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", CODE_EXERCISE_CHAPTERS, ids=lambda p: p.stem)
def test_solution_copy_runs_green(copies, path, tmp_path):
    pm.execute_notebook(str(copies / "solutions" / path.name), str(tmp_path / "out.ipynb"), parameters={"smoke": True},
                        kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) >= 2 and all("check passed" in "".join(o.get("text", "") for o in c.outputs) for c in checks)
