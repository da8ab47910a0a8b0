"""Grading a folder of submissions with otter-grader: scores, reasons, time limits, an untouched folder."""

import csv
import hashlib
import json
import pathlib

import pytest

from conftest import load_tool

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "90_fixture.ipynb"
CHAPTER_1 = ROOT / "chapters" / "01_data_model.ipynb"

assign = load_tool("assignments")
grading = load_tool("grading")

SOLVED_90_2 = "def total(xs):\n    return float(np.sum(xs))"
# passes 90.1's public check and hidden test, fails the instructor's extra test below
ABS_90_1 = "def double(x):\n    return 2 * abs(x)"
EXTRA_90_1 = "assert double(-1.5) == -3.0\n"
# written to pass 90.2's public check only
HARDCODED_90_2 = "def total(xs):\n    return 6.5 if len(xs) == 3 else 0.0"


def _load(path):
    return json.loads(pathlib.Path(path).read_text())


def _with(nb, qid, source=None, *, drop=False):
    """A copy of a notebook with exercise ``qid``'s cell replaced (or dropped with its check)."""
    nb = json.loads(json.dumps(nb))
    cells = nb["cells"]
    at = next(i for i, c in enumerate(cells) if c["metadata"].get("exercise", {}).get("id") == qid)
    if drop:
        del cells[at : at + 2]
    else:
        cells[at]["source"] = source
    return nb


def _tree_digest(folder: pathlib.Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        h.update(f"{p.relative_to(folder)} {st.st_mode} {st.st_mtime_ns} {st.st_size}".encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _rows(csv_path):
    with open(csv_path, newline="") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def fixture_copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("fixture-assignments")
    assign.write(out, [FIXTURE], flat=lambda nb: nb)
    extra = out / "extra"
    extra.mkdir()
    (extra / "90.1.py").write_text(EXTRA_90_1)
    grading.write_bundle(out / "grading", [FIXTURE], grading.read_extra_tests(extra, [FIXTURE]))
    return out


@pytest.fixture(scope="module")
def graded(fixture_copies, tmp_path_factory):
    """Grade one folder of fixture submissions (two at a time) and keep what came out."""
    tmp = tmp_path_factory.mktemp("graded")
    subs = tmp / "submissions"
    (subs / "group-b").mkdir(parents=True)
    solution = _load(fixture_copies / "solutions" / FIXTURE.name)
    student = _load(fixture_copies / "student" / FIXTURE.name)
    made = {
        "solution.ipynb": solution,
        "student.ipynb": student,
        "group-b/only_90.2.ipynb": _with(student, "90.2", SOLVED_90_2),
        "crash_in_90.2.ipynb": _with(solution, "90.2", "raise RuntimeError('boom')"),
        "missing_90.1.ipynb": _with(solution, "90.1", drop=True),
        "tricks.ipynb": _with(_with(solution, "90.1", ABS_90_1), "90.2", HARDCODED_90_2),
        "kernel_dies.ipynb": _with(solution, "90.2", "import os\nos._exit(3)"),
    }
    for name, nb in made.items():
        (subs / name).write_text(json.dumps(nb))
    (subs / "corrupt.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = 1"')
    (subs / "not_a_notebook.ipynb").write_text("[1, 2, 3]")
    before = _tree_digest(subs)
    out_csv, feedback = tmp / "grades.csv", tmp / "feedback"
    result = grading.grade(subs, fixture_copies / "grading", out_csv, feedback, jobs=2, chapter=None)
    return {"result": result, "rows": _rows(out_csv), "csv": out_csv, "feedback": feedback,
            "before": before, "after": _tree_digest(subs)}


def _feedback(graded, name):
    return (graded["feedback"] / (name.replace("/", "_").removesuffix(".ipynb") + ".txt")).read_text()


EXPECTED = {  # submission -> (90.1, 90.2, 90.3, total)
    "solution.ipynb": (1, 2, 3, 6),
    "student.ipynb": (0, 0, 0, 0),
    "group-b/only_90.2.ipynb": (0, 2, 0, 2),
    "crash_in_90.2.ipynb": (1, 0, 3, 4),  # grading goes on after the crash
    "missing_90.1.ipynb": (0, 2, 3, 5),
    "tricks.ipynb": (0, 0, 3, 3),  # 90.1 fails the instructor's extra test, 90.2 its hidden test
    "kernel_dies.ipynb": (0, 0, 0, 0),
    "corrupt.ipynb": (0, 0, 0, 0),
    "not_a_notebook.ipynb": (0, 0, 0, 0),
}


@pytest.mark.notebooks
def test_grade_table_has_one_row_per_submission_and_a_column_per_question(graded):
    rows = graded["rows"]
    assert set(rows) == set(EXPECTED)
    header = next(csv.reader(open(graded["csv"])))
    assert header == ["submission", "chapter", "90.1 (1 pt)", "90.2 (2 pts)", "90.3 (3 pts)", "total", "possible", "seconds"]
    for name, (q1, q2, q3, total) in EXPECTED.items():
        r = rows[name]
        got = (float(r["90.1 (1 pt)"]), float(r["90.2 (2 pts)"]), float(r["90.3 (3 pts)"]), float(r["total"]))
        assert got == (q1, q2, q3, total), (name, got, _feedback(graded, name))
        assert r["possible"] == "6" and r["chapter"] == "90_fixture"


@pytest.mark.notebooks
def test_the_submissions_folder_is_not_modified(graded):
    assert graded["before"] == graded["after"]


@pytest.mark.notebooks
@pytest.mark.parametrize("name, phrases", [
    ("solution.ipynb", ["6 / 6 points", "every question passed"]),
    ("student.ipynb", ["90.1: 0/1", "public check failed: NotImplementedError"]),
    ("crash_in_90.2.ipynb", ["90.2: 0/2", "raised RuntimeError: boom"]),
    ("missing_90.1.ipynb", ["90.1: 0/1", "no cell carries this exercise's metadata"]),
    ("tricks.ipynb", ["90.1: 0/1: a hidden test failed (AssertionError)", "90.2: 0/2: a hidden test failed (AssertionError)"]),
    ("kernel_dies.ipynb", ["zero for every question", "DeadKernelError"]),
    ("corrupt.ipynb", ["zero for every question", "not JSON"]),
    ("not_a_notebook.ipynb", ["zero for every question", "not a valid notebook"]),
])
def test_feedback_gives_the_reason(graded, name, phrases):
    text = _feedback(graded, name)
    for phrase in phrases:
        assert phrase in text, text
    assert "assert double(-1.5)" not in text and "_hidden" not in text, "feedback never shows a hidden test"


@pytest.fixture(scope="module")
def graded_slow(fixture_copies, tmp_path_factory):
    """Submissions that run past a short time limit."""
    tmp = tmp_path_factory.mktemp("graded-slow")
    subs = tmp / "submissions"
    subs.mkdir()
    solution = _load(fixture_copies / "solutions" / FIXTURE.name)
    (subs / "loops_in_90.2.ipynb").write_text(json.dumps(_with(solution, "90.2", "while True:\n    pass")))
    swallow = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    (subs / "swallows_the_interrupt.ipynb").write_text(json.dumps(_with(solution, "90.2", swallow)))
    grading.grade(subs, fixture_copies / "grading", tmp / "grades.csv", tmp / "feedback", time_limit=30, jobs=2)
    return _rows(tmp / "grades.csv"), tmp / "feedback"


@pytest.mark.notebooks
def test_a_loop_is_interrupted_and_costs_what_it_affects(graded_slow):
    rows, feedback = graded_slow
    r = rows["loops_in_90.2.ipynb"]
    # 90.1 ran before the loop; 90.2 looped; 90.3's cells came after the deadline
    assert (r["90.1 (1 pt)"], r["90.2 (2 pts)"], r["90.3 (3 pts)"], r["total"]) == ("1", "0", "0", "1")
    assert float(r["seconds"]) < 30
    text = (feedback / "loops_in_90.2.txt").read_text()
    assert "90.2: 0/2: cell 7 raised GradingTimeLimit: interrupted" in text
    assert "90.3: 0/3: cell 10 raised GradingTimeLimit: not run" in text


@pytest.mark.notebooks
def test_a_submission_that_survives_the_interrupt_is_killed_at_the_limit(graded_slow):
    rows, feedback = graded_slow
    assert rows["swallows_the_interrupt.ipynb"]["total"] == "0"
    assert "killed at the time limit of 30 s" in (feedback / "swallows_the_interrupt.txt").read_text()


@pytest.mark.notebooks
def test_chapter_1_solution_gets_full_marks_and_student_copy_zero(tmp_path):
    copies = tmp_path / "copies"
    assign.write(copies, [CHAPTER_1], flat=lambda nb: nb)
    grading.write_bundle(copies / "grading", [CHAPTER_1])
    subs = tmp_path / "submissions"
    subs.mkdir()
    for kind in ("solutions", "student"):
        (subs / f"{kind}.ipynb").write_bytes((copies / kind / CHAPTER_1.name).read_bytes())
    graded = {g.submission: g for g in grading.grade(subs, copies / "grading", tmp_path / "grades.csv",
                                                      tmp_path / "feedback", jobs=2)}
    points = {q["id"]: q["points"] for q in _load(copies / "grading" / "01_data_model.json")["questions"]}
    assert graded["solutions.ipynb"].scores == {k: float(v) for k, v in points.items()}, graded["solutions.ipynb"].feedback
    assert graded["student.ipynb"].total == 0 and set(graded["student.ipynb"].scores) == set(points)


# ----------------------------------------------------------------------------- without running anything


def test_prepare_injects_smoke_a_guard_and_in_place_checks():
    nb = _load(FIXTURE)
    prepared, missing = grading.prepare(_with(nb, "90.3", drop=True), ["90.1", "90.2", "90.3"], deadline=123.0)
    cells = prepared["cells"]
    assert "grading-guard" in cells[0]["metadata"]["tags"] and "123.0" in cells[0]["source"]
    params = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    assert cells[params + 1]["source"] == "smoke = True"
    hosts = {c["metadata"]["otter"]["tests"][0]: c for c in cells if "otter" in c["metadata"]}
    assert set(hosts) == {"90.1", "90.2"} and all("check" in c["metadata"]["tags"] for c in hosts.values())
    assert missing == ["90.3"]
    assert nb == _load(FIXTURE), "prepare works on a copy"


def test_which_chapter_reads_metadata_then_file_name_then_exercise_ids():
    chapters = ["00_setup", "01_data_model"]
    assert grading.which_chapter({"metadata": {"prunebook": {"assignment": "00_setup"}}, "cells": []}, "x.ipynb", chapters) == "00_setup"
    assert grading.which_chapter(None, "alice-01_data_model.ipynb", chapters) == "01_data_model"
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {"exercise": {"id": "1.2"}}, "source": ""}]}
    assert grading.which_chapter(nb, "alice.ipynb", chapters) == "01_data_model"
    assert grading.which_chapter({"metadata": {}, "cells": []}, "alice.ipynb", chapters) is None


def test_bad_grading_arguments_fail_before_any_work(tmp_path, fixture_copies):
    subs = tmp_path / "subs"
    subs.mkdir()
    bundle = fixture_copies / "grading"
    out = (tmp_path / "g.csv", tmp_path / "fb")
    with pytest.raises(ValueError, match="SUBMISSIONS"):
        grading.grade(tmp_path / "missing", bundle, *out)
    with pytest.raises(ValueError, match="no .ipynb"):
        grading.grade(subs, bundle, *out)
    (subs / "a.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="make assignments"):
        grading.grade(subs, tmp_path, *out)
    with pytest.raises(ValueError, match="time_limit"):
        grading.grade(subs, bundle, *out, time_limit=0)
    with pytest.raises(ValueError, match="jobs"):
        grading.grade(subs, bundle, *out, jobs=0)
    with pytest.raises(ValueError, match="chapter"):
        grading.grade(subs, bundle, *out, chapter="07_nothing")
    assert not out[0].exists() and not out[1].exists()
