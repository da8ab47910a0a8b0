"""The grading bundle of each chapter, and grading a folder of submissions, each in a sandbox.

    python tools/grading.py --submissions DIR [--bundle _build/assignments/grading]
                            [--out _build/grades.csv] [--feedback _build/feedback]
                            [--time-limit 300] [--jobs 1] [--chapter 01_data_model] [--unsafe]

**The bundle.** ``write_bundle`` (``make assignments``) writes, for each chapter with code
exercises, into the bundle folder (private to the instructor: it holds the solutions and the
hidden tests):

- ``<chapter>.json``: the question list (one question per code exercise: its id and points);
- ``<chapter>.reference.ipynb``: the chapter with its solutions, public checks, hidden tests and
  the instructor's extra tests (``--extra-tests DIR``: ``<question id>.py`` files of plain Python
  asserts, inserted after the question's hidden tests, tagged ``extra-check``); grading runs it,
  outside any sandbox, as the reference;
- ``<chapter>.zip``: an otter-grader autograder of the same questions (``otter assign``), for
  instructors who grade with otter-grader's own tools (its Docker mode) instead of ``make grade``.

**Grading** (``grade``). Everything is read first: every ``*.ipynb`` under the submissions folder
into memory (the folder is never written to, and what a submission does cannot reach it), the
bundle's files of the chapters to grade into a private copy whose hash each worker checks. Then:

1. the non-editable copy of the package and the sandbox are set up and tested
   (``tools/sandbox.py``); if no sandbox can start, grading stops with the reason, unless
   ``unsafe=True`` (``UNSAFE=1``), which says what it exposes;
2. per chapter, the referee (``tools/grading_referee.py``, in a sandbox of its own where no student
   code ever runs) runs the reference notebook and records the *probes*: each call the question's
   tests make to the exercise's functions (its arguments as plain data) and each exercise variable
   they read;
3. each submission (``jobs`` at a time) runs in its own sandbox (``tools/grading_runner.py``):
   its code cells in order, ``smoke = True`` after its parameters cell, and, right after each
   question's check cell, the question's probes evaluated with the student's own functions; the
   answers come back as plain data (JSON and npz, never pickle). Each submission has
   ``time_limit`` seconds (T): a cell still running at T - max(0.2 T, 10 s) is interrupted and the
   cells after it do not run (the questions they hold score zero, the ones before keep their
   points); a submission still running at T is killed, its whole sandbox with it, and scores zero;
4. the referee runs each question's test cells again, in its own process, with the exercise's
   functions replaced by the student's answers (``tools/grading_referee.py``): the assertions, the
   reference values and the verdict never enter the sandbox, so nothing a submission does can
   change a verdict but its answers. A question scores its points when all its tests (public
   check, hidden tests, extra tests) pass, else zero.

A file that is not valid JSON, not a notebook of the current format, or malformed in any way
(metadata that is not an object, cells that are not a list of cells, a source that is not text...)
scores zero with the reason, and grading goes on. ``grades.csv`` has one row per submission, one
column per question, the total, the possible total and the seconds taken; the feedback file of a
submission gives, for each question it lost, a reason in the grader's own words: a question id,
which kind of test failed, and the name of a built-in exception class, never a test's text and
never a string from the submission.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import io
import json
import os
import pathlib
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import assignments as asg  # noqa: E402
import grading_runner as runner  # noqa: E402
from sandbox import UNSAFE_EXPOSES, Sandbox, SandboxUnavailable  # noqa: E402

__all__ = ["GradingError", "SandboxUnavailable", "grade", "write_bundle", "read_bundle", "read_extra_tests",
           "master_notebook", "reference_notebook", "prepare", "notebook_problem", "which_chapter"]

EXTRA = "extra-check"
MAX_SUBMISSION_BYTES = 256 * 2**20
MAX_RESTARTS = 3  # of a chapter's referee, killed by a submission's answers, before grading stops


class GradingError(RuntimeError):
    """Grading cannot go on (the reference fails its own tests, the bundle changed, the referee keeps dying)."""


class RefereeStopped(GradingError):
    """The referee died or stopped answering while it judged one submission's answers."""


def deadline_after(time_limit: float) -> float:
    """Seconds after which the runner stops the notebook's cells."""
    return time_limit - max(0.2 * time_limit, 10.0)


ASSIGNMENT_CONFIG = """\
# ASSIGNMENT CONFIG
init_cell: false
check_all_cell: false
export_cell: false
run_tests: false
solutions_pdf: false
generate: true
tests:
  files: true
  ok_format: false
"""


# ----------------------------------------------------------------------------- the bundle

def _raw(source: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": source}


def _code(source: str, metadata: dict | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": metadata or {}, "outputs": [], "source": source}


def _test_cell(name: str, source: str, hidden: bool) -> dict:
    """An otter exception-based test case that runs a check cell's code in the notebook's namespace."""
    return _code(
        f'""" # BEGIN TEST CONFIG\nhidden: {str(hidden).lower()}\n""" # END TEST CONFIG\n'
        f"def {name}(env):\n    exec(compile({source!r}, {name!r}, 'exec'), dict(env))\n"
    )


def read_extra_tests(folder: pathlib.Path | None, chapters: list[pathlib.Path]) -> dict[str, list[str]]:
    """The instructor's extra hidden tests: ``<folder>/<question id>.py`` (e.g. ``1.2.py``) -> sources."""
    if folder is None:
        return {}
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(f"extra tests: {folder} is not a folder")
    known = {e.id for p in chapters for e in asg.code_exercises(json.loads(p.read_text()), p.stem)}
    extra: dict[str, list[str]] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        qid = f.name[: -len(".py")] if f.name.endswith(".py") else None
        if qid not in known:
            raise ValueError(f"extra tests: {f.name}: expected '<question id>.py' with an id among {sorted(known)}")
        source = f.read_text()
        try:
            compile(source, str(f), "exec")
        except SyntaxError as e:
            raise ValueError(f"extra tests: {f.name}: {e}") from None
        extra.setdefault(qid, []).append(source)
    return extra


def master_notebook(nb: dict, stem: str, extra: dict[str, list[str]] | None = None) -> dict:
    """The chapter in otter-assign's format: one question per code exercise, its checks as tests."""
    extra = extra or {}
    exercises = asg.code_exercises(nb, stem)
    by_cell = {e.cell: e for e in exercises}
    skip = {e.check for e in exercises} | {h for e in exercises for h in e.hidden}
    cells = [_raw(ASSIGNMENT_CONFIG)]
    for i, c in enumerate(nb["cells"]):
        if i in skip:
            continue
        if i not in by_cell:
            cells.append(_code(asg._source(c), c.get("metadata")) if c["cell_type"] == "code" else
                         {"cell_type": c["cell_type"], "metadata": c.get("metadata", {}), "source": asg._source(c)})
            continue
        e = by_cell[i]
        tests = [_test_cell("public_check", asg._source(nb["cells"][e.check]), hidden=False)]
        tests += [_test_cell(f"hidden_check_{k}", asg._source(nb["cells"][h]), True) for k, h in enumerate(e.hidden, 1)]
        tests += [_test_cell(f"extra_check_{k}", s, True) for k, s in enumerate(extra.get(e.id, []), 1)]
        cells += [_raw(f"# BEGIN QUESTION\nname: \"{e.id}\"\npoints: {e.points}\nall_or_nothing: true"),
                  _code(asg._source(c)), _raw("# BEGIN TESTS"), *tests, _raw("# END TESTS"), _raw("# END QUESTION")]
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 4}


def reference_notebook(nb: dict, stem: str, extra: dict[str, list[str]] | None = None) -> dict:
    """The chapter as the grader's reference: solutions, checks, hidden tests, then the extra tests."""
    extra = extra or {}
    nb = asg._cleared(nb)
    asg._label_exercises(nb, stem)
    exercises = asg.code_exercises(nb, stem)
    after = {(e.hidden[-1] if e.hidden else e.check): e.id for e in exercises}
    cells = []
    for i, c in enumerate(nb["cells"]):
        cells.append(c)
        if i in after:
            cells += [_code(s, {"tags": [asg.HIDDEN, "remove-cell", EXTRA]}) for s in extra.get(after[i], [])]
    nb["cells"] = cells
    return nb


def write_bundle(out: pathlib.Path, chapters: list[pathlib.Path], extra: dict[str, list[str]] | None = None) -> list[pathlib.Path]:
    """Per chapter with code exercises: the question list, the reference notebook and otter's autograder zip."""
    from importlib.metadata import version

    from otter.assign import main as otter_assign

    extra = extra or {}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters:
        nb = json.loads(path.read_text())
        exercises = asg.code_exercises(nb, path.stem)
        if not exercises:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            master, dist = pathlib.Path(tmp) / f"{path.stem}.ipynb", pathlib.Path(tmp) / "dist"
            master.write_text(json.dumps(master_notebook(nb, path.stem, extra), indent=1))
            log = io.StringIO()
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    otter_assign(str(master), str(dist), no_run_tests=True, no_pdfs=True)
            except Exception as e:
                raise RuntimeError(f"otter assign failed on {path.name}: {e}\n{log.getvalue()}") from e
            zips = sorted((dist / "autograder").glob("*.zip"))
            if len(zips) != 1:
                raise RuntimeError(f"otter assign wrote no autograder zip for {path.name}:\n{log.getvalue()}")
            target = out / f"{path.stem}.zip"
            target.write_bytes(zips[0].read_bytes())
        reference = out / f"{path.stem}.reference.ipynb"
        reference.write_text(json.dumps(reference_notebook(nb, path.stem, extra), indent=1, ensure_ascii=False) + "\n")
        manifest = {
            "chapter": path.stem,
            "reference": reference.name,
            "otter_grader": version("otter-grader"),
            "questions": [{"id": e.id, "points": e.points, "level": e.level, "hidden_tests": len(e.hidden),
                           "extra_tests": len(extra.get(e.id, []))} for e in exercises],
        }
        (out / f"{path.stem}.json").write_text(json.dumps(manifest, indent=1) + "\n")
        written += [target, reference, out / f"{path.stem}.json"]
    return written


def read_bundle(bundle: pathlib.Path) -> dict[str, dict]:
    """The question lists of the bundle's chapters (each with its reference notebook)."""
    manifests = {}
    for f in sorted(pathlib.Path(bundle).glob("*.json")):
        m = json.loads(f.read_text())
        if not isinstance(m, dict) or "chapter" not in m:
            continue
        if not (f.parent / f"{m['chapter']}.reference.ipynb").exists():
            if f.with_suffix(".zip").exists():
                raise ValueError(f"bundle: {f.parent} was made by an older version (no {m['chapter']}.reference.ipynb): "
                                 f"run `make assignments` again")
            continue
        manifests[m["chapter"]] = m
    return manifests


# ----------------------------------------------------------------------------- one submission


def notebook_problem(nb) -> str | None:
    """Why ``nb`` is not a notebook the grader can run (any shape), or None."""
    if not isinstance(nb, dict):
        return f"the file holds a JSON {type(nb).__name__}, not a notebook"
    if "worksheets" in nb or nb.get("nbformat") in (1, 2, 3):
        return "nbformat 3 or older (open it in a current Jupyter and save it again)"
    if not isinstance(nb.get("cells"), list):
        return "no list of cells"
    if not isinstance(nb.get("metadata", {}), dict):
        return "its metadata is not an object"
    meta = nb.get("metadata", {})
    if not isinstance(meta.get("prunebook", {}), dict):
        return "its prunebook metadata is not an object"
    for i, c in enumerate(nb["cells"]):
        if not isinstance(c, dict):
            return f"cell {i} is not an object"
        if c.get("cell_type") not in ("code", "markdown", "raw"):
            return f"cell {i} has no known cell_type"
        src = c.get("source", "")
        if not (isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            return f"cell {i}: its source is not text"
        cm = c.get("metadata", {})
        if not isinstance(cm, dict):
            return f"cell {i}: its metadata is not an object"
        tags = cm.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            return f"cell {i}: its tags are not a list of text"
        ex = cm.get("exercise")
        if ex is not None and not (isinstance(ex, dict) and isinstance(ex.get("id", ""), str)):
            return f"cell {i}: its exercise metadata is malformed"
    return None


def parse_submission(raw: bytes) -> tuple[dict | None, str | None]:
    """(notebook, None) or (None, why it cannot be graded)."""
    if len(raw) > MAX_SUBMISSION_BYTES:
        return None, f"not a valid notebook: larger than {MAX_SUBMISSION_BYTES // 2**20} MiB"
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        return None, f"not a valid notebook: not JSON ({type(e).__name__})"
    problem = notebook_problem(nb)
    return (nb, None) if problem is None else (None, f"not a valid notebook: {problem}")


def which_chapter(nb: dict | None, name: str, chapters: list[str]) -> str | None:
    """The submission's chapter: its metadata, else a chapter name in its file name, else its exercise ids."""
    if isinstance(nb, dict) and notebook_problem(nb) is None:
        meta = nb.get("metadata", {}).get("prunebook", {})
        if meta.get("assignment") in chapters:
            return meta["assignment"]
    for stem in chapters:
        if stem in name:
            return stem
    if isinstance(nb, dict) and notebook_problem(nb) is None:
        numbers = {str((c.get("metadata", {}).get("exercise") or {}).get("id", "")).split(".")[0] for c in nb["cells"]}
        hits = [s for s in chapters if str(asg.chapter_number(s)) in numbers]
        if len(hits) == 1:
            return hits[0]
    return None


def prepare(nb: dict, question_ids: list[str]) -> tuple[list[dict], list[str]]:
    """The cells the runner executes, and the ids of the questions whose exercise cell was not found.

    Each cell: ``kind`` (code or other), ``source``, ``index`` (the submission's own cell number,
    None for the injected ``smoke = True`` after the parameters cell), ``exercise``/``check``
    (the question it belongs to) and ``probe`` (the questions whose probes run right after it:
    after its check cell, else after its exercise cell; at the very end for a missing exercise).
    """
    cells = []
    for i, c in enumerate(nb["cells"]):
        meta = c.get("metadata") or {}
        code = c["cell_type"] == "code"
        cells.append({"kind": "code" if code else "other", "source": asg._source(c) if code else "", "index": i,
                      "exercise": (meta.get("exercise") or {}).get("id") if code else None, "check": None,
                      "tags": list(meta.get("tags", [])), "probe": []})
    params = next((k for k, c in enumerate(cells) if c["kind"] == "code" and "parameters" in c["tags"]), None)
    cells.insert(params + 1 if params is not None else 0,
                 {"kind": "code", "source": "smoke = True", "index": None, "exercise": None, "check": None,
                  "tags": ["injected-parameters"], "probe": []})
    missing = []
    for qid in question_ids:
        at = next((k for k, c in enumerate(cells) if c["exercise"] == qid), None)
        if at is None:
            missing.append(qid)
            continue
        nxt = next((k for k in range(at + 1, len(cells)) if cells[k]["kind"] == "code"), None)
        host = nxt if nxt is not None and asg.CHECK in cells[nxt]["tags"] else at
        cells[host]["probe"].append(qid)
        cells[host]["check"] = qid if host != at else None
    if missing:
        cells.append({"kind": "other", "source": "", "index": None, "exercise": None, "check": None, "tags": [],
                      "probe": missing})
    return cells, missing


class Graded:
    """One submission's grade: points per question, feedback lines, and how long grading took."""

    def __init__(self, submission: str, chapter: str | None):
        self.submission, self.chapter = submission, chapter
        self.scores: dict[str, float] = {}
        self.feedback: list[str] = []
        self.seconds = 0.0

    @property
    def total(self) -> float:
        return sum(self.scores.values())


class RefereeProcess:
    """The referee of one chapter (``tools/grading_referee.py``), in a sandbox of its own, driven over two pipes.

    It sees the private copy of the bundle (read-only), the chapter's probes folder (it writes the
    probes), the submissions' work folders (read-only: it reads their answers) and a numba cache
    that the chapter's submissions then get a copy of. No student code ever runs in it.
    """

    def __init__(self, sandbox: Sandbox, tmp: pathlib.Path, stem: str):
        self.stem, self.sandbox = stem, sandbox
        work, probes, numba = tmp / "referee" / stem, tmp / "public" / stem, tmp / "numba" / stem
        for d in (work, probes, numba, tmp / "submissions"):
            d.mkdir(parents=True, exist_ok=True)
        self.numba = numba
        self.binds = [(tmp / "bundle", "/opt/bundle", False), (probes, "/opt/probes", True),
                      (tmp / "submissions", "/opt/submissions", False), (numba, "/opt/numba-cache", True),
                      (work, "/work", True)]
        inside = functools.partial(sandbox.inside, binds=self.binds)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self.log = tmp / f"referee-{stem}.log"
        args = [sandbox.script("grading_referee.py"), inside(tmp / "bundle" / f"{stem}.reference.ipynb"), stem,
                inside(probes / "probes"), str(req_r), str(resp_w)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(sandbox.command(self.binds, args), pass_fds=(req_r, resp_w), cwd=work,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=sandbox.env(inside(numba)), start_new_session=True)
        os.close(req_r)
        os.close(resp_w)
        self.requests = os.fdopen(req_w, "w")
        self.responses = os.fdopen(resp_r, "r")
        self.lock = threading.Lock()
        self.questions: dict = {}

    def _read(self, timeout: float, *, fatal: bool = True) -> dict:
        ready, _, _ = select.select([self.responses], [], [], timeout)
        line = self.responses.readline() if ready else ""
        if not line:
            self.close()
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RefereeStopped(f"{self.stem}: the referee stopped answering"
                                 f"{' (timed out)' if not ready else ''}; its log ends:\n{tail}")
        msg = json.loads(line)
        if "error" in msg and fatal:
            self.close()
            raise GradingError(msg["error"])
        return msg

    def ready(self, timeout: float) -> None:
        self.questions = self._read(timeout)["questions"]

    def verdicts(self, answers: pathlib.Path, qids: list[str], timeout: float) -> dict:
        with self.lock:
            where = self.sandbox.inside(answers, self.binds)
            self.requests.write(json.dumps({"answers": where, "questions": qids}) + "\n")
            self.requests.flush()
            msg = self._read(timeout, fatal=False)
        if "error" in msg:  # a bug of the grader's: this submission cannot be judged, the others can
            print(f"warning: {self.stem}: the referee could not judge {answers}: {msg['error']}", file=sys.stderr)
            return None
        return msg["verdicts"]

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.requests.write(json.dumps({"stop": True}) + "\n")
            self.requests.flush()
        with contextlib.suppress(OSError, ValueError):
            self.requests.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            self.responses.close()


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Run:
    """What every worker of one grading run shares."""

    def __init__(self, sandbox: Sandbox, tmp: pathlib.Path, manifests: dict, bundle_copy: dict, referees: dict,
                 time_limit: float, chapter: str | None):
        self.sandbox, self.tmp, self.manifests = sandbox, tmp, manifests
        self.bundle_copy = bundle_copy  # stem -> [(path of the private copy, sha256)]
        self.referees, self.time_limit, self.chapter = referees, time_limit, chapter
        self.counter = iter(range(1 << 30))
        self.counter_lock = threading.RLock()
        self.restarts = 0

    def next_dir(self) -> pathlib.Path:
        with self.counter_lock:
            k = next(self.counter)
        d = self.tmp / "submissions" / f"{k:05d}"
        d.mkdir(parents=True)
        return d

    def restart(self, stem: str, dead: "RefereeProcess") -> None:
        """A new referee for ``stem`` in place of ``dead`` (once per death, at most MAX_RESTARTS in all)."""
        with self.counter_lock:
            if self.referees[stem] is not dead:
                return  # another worker restarted it already
            self.restarts += 1
            if self.restarts > MAX_RESTARTS:
                raise GradingError(f"{stem}: the referee stopped {self.restarts} times; grading stopped")
            fresh = RefereeProcess(self.sandbox, self.tmp, stem)
            fresh.ready(timeout=600 + 4 * self.time_limit)
            self.referees[stem] = fresh

    def check_bundle(self, stem: str) -> None:
        for path, digest in self.bundle_copy[stem]:
            if _sha256(path) != digest:
                raise GradingError(f"the private copy of the grading bundle ({path.name}) changed during grading")


def _runner_errors(done: pathlib.Path, n_cells: int) -> list[dict] | None:
    """The cells that raised, from the runner's done.json (checked: plain data of a known shape)."""
    try:
        doc = json.loads(runner.read_regular(str(done), runner.MAX_SMALL_FILE).decode("utf-8"))
    except (FileNotFoundError, runner.Unreadable, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return None
    out = []
    for e in errors[:10_000]:
        if not isinstance(e, dict) or type(e.get("pos")) is not int or not 0 <= e["pos"] < n_cells:
            continue
        name = e.get("error") if e.get("error") in runner.ERROR_NAMES else "Exception"
        out.append({"pos": e["pos"], "error": name, "late": e.get("late") is True})
    return out


def _real_dir(path: pathlib.Path, inside: pathlib.Path) -> bool:
    """``path`` is a folder, not a link, and really inside ``inside``."""
    return (path.is_dir() and not path.is_symlink()
            and os.path.realpath(path).startswith(os.path.realpath(inside) + os.sep))


def grade_one(name: str, raw: bytes, run: _Run) -> Graded:
    start = time.time()
    nb, problem = parse_submission(raw)
    stem = run.chapter or which_chapter(nb, name, list(run.manifests)) or (next(iter(run.manifests)) if len(run.manifests) == 1 else None)
    g = Graded(name, stem)
    if stem is None:
        g.feedback.append("zero: cannot tell which chapter this is (no assignment metadata, no chapter name in the file name)")
        return g
    questions = run.manifests[stem]["questions"]
    g.scores = {q["id"]: 0.0 for q in questions}
    if problem:
        g.feedback.append(f"zero for every question: {problem}")
        return g
    run.check_bundle(stem)
    cells, missing = prepare(nb, [q["id"] for q in questions])
    work = run.next_dir()
    try:
        outcome = _run_in_sandbox(run, work, stem, cells, start, [q["id"] for q in questions])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    g.seconds = time.time() - start
    if isinstance(outcome, str):
        g.feedback.append(f"zero for every question: {outcome}")
        return g
    errors, verdicts = outcome
    by_question: dict[str, list[dict]] = {}
    for e in errors:
        c = cells[e["pos"]]
        qid = c["exercise"] or c["check"]
        by_question.setdefault(qid, []).append({**e, "index": c["index"]})
    for q in questions:
        v = verdicts.get(q["id"]) or {"ran": False, "cases": []}
        cases = v.get("cases") or []
        passed = bool(v.get("ran")) and bool(cases) and all(c.get("passed") for c in cases) and not v.get("unreadable")
        if passed:
            g.scores[q["id"]] = float(q["points"])
            continue
        why = []
        if q["id"] in missing:
            why.append("no cell carries this exercise's metadata (deleted, or pasted without it?)")
        why += [_cell_error(e) for e in by_question.get(q["id"], [])][:1]
        if not v.get("ran"):
            why.append("its tests did not run")
        if v.get("unreadable"):
            why.append(str(v["unreadable"]))
        for case in cases:
            if not case.get("passed"):
                err = case.get("error") or "Exception"
                why.append(f"a hidden test failed ({err})" if case.get("hidden") else f"public check failed: {err}")
        g.feedback.append(f"{q['id']}: 0/{q['points']}: " + "; ".join(dict.fromkeys(why)))
    other = [e for e in by_question.get(None, []) if e["index"] is not None]
    g.feedback += [f"note: {_cell_error(e)}" for e in other[:3]]
    return g


def _run_in_sandbox(run: _Run, work: pathlib.Path, stem: str, cells: list[dict], start: float, qids: list[str]):
    """(runner errors, verdicts), or why every question scores zero."""
    probes = run.tmp / "public" / stem
    inside = functools.partial(run.sandbox.inside, binds=[(probes, "/opt/probes", False), (work, "/work", True)])
    job = {"cells": cells, "deadline": start + deadline_after(run.time_limit), "probes": inside(probes / "probes"),
           "out": inside(work / "out")}
    (work / "job.json").write_text(json.dumps(job))
    finished = run.sandbox.run(work, probes, max(run.time_limit - (time.time() - start), 1.0), run.tmp / f"log-{work.name}.txt",
                               numba=run.referees[stem].numba)
    if not finished:
        return (f"killed at the time limit of {run.time_limit:g} s (the interruption at "
                f"{deadline_after(run.time_limit):g} s did not stop it)")
    out = work / "out"
    errors = _runner_errors(out / "done.json", len(cells)) if _real_dir(out, work) else None
    if errors is None:
        return "the notebook's process died before the end (DeadKernelError)"
    answers = out / "answers"
    if not _real_dir(answers, out):
        return errors, {}
    referee = run.referees[stem]
    try:
        verdicts = referee.verdicts(answers, qids, timeout=600 + 2 * run.time_limit)
        return (errors, verdicts) if verdicts is not None else "the grader could not judge its answers (see the grader's log)"
    except RefereeStopped:
        run.restart(stem, referee)  # GradingError after too many restarts
        return "its answers stopped the grader's referee (it was restarted for the others)"


def _cell_error(e: dict) -> str:
    if e["error"] == "GradingTimeLimit":
        what = "not run (the submission had reached its grading time limit)" if e["late"] else \
            "interrupted (the submission ran past its grading time limit)"
        return f"cell {e['index']} raised GradingTimeLimit: {what}"
    return f"cell {e['index']} raised {e['error']}"


# ----------------------------------------------------------------------------- the folder


def grade(submissions: pathlib.Path, bundle: pathlib.Path, out_csv: pathlib.Path, feedback_dir: pathlib.Path, *,
          time_limit: float = 300, jobs: int = 1, chapter: str | None = None, unsafe: bool = False,
          bwrap: str | None = None) -> list[Graded]:
    """Grade every notebook under ``submissions``; write the grade table and the feedback files.

    Raises ValueError on bad arguments (before any work), SandboxUnavailable when no sandbox can
    start and ``unsafe`` is false, GradingError when the reference cannot be run.
    """
    submissions, bundle = pathlib.Path(submissions), pathlib.Path(bundle)
    out_csv, feedback_dir = pathlib.Path(out_csv), pathlib.Path(feedback_dir)
    if not submissions.is_dir():
        raise ValueError(f"SUBMISSIONS: {submissions} is not a folder")
    manifests = read_bundle(bundle)
    if not manifests:
        raise ValueError(f"bundle: no grading bundle in {bundle} (run `make assignments` first)")
    if not isinstance(time_limit, (int, float)) or isinstance(time_limit, bool) or not time_limit > 0:
        raise ValueError(f"time_limit: must be a number of seconds > 0, got {time_limit!r}")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs: must be an integer >= 1, got {jobs!r}")
    if chapter is not None and chapter not in manifests:
        raise ValueError(f"chapter: {chapter!r} has no grading bundle; known: {sorted(manifests)}")
    files = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())
    if not files:
        raise ValueError(f"SUBMISSIONS: no .ipynb files under {submissions}")
    subs = [(str(p.relative_to(submissions)), p.read_bytes()) for p in files]  # everything read before grading
    stems = {}
    for name, raw in subs:
        nb, _ = parse_submission(raw)
        stems[name] = chapter or which_chapter(nb, name, list(manifests)) or (next(iter(manifests)) if len(manifests) == 1 else None)
    needed = sorted({s for s in stems.values() if s is not None})
    original = {s: _bundle_digest(bundle, s) for s in needed}
    if unsafe:
        print(f"warning: {UNSAFE_EXPOSES}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="grading-", ignore_cleanup_errors=True) as tmp_name:
        tmp = pathlib.Path(tmp_name)
        sandbox = Sandbox(tmp / "sandbox", unsafe=unsafe, bwrap=bwrap)
        if not unsafe:
            sandbox.require()  # SandboxUnavailable before any work when bwrap is missing
        bundle_copy = {}
        for s in needed:
            (tmp / "bundle").mkdir(exist_ok=True)
            copies = []
            for f in (bundle / f"{s}.json", bundle / f"{s}.reference.ipynb"):
                target = tmp / "bundle" / f.name
                shutil.copyfile(f, target)
                copies.append((target, _sha256(target)))
            bundle_copy[s] = copies
        sandbox.prepare()  # SandboxUnavailable: nothing graded
        referees: dict[str, RefereeProcess] = {}
        try:
            for s in needed:
                referees[s] = RefereeProcess(sandbox, tmp, s)
            for s in needed:
                referees[s].ready(timeout=600 + 4 * time_limit)
            run = _Run(sandbox, tmp, manifests, bundle_copy, referees, time_limit, chapter)

            def one(item):
                name, raw = item
                try:
                    return grade_one(name, raw, run)
                except GradingError:
                    raise
                except Exception as e:  # noqa: BLE001 - one notebook must not stop the others
                    traceback.print_exc()
                    g = Graded(name, stems[name])
                    g.scores = {q["id"]: 0.0 for q in manifests[stems[name]]["questions"]} if stems[name] else {}
                    g.feedback.append(f"zero for every question: the grader failed on this notebook ({type(e).__name__})")
                    return g

            with ThreadPoolExecutor(jobs) as pool:
                graded = list(pool.map(one, subs))
        finally:
            for r in referees.values():  # restarted ones included: the run shares this dict
                r.close()
    for s in needed:
        if _bundle_digest(bundle, s) != original[s]:
            print(f"warning: the grading bundle of {s} in {bundle} changed during grading (grades used the copy made "
                  f"before grading started)", file=sys.stderr)
    _write_results(graded, manifests, out_csv, feedback_dir)
    return graded


def _bundle_digest(bundle: pathlib.Path, stem: str) -> str:
    h = hashlib.sha256()
    for f in sorted(bundle.glob(f"{stem}.*")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _write_results(graded: list[Graded], manifests: dict, out_csv: pathlib.Path, feedback_dir: pathlib.Path) -> None:
    columns = [(stem, q) for stem in manifests for q in manifests[stem]["questions"]
               if any(g.chapter == stem for g in graded)]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    possible = {stem: sum(q["points"] for q in m["questions"]) for stem, m in manifests.items()}
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "chapter"] + [f"{q['id']} ({q['points']} pt{'s' if q['points'] > 1 else ''})" for _, q in columns]
                   + ["total", "possible", "seconds"])
        for g in graded:
            w.writerow([g.submission, g.chapter or ""]
                       + [_num(g.scores[q["id"]]) if g.chapter == stem else "" for stem, q in columns]
                       + [_num(g.total), possible.get(g.chapter, ""), f"{g.seconds:.1f}"])
    feedback_dir.mkdir(parents=True, exist_ok=True)
    for g in graded:
        target = feedback_dir / (re.sub(r"[^\w.-]+", "_", g.submission.removesuffix(".ipynb")) + ".txt")
        lines = [f"{g.submission}: {_num(g.total)} / {possible.get(g.chapter, '?')} points"
                 + (f" ({g.chapter})" if g.chapter else "")]
        lines += [f"  {q}: {_num(s)}" for q, s in g.scores.items()]
        lines += [f"- {line}" for line in g.feedback] or ["- every question passed its public and hidden tests"]
        target.write_text("\n".join(lines) + "\n")


def _num(x: float) -> str:
    return f"{x:g}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--submissions", type=pathlib.Path, required=True)
    ap.add_argument("--bundle", type=pathlib.Path, default=ROOT / "_build" / "assignments" / "grading")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "grades.csv")
    ap.add_argument("--feedback", type=pathlib.Path, default=ROOT / "_build" / "feedback")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per submission (default 300)")
    ap.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    ap.add_argument("--chapter", default=None, help="grade every submission as this chapter (default: detected)")
    ap.add_argument("--unsafe", action="store_true", help="grade without a sandbox (UNSAFE=1): see the README first")
    args = ap.parse_args(argv)
    try:
        graded = grade(args.submissions, args.bundle, args.out, args.feedback, time_limit=args.time_limit,
                       jobs=args.jobs, chapter=args.chapter, unsafe=args.unsafe)
    except (ValueError, SandboxUnavailable, GradingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for g in graded:
        print(f"{g.total:6g}  {g.submission}")
    print(f"wrote {args.out} and {len(graded)} feedback files in {args.feedback}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
