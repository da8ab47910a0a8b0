"""The grading bundle of each chapter, and grading a folder of submissions with otter-grader.

    python tools/grading.py --submissions DIR [--bundle _build/assignments/grading]
                            [--out _build/grades.csv] [--feedback _build/feedback]
                            [--time-limit 300] [--jobs 1] [--chapter 01_data_model]

``write_bundle`` (called by ``tools/assignments.py``) turns each chapter with code exercises into
an otter-grader master notebook, one question per code exercise (its points, graded all or
nothing; its public check and every hidden check as test cases, plus the instructor's extra tests),
and runs ``otter assign`` to get the autograder zip: ``<bundle>/<chapter>.zip`` and the question
list ``<bundle>/<chapter>.json``.

``grade`` grades every ``*.ipynb`` under the submissions folder (never modified: each is read
once and graded from a temporary copy) with ``otter run`` (offline, no Docker), each in its own
process: the copy gets ``smoke = True`` after its parameters cell, each question's tests run right
after its check cell (so later cells cannot disturb them), and a guard cell first. Each submission
has ``--time-limit`` seconds (T): a cell still running at T - max(0.2 T, 10 s) is interrupted and
the cells after it do not run (the questions they define score zero, the ones before keep their
points; the rest of the time is for the tests); a submission that survives the interruption is
killed at T and scores zero. A file that is
not valid JSON, not a notebook, or whose chapter cannot be told scores zero with the reason. Writes
``grades.csv`` (one row per submission, one column per question, a total) and a short feedback
file per submission. Grading runs the students' code with your permissions, unsandboxed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import assignments as asg  # noqa: E402



def deadline_after(time_limit: float) -> float:
    """Seconds after which the guard stops the notebook's cells: the rest is kept for the tests."""
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


def write_bundle(out: pathlib.Path, chapters: list[pathlib.Path], extra: dict[str, list[str]] | None = None) -> list[pathlib.Path]:
    """``otter assign`` each chapter that has code exercises; keep its autograder zip and a question list."""
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
        manifest = {
            "chapter": path.stem,
            "otter_grader": version("otter-grader"),
            "questions": [{"id": e.id, "points": e.points, "level": e.level, "hidden_tests": len(e.hidden),
                           "extra_tests": len(extra.get(e.id, []))} for e in exercises],
        }
        (out / f"{path.stem}.json").write_text(json.dumps(manifest, indent=1) + "\n")
        written += [target, out / f"{path.stem}.json"]
    return written


def read_bundle(bundle: pathlib.Path) -> dict[str, dict]:
    manifests = {}
    for f in sorted(pathlib.Path(bundle).glob("*.json")):
        m = json.loads(f.read_text())
        if (f.with_suffix(".zip")).exists():
            manifests[m["chapter"]] = m
    return manifests


# ----------------------------------------------------------------------------- one submission

GUARD = '''\
# Added by the grader (tools/grading.py) to its copy of the submission: a cell still running at
# the deadline is interrupted, and the cells after it do not run; the grader's own cells do.
class GradingTimeLimit(Exception):
    pass


def _grading_guard(deadline):
    import re, signal, time

    late = [False]  # decided once per cell, when IPython transforms it (before pre_run_cell)

    def graders(src):
        return src.startswith(("from otter", "import sys\\nsys.path.append")) or re.match(r"notebook_\\w+\\(\\)\\.check\\(", src)

    def skip_late(lines):
        if graders("".join(lines)):
            return lines
        late[0] = late[0] or time.time() >= deadline
        return ["raise GradingTimeLimit('not run: the submission had reached its grading time limit')\\n"] if late[0] else lines

    def stop(signum, frame):
        raise GradingTimeLimit("interrupted: the submission ran past its grading time limit")

    def arm(info=None):
        if not late[0] and not graders(getattr(info, "raw_cell", "") or ""):
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.time(), 0.001))

    def disarm(result=None):
        signal.setitimer(signal.ITIMER_REAL, 0)

    signal.signal(signal.SIGALRM, stop)
    get_ipython().input_transformers_post.append(skip_late)
    get_ipython().events.register("pre_run_cell", arm)
    get_ipython().events.register("post_run_cell", disarm)


_grading_guard({deadline!r})
del _grading_guard'''


def _is_notebook(nb) -> bool:
    return (isinstance(nb, dict) and isinstance(nb.get("cells"), list) and
            all(isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw") for c in nb["cells"]))


def which_chapter(nb: dict | None, name: str, chapters: list[str]) -> str | None:
    """The submission's chapter: its metadata, else a chapter name in its file name, else its exercise ids."""
    if isinstance(nb, dict):
        meta = nb.get("metadata", {}).get("prunebook", {})
        if isinstance(meta, dict) and meta.get("assignment") in chapters:
            return meta["assignment"]
    for stem in chapters:
        if stem in name:
            return stem
    if isinstance(nb, dict):
        numbers = {str(c.get("metadata", {}).get("exercise", {}).get("id", "")).split(".")[0]
                   for c in nb.get("cells", []) if isinstance(c, dict) and isinstance(c.get("metadata", {}).get("exercise"), dict)}
        hits = [s for s in chapters if str(asg.chapter_number(s)) in numbers]
        if len(hits) == 1:
            return hits[0]
    return None


def prepare(nb: dict, question_ids: list[str], deadline: float) -> tuple[dict, list[str]]:
    """The copy otter runs: the guard first, ``smoke = True`` after the parameters, tests after each check.

    Returns the notebook and the ids of the questions whose exercise cell was not found.
    """
    cells = []
    for i, c in enumerate(nb["cells"]):
        c = dict(c, metadata=dict(c.get("metadata") or {}))
        c["metadata"]["grading_cell"] = i  # the submission's own cell number, for the feedback
        c["source"] = asg._source(c)
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
        cells.append(c)
    params = next((k for k, c in enumerate(cells) if "parameters" in asg._tags(c)), None)
    smoke = _code("smoke = True", {"tags": ["injected-parameters"]})
    cells.insert(params + 1 if params is not None else 0, smoke)
    cells.insert(0, _code(GUARD.format(deadline=deadline), {"tags": ["grading-guard"]}))
    missing = []
    for qid in question_ids:
        at = next((k for k, c in enumerate(cells) if (c["metadata"].get("exercise") or {}).get("id") == qid), None)
        if at is None:
            missing.append(qid)  # otter runs its tests at the end
            continue
        check = next((k for k in range(at + 1, len(cells)) if cells[k]["cell_type"] == "code"), None)
        host = check if check is not None and asg.CHECK in asg._tags(cells[check]) else at
        cells[host]["metadata"]["otter"] = {"tests": [qid]}
        cells[host]["metadata"]["grading_check"] = qid
    out = {"cells": cells, "metadata": dict(nb.get("metadata") or {}), "nbformat": 4, "nbformat_minor": 4}
    out["metadata"]["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    out["metadata"].pop("otter", None)
    return out, missing


def worker(autograder: str, submission: str, result: str) -> int:
    """Run otter on one prepared submission (in this process) and write what the feedback needs."""
    from otter.run import main as otter_run

    out: dict = {"questions": {}, "errors": [], "fatal": None}
    try:
        res = otter_run(submission, autograder=autograder, output_dir=None, no_logo=True)
    except BaseException as e:  # a dead kernel, a broken notebook
        out["fatal"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    else:
        if res.catastrophic_error is not None and not res.results:
            out["fatal"] = f"the notebook did not finish ({type(res.catastrophic_error).__name__})"
        for name, tf in res.results.items():
            out["questions"][name] = {
                "score": float(tf.score), "possible": float(tf.possible),
                "cases": [{"hidden": bool(r.test_case.hidden), "passed": bool(r.passed),
                           "error": (r.message or "").strip().splitlines()[-1] if not r.passed else ""}
                          for r in tf.test_case_results],
            }
        for c in (res.notebook.cells if res.notebook is not None else []):
            for o in c.get("outputs", []):
                if o.get("output_type") == "error" and "grading_cell" in c.get("metadata", {}):
                    out["errors"].append({"cell": c.metadata["grading_cell"], "exercise": (c.metadata.get("exercise") or {}).get("id"),
                                          "check": c.metadata.get("grading_check"),
                                          "error": f"{o.get('ename')}: {o.get('evalue', '')}"[:300]})
    pathlib.Path(result).write_text(json.dumps(out))
    return 0


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


def _run_worker(zip_path: pathlib.Path, nb_path: pathlib.Path, result: pathlib.Path, log: pathlib.Path,
                limit: float, time_limit: float) -> str | None:
    """Run the worker in its own process group; kill the whole group at the limit. Returns why it failed, if it did."""
    with open(log, "wb") as logf:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", str(zip_path), str(nb_path), str(result)],
                                cwd=nb_path.parent, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"killed at the time limit of {time_limit:g} s (the interruption at {deadline_after(time_limit):g} s did not stop it)"
    if proc.returncode != 0 or not result.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return f"the grader's process failed (exit {proc.returncode}): {tail[0][:200]}"
    return None


def grade_one(path: pathlib.Path, name: str, bundle: pathlib.Path, manifests: dict, time_limit: float, chapter: str | None) -> Graded:
    start = time.time()
    raw = path.read_bytes()
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        nb, problem = None, f"not a valid notebook: not JSON ({type(e).__name__}: {str(e)[:120]})"
    else:
        problem = None if _is_notebook(nb) else "not a valid notebook: no list of cells"
    stem = chapter or which_chapter(nb, path.name, list(manifests)) or (next(iter(manifests)) if len(manifests) == 1 else None)
    g = Graded(name, stem)
    if stem is None:
        g.feedback.append("zero: cannot tell which chapter this is (no assignment metadata, no chapter name in the file name)")
        return g
    questions = manifests[stem]["questions"]
    g.scores = {q["id"]: 0.0 for q in questions}
    if problem:
        g.feedback.append(f"zero for every question: {problem}")
        return g
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        tmp = pathlib.Path(tmp)
        copy_nb, missing = prepare(nb, [q["id"] for q in questions], start + deadline_after(time_limit))
        (tmp / "work").mkdir()
        nb_path = tmp / "work" / "submission.ipynb"
        nb_path.write_text(json.dumps(copy_nb))
        failed = _run_worker(bundle / f"{stem}.zip", nb_path, tmp / "result.json", tmp / "log.txt",
                             max(time_limit - (time.time() - start), 1.0), time_limit)
        result = json.loads((tmp / "result.json").read_text()) if failed is None else {}
    failed = failed or result.get("fatal")
    g.seconds = time.time() - start
    if failed:
        g.feedback.append(f"zero for every question: {failed}")
        return g
    errors = result.get("errors", [])
    for q in questions:
        r = result["questions"].get(q["id"])
        g.scores[q["id"]] = r["score"] if r else 0.0
        if r and r["score"] >= q["points"]:
            continue
        why = []
        if q["id"] in missing:
            why.append("no cell carries this exercise's metadata (deleted, or pasted without it?)")
        why += [f"cell {e['cell']} raised {e['error']}" for e in errors if e["exercise"] == q["id"]][:1]
        for case in (r or {}).get("cases", []):
            if not case["passed"]:
                why.append(f"a hidden test failed ({case['error'].split(':')[0]})" if case["hidden"] else f"public check failed: {case['error']}")
        if r is None:
            why.append("its tests did not run")
        g.feedback.append(f"{q['id']}: 0/{q['points']}: " + "; ".join(dict.fromkeys(why)))
    other = [e for e in errors if e["exercise"] is None and e["check"] is None]
    g.feedback += [f"note: cell {e['cell']} raised {e['error']}" for e in other[:3]]
    return g


# ----------------------------------------------------------------------------- the folder

def grade(submissions: pathlib.Path, bundle: pathlib.Path, out_csv: pathlib.Path, feedback_dir: pathlib.Path, *,
          time_limit: float = 300, jobs: int = 1, chapter: str | None = None) -> list[Graded]:
    """Grade every notebook under ``submissions``; write the grade table and the feedback files."""
    submissions, bundle = pathlib.Path(submissions), pathlib.Path(bundle)
    if not submissions.is_dir():
        raise ValueError(f"SUBMISSIONS: {submissions} is not a folder")
    manifests = read_bundle(bundle)
    if not manifests:
        raise ValueError(f"bundle: no grading bundle in {bundle} (run `make assignments` first)")
    if not isinstance(time_limit, (int, float)) or isinstance(time_limit, bool) or not time_limit > 0:
        raise ValueError(f"time_limit: must be a number of seconds > 0, got {time_limit!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: must be an integer >= 1, got {jobs!r}")
    if chapter is not None and chapter not in manifests:
        raise ValueError(f"chapter: {chapter!r} has no grading bundle; known: {sorted(manifests)}")
    files = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not files:
        raise ValueError(f"SUBMISSIONS: no .ipynb files under {submissions}")
    with ThreadPoolExecutor(jobs) as pool:
        graded = list(pool.map(lambda p: grade_one(p, str(p.relative_to(submissions)), bundle, manifests, time_limit, chapter), files))
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
    return graded


def _num(x: float) -> str:
    return f"{x:g}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker(*argv[1:4])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--submissions", type=pathlib.Path, required=True)
    ap.add_argument("--bundle", type=pathlib.Path, default=ROOT / "_build" / "assignments" / "grading")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "grades.csv")
    ap.add_argument("--feedback", type=pathlib.Path, default=ROOT / "_build" / "feedback")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per submission (default 300)")
    ap.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    ap.add_argument("--chapter", default=None, help="grade every submission as this chapter (default: detected)")
    args = ap.parse_args(argv)
    try:
        graded = grade(args.submissions, args.bundle, args.out, args.feedback, time_limit=args.time_limit,
                       jobs=args.jobs, chapter=args.chapter)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for g in graded:
        print(f"{g.total:6g}  {g.submission}")
    print(f"wrote {args.out} and {len(graded)} feedback files in {args.feedback}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
