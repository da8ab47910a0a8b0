"""Grading a folder of submissions: scores, reasons, time limits, the sandbox, and hostile submissions.

The attack fixtures (``tests/book/grading_attacks.py``) are graded in one batch with the controls: each
must score zero for what it attacks, leak nothing and leave nothing behind, while the controls
beside it keep their exact grades. Without a working sandbox (bubblewrap) these tests fail; they
never skip.
"""

import csv
import hashlib
import json
import os
import pathlib
import re
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest
import torch

import grading_attacks as atk
from conftest import load_tool

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "90_fixture.ipynb"
CHAPTER_1 = ROOT / "chapters" / "01_data_model.ipynb"

assign = load_tool("assignments")
grading = load_tool("grading")
runner = load_tool("grading_runner")

SOLVED_90_2 = "def total(xs):\n    return float(np.sum(xs))"
# passes 90.1's public check and hidden test, fails the instructor's extra test below
ABS_90_1 = "def double(x):\n    return 2 * abs(x)"
EXTRA_90_1 = "assert double(-1.5) == -3.0\n"
# written to pass 90.2's public check only
HARDCODED_90_2 = "def total(xs):\n    return 6.5 if len(xs) == 3 else 0.0"
# hidden-test text that must never reach a student (from the fixture's hidden checks and the extra test)
HIDDEN_TEXT = ["reference = 2 * values", "np.array_equal", "values.sum()", "assert double(-1.5)", "_hidden",
               "hidden_check", "(size - 1) / 2"]
TOKEN = f"grading-attack-daemon-{uuid.uuid4().hex}"


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
    """Names, modes, times and bytes of everything under ``folder``."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(folder)} {st.st_mode} {st.st_mtime_ns} {st.st_size}".encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()


def _repo_state() -> tuple[str, str]:
    """git status (untracked files included) and a hash of every tracked file's bytes."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    h = hashlib.sha256()
    for name in subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0"):
        p = ROOT / name
        if name and p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return status, h.hexdigest()


def _processes_with(text: str) -> list[int]:
    """Processes whose command line contains ``text``."""
    found = []
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


class _Watch:
    """Notes, while its block runs, every process whose command line contains ``text``."""

    def __init__(self, text: str):
        self.text, self.seen, self.stop = text, set(), threading.Event()

    def __enter__(self):
        def watch():
            while not self.stop.wait(0.1):
                self.seen.update(_processes_with(self.text))

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()
        return self.seen

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


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
    """Grade one folder (two at a time): controls, ordinary mistakes and every attack, in one batch."""
    tmp = tmp_path_factory.mktemp("graded")
    subs = tmp / "submissions"
    (subs / "group-b").mkdir(parents=True)
    out_csv, feedback = tmp / "grades.csv", tmp / "feedback"
    solution = _load(fixture_copies / "solutions" / FIXTURE.name)
    student = _load(fixture_copies / "student" / FIXTURE.name)
    made = {
        "solution.ipynb": solution,
        "student.ipynb": student,
        "group-b/only_90.2.ipynb": _with(student, "90.2", SOLVED_90_2),
        "crash_in_90.2.ipynb": _with(solution, "90.2", "raise RuntimeError('boom " + atk.MARK + "')"),
        "missing_90.1.ipynb": _with(solution, "90.1", drop=True),
        "tricks.ipynb": _with(_with(solution, "90.1", ABS_90_1), "90.2", HARDCODED_90_2),
        "kernel_dies.ipynb": _with(solution, "90.2", "import os\nos._exit(3)"),
        "z_victim.ipynb": solution,  # the write attack rewrites it, if it can
        **atk.attacks(student, solution, root=ROOT, bundle=fixture_copies / "grading",
                      solutions=fixture_copies / "solutions", submissions=subs, grades_csv=out_csv, token=TOKEN),
    }
    for name, nb in made.items():
        (subs / name).write_text(nb if isinstance(nb, str) else json.dumps(nb))
    (subs / "corrupt.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = 1"')
    (subs / "not_a_notebook.ipynb").write_text("[1, 2, 3]")
    before = {"subs": _tree_digest(subs), "bundle": _tree_digest(fixture_copies / "grading"), "repo": _repo_state()}
    start = time.time()
    with _Watch(TOKEN) as seen:  # the background process does start, inside its sandbox
        result = grading.grade(subs, fixture_copies / "grading", out_csv, feedback, jobs=2, chapter=None)
    seconds = time.time() - start
    csv_bytes = out_csv.read_bytes()
    time.sleep(3)  # a process that outlived its sandbox would act now
    return {"result": result, "rows": _rows(out_csv), "csv": out_csv, "feedback": feedback, "seconds": seconds,
            "before": before, "csv_bytes": csv_bytes, "subs": subs, "daemon_seen": bool(seen),
            "after": {"subs": _tree_digest(subs), "bundle": _tree_digest(fixture_copies / "grading"), "repo": _repo_state(),
                      "csv": out_csv.read_bytes(), "survivors": _processes_with(TOKEN)}}


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
    "z_victim.ipynb": (1, 2, 3, 6),  # untouched by the attack that tries to rewrite it
    **{name: (0, 0, 0, 0) for name in atk.ATTACKS + atk.MALFORMED},
}


@pytest.mark.notebooks
def test_grade_table_has_one_row_per_submission_and_a_column_per_question(graded):
    rows = graded["rows"]
    assert set(rows) == set(EXPECTED), "one row per submission: none added, none lost"
    header = next(csv.reader(open(graded["csv"])))
    assert header == ["submission", "chapter", "90.1 (1 pt)", "90.2 (2 pts)", "90.3 (3 pts)", "total", "possible", "seconds"]
    for name, (q1, q2, q3, total) in EXPECTED.items():
        r = rows[name]
        got = (float(r["90.1 (1 pt)"]), float(r["90.2 (2 pts)"]), float(r["90.3 (3 pts)"]), float(r["total"]))
        assert got == (q1, q2, q3, total), (name, got, _feedback(graded, name))
        assert r["possible"] == "6" and r["chapter"] == "90_fixture"


@pytest.mark.notebooks
@pytest.mark.parametrize("name, phrases", [
    ("solution.ipynb", ["6 / 6 points", "every question passed"]),
    ("student.ipynb", ["90.1: 0/1", "public check failed: NotImplementedError"]),
    ("crash_in_90.2.ipynb", ["90.2: 0/2", "raised RuntimeError"]),
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


# ----------------------------------------------------------------------------- the attacks


@pytest.mark.notebooks
def test_monkeypatching_the_grader_scores_zero_and_hostile_answers_run_nothing(graded):
    assert graded["rows"]["a_monkeypatch.ipynb"]["total"] == "0", _feedback(graded, "a_monkeypatch.ipynb")
    assert not list(pathlib.Path("/tmp").glob(f"{atk.MARK}*")), "decoding a submission's answers ran nothing"


@pytest.mark.notebooks
def test_looking_for_the_solutions_finds_nothing(graded):
    # with the repository, the bundle or a solution copy in reach this notebook scores 6/6
    assert graded["rows"]["a_find_solutions.ipynb"]["total"] == "0", _feedback(graded, "a_find_solutions.ipynb")


@pytest.mark.notebooks
def test_nothing_leaks_into_the_feedback_or_the_grade_table(graded):
    texts = {p.name: p.read_text() for p in graded["feedback"].iterdir()}
    texts["grades.csv"] = graded["csv"].read_text()
    for where, text in texts.items():
        assert atk.MARK not in text and atk.MARK.replace("-", "_") not in text, (where, text)
        for secret in HIDDEN_TEXT:
            assert secret not in text, (where, secret, text)
    leak = _feedback(graded, "a_leak.ipynb")
    assert "raised RuntimeError" in leak and "boom" not in _feedback(graded, "crash_in_90.2.ipynb"), \
        "a cell's error shows as its built-in exception class only, never its message"


@pytest.mark.notebooks
def test_no_process_outlives_its_sandbox(graded):
    assert graded["daemon_seen"], "the attack's background process ran (in its sandbox) while grading"
    assert graded["after"]["survivors"] == [], "a process started by a submission is still running"
    assert graded["after"]["csv"] == graded["csv_bytes"], "grades.csv changed after grading"
    assert graded["rows"]["a_daemon.ipynb"]["total"] == "0"


@pytest.mark.notebooks
def test_the_submissions_folder_the_bundle_and_the_repository_are_untouched(graded):
    before, after = graded["before"], graded["after"]
    assert before["subs"] == after["subs"], "the submissions folder changed"
    assert not (graded["subs"] / "added_by_attack.ipynb").exists()
    assert before["bundle"] == after["bundle"], "the grading bundle changed"
    assert before["repo"] == after["repo"], "the repository changed"
    for p in (ROOT / "attack-was-here.txt", ROOT / "_build" / "attack-was-here.txt",
              ROOT / "src" / "prunebook" / "attack_was_here.py"):
        assert not p.exists(), p


@pytest.mark.notebooks
@pytest.mark.parametrize("name", atk.MALFORMED)
def test_a_malformed_notebook_scores_zero_with_the_reason(graded, name):
    text = _feedback(graded, name)
    assert "zero for every question: not a valid notebook" in text, text


# ----------------------------------------------------------------------------- time limits


@pytest.fixture(scope="module")
def graded_slow(fixture_copies, tmp_path_factory):
    """Submissions that run past a short time limit (one of them leaves a process in a new session)."""
    tmp = tmp_path_factory.mktemp("graded-slow")
    subs = tmp / "submissions"
    subs.mkdir()
    solution = _load(fixture_copies / "solutions" / FIXTURE.name)
    (subs / "loops_in_90.2.ipynb").write_text(json.dumps(_with(solution, "90.2", "while True:\n    pass")))
    daemon = ("import subprocess, sys\n"
              f"subprocess.Popen([sys.executable, '-c', 'import os, time\\nif os.fork(): os._exit(0)\\nos.setsid()\\n"
              f"time.sleep(600)', {TOKEN + '-slow'!r}], start_new_session=True)\n")
    swallow = daemon + "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    (subs / "swallows_the_interrupt.ipynb").write_text(json.dumps(_with(solution, "90.2", swallow)))
    with _Watch(TOKEN + "-slow") as seen:
        grading.grade(subs, fixture_copies / "grading", tmp / "grades.csv", tmp / "feedback", time_limit=30, jobs=2)
    time.sleep(1)
    assert seen, "the background process ran while grading"
    return _rows(tmp / "grades.csv"), tmp / "feedback", _processes_with(TOKEN + "-slow")


@pytest.mark.notebooks
def test_a_loop_is_interrupted_and_costs_what_it_affects(graded_slow):
    rows, feedback, _ = graded_slow
    r = rows["loops_in_90.2.ipynb"]
    # 90.1 ran before the loop; 90.2 looped; 90.3's cells came after the deadline
    assert (r["90.1 (1 pt)"], r["90.2 (2 pts)"], r["90.3 (3 pts)"], r["total"]) == ("1", "0", "0", "1")
    assert float(r["seconds"]) < 30
    text = (feedback / "loops_in_90.2.txt").read_text()
    assert "90.2: 0/2: cell 7 raised GradingTimeLimit: interrupted" in text
    assert "90.3: 0/3: cell 10 raised GradingTimeLimit: not run" in text


@pytest.mark.notebooks
def test_a_submission_that_survives_the_interrupt_is_killed_at_the_limit_with_its_processes(graded_slow):
    rows, feedback, survivors = graded_slow
    assert rows["swallows_the_interrupt.ipynb"]["total"] == "0"
    assert "killed at the time limit of 30 s" in (feedback / "swallows_the_interrupt.txt").read_text()
    assert survivors == [], "the process it started in a new session was killed with its sandbox"


# ----------------------------------------------------------------------------- a real chapter, no sandbox


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


def test_without_a_sandbox_grading_refuses_and_says_what_unsafe_exposes(tmp_path, fixture_copies):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.ipynb").write_bytes((fixture_copies / "solutions" / FIXTURE.name).read_bytes())
    out = (tmp_path / "g.csv", tmp_path / "fb")
    with pytest.raises(grading.SandboxUnavailable) as info:
        grading.grade(subs, fixture_copies / "grading", *out, bwrap=str(tmp_path / "no-bwrap"))
    message = str(info.value)
    for phrase in ("bubblewrap", "UNSAFE=1", "Docker", "macOS", "read your files", "solutions", "network"):
        assert phrase in message, message
    assert not out[0].exists() and not out[1].exists()


@pytest.mark.notebooks
def test_unsafe_grading_still_decides_verdicts_outside_the_submission(tmp_path, fixture_copies):
    subs = tmp_path / "subs"
    subs.mkdir()
    solution = _load(fixture_copies / "solutions" / FIXTURE.name)
    (subs / "solution.ipynb").write_text(json.dumps(solution))
    monkeypatch = atk.attacks(_load(fixture_copies / "student" / FIXTURE.name), solution, root=tmp_path,
                              bundle=tmp_path / "nothing", solutions=tmp_path / "nothing", submissions=tmp_path / "nothing",
                              grades_csv=tmp_path / "nothing.csv", token=TOKEN + "-unsafe")["a_monkeypatch.ipynb"]
    (subs / "monkeypatch.ipynb").write_text(json.dumps(monkeypatch))
    graded = {g.submission: g.total for g in grading.grade(subs, fixture_copies / "grading", tmp_path / "g.csv",
                                                            tmp_path / "fb", jobs=2, unsafe=True)}
    assert graded == {"solution.ipynb": 6, "monkeypatch.ipynb": 0}


# ----------------------------------------------------------------------------- without running anything


def test_prepare_injects_smoke_and_probes_after_each_check():
    nb = _load(FIXTURE)
    cells, missing = grading.prepare(_with(nb, "90.3", drop=True), ["90.1", "90.2", "90.3"])
    params = next(i for i, c in enumerate(cells) if "parameters" in c["tags"])
    assert cells[params + 1]["source"] == "smoke = True" and cells[params + 1]["index"] is None
    hosts = {q: c for c in cells for q in c["probe"]}
    assert all("check" in hosts[q]["tags"] for q in ("90.1", "90.2"))
    assert missing == ["90.3"] and hosts["90.3"] is cells[-1], "a missing exercise's probes run at the end"
    assert [c["index"] for c in cells if c["index"] is not None] == list(range(len(nb["cells"]) - 2))
    assert nb == _load(FIXTURE), "prepare works on a copy"


def test_which_chapter_reads_metadata_then_file_name_then_exercise_ids():
    chapters = ["00_setup", "01_data_model"]
    assert grading.which_chapter({"metadata": {"prunebook": {"assignment": "00_setup"}}, "cells": []}, "x.ipynb", chapters) == "00_setup"
    assert grading.which_chapter(None, "alice-01_data_model.ipynb", chapters) == "01_data_model"
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {"exercise": {"id": "1.2"}}, "source": ""}]}
    assert grading.which_chapter(nb, "alice.ipynb", chapters) == "01_data_model"
    assert grading.which_chapter({"metadata": {}, "cells": []}, "alice.ipynb", chapters) is None
    assert grading.which_chapter({"metadata": "a string", "cells": 3}, "alice.ipynb", chapters) is None


@pytest.mark.parametrize("name", atk.MALFORMED)
def test_notebook_problem_names_every_malformed_shape(name):
    nb = _load(FIXTURE)
    made = atk.attacks(nb, nb, root=ROOT, bundle=ROOT, solutions=ROOT, submissions=ROOT, grades_csv=ROOT, token="x")[name]
    raw = made.encode() if isinstance(made, str) else json.dumps(made).encode()
    parsed, problem = grading.parse_submission(raw)
    assert parsed is None and problem.startswith("not a valid notebook"), problem
    assert grading.notebook_problem(nb) is None


def test_plain_data_round_trips_and_keeps_types():
    import prunebook as pb

    ds = pb.sample_data(3, pb.signal_vector(5, 2.0, dtype=torch.float64), seed=0)
    value = {"t32": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bool": torch.tensor([True, False]),
             "bf16": torch.ones(2, dtype=torch.bfloat16), "grad": torch.zeros(2, requires_grad=True),
             "np": np.arange(4, dtype=np.int16), "scalar": np.float64(0.5), "i": 3, "f": 1.0, "nan": float("nan"),
             ("tuple", 1): [1, (2, 3), {4, 5}, frozenset({6}), None, "s", range(3), 1 + 2j],
             "size": torch.Size([2, 3]), "dtype": torch.float64, "npdtype": np.dtype("int32"), "ds": ds}
    arrays: dict = {}
    tree = runner.encode(value, arrays)
    back = runner.decode(json.loads(json.dumps(tree)), arrays)
    assert back["t32"].dtype == torch.float32 and torch.equal(back["t32"], value["t32"])
    assert back["bool"].dtype == torch.bool and back["bf16"].dtype == torch.bfloat16 and back["grad"].requires_grad
    assert back["np"].dtype == np.int16 and type(back["scalar"]) is np.float64 and type(back["i"]) is int
    assert np.isnan(back["nan"]) and back[("tuple", 1)] == [1, (2, 3), {4, 5}, frozenset({6}), None, "s", range(3), 1 + 2j]
    assert isinstance(back["size"], torch.Size) and back["dtype"] is torch.float64 and back["npdtype"] == np.int32
    assert type(back["ds"]) is type(ds) and torch.equal(back["ds"].X, ds.X)


@pytest.mark.parametrize("value", [object(), np.array([object()]), lambda: 1, torch.zeros(2).to_sparse()])
def test_plain_data_refuses_what_it_cannot_carry(value):
    with pytest.raises(runner.Unreadable):
        runner.encode(value, {})


@pytest.mark.parametrize("tree", [
    {"$namedtuple": "os:system", "fields": ["cmd"], "items": ["touch /tmp/should-not-exist"]},
    {"$namedtuple": "subprocess:Popen", "fields": ["args"], "items": [{"$list": ["true"]}]},
    {"$namedtuple": "prunebook.data:Dataset", "fields": ["a"], "items": [1]},
])
def test_reading_plain_data_never_builds_anything_but_plain_values(tree):
    value = runner.decode(tree, {})
    assert type(value).__name__ == "Record" and isinstance(value, tuple), "a plain named tuple, nothing run"


@pytest.mark.parametrize("tree", [{"$ndarray": "missing"}, {"$eval": "1"}, {"$dict": [[{"$list": []}, 1]]}, [1, 2],
                                  {"$tensor": "a0", "dtype": "Tensor"}, {"$ref": 0}])
def test_reading_plain_data_refuses_malformed_trees(tree):
    with pytest.raises(runner.Unreadable):
        runner.decode(tree, {"a0": np.zeros(2)})


def test_pickled_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "x.npz", a0=np.array([object()], dtype=object))
    (tmp_path / "x.json").write_text('{"$ndarray": "a0"}')
    with pytest.raises(runner.Unreadable):
        runner.load(str(tmp_path / "x"))
    (tmp_path / "y.json").symlink_to("/etc/hostname")
    with pytest.raises(runner.Unreadable):
        runner.load(str(tmp_path / "y"))


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


def test_make_grade_installs_the_sandbox_and_passes_unsafe_only_when_asked():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "assignments", "grade"):
        assert re.search(rf"^{target}:.*\bsandbox\b", makefile, re.M), f"make {target} installs bubblewrap first"
    sandbox_rule = makefile[makefile.index("\nsandbox:"):]
    sandbox_rule = sandbox_rule[: sandbox_rule.index("\n\n")]
    assert "command -v bwrap" in sandbox_rule and "apt-get install -y -qq bubblewrap" in sandbox_rule
    assert "$(SUDO)" in sandbox_rule
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}

    def grade_line(*extra):
        out = subprocess.run(["make", "--no-print-directory", "-n", "grade", "SUBMISSIONS=subs", *extra], cwd=ROOT,
                             env=env, capture_output=True, text=True).stdout
        return next(ln for ln in out.splitlines() if "tools/grading.py" in ln)

    assert "--unsafe" not in grade_line() and "--unsafe" not in grade_line("UNSAFE=0")
    assert grade_line("UNSAFE=1").rstrip().endswith("--unsafe")


def test_plain_data_carries_pandas_tables_and_stores_a_repeated_array_once():
    import pandas as pd

    df = pd.DataFrame({"p": [0.5, 0.9, 0.9], "seed": np.array([1, 2, 3], dtype=np.int32), "ok": [True, False, True],
                       "name": ["a", None, "c"], "kind": pd.Categorical(["x", "y", "x"]),
                       "count": pd.array([1, None, 3], dtype="Int64"), "mixed": ["a", 1, 2.5]},
                      index=pd.Index([10, 20, 30], name="row"))
    s = pd.Series({0.5: 1.0, 0.9: float("nan")}, name="boundary")
    arrays: dict = {}
    tree = runner.encode([df, df, s, pd.RangeIndex(3)], arrays)
    assert len([k for k in arrays if k != "__seen__"]) == 6, "the table passed twice is stored once (4 arrays, +2 for s)"
    back = runner.decode(json.loads(json.dumps(tree)), arrays)
    pd.testing.assert_frame_equal(back[0], df)
    pd.testing.assert_frame_equal(back[1], df)
    pd.testing.assert_series_equal(back[2], s)
    assert back[3].equals(pd.RangeIndex(3))
    with pytest.raises(runner.Unreadable):
        runner.encode(pd.DataFrame({"x": [object()]}), {})
    with pytest.raises(runner.Unreadable):
        runner.decode({"$series": {"$values": [[1]], "dtype": "object"}, "index": {"$range_index": [0, 1, 1], "name": None},
                       "name": None}, {})
