"""Exercises in the chapters, and the student, solution and grading copies made from them.

    python tools/make_assignments.py [--out _build/assignments] [--extra-tests DIR] [--no-grading]
    python tools/assignments.py [--out _build/assignments]      (the copies only)

writes, for every chapter in ``_toc.yml``,

- ``<out>/student/<chapter>.ipynb``: solutions removed (see below), a markdown answer cell after
  each prose exercise, hidden checks dropped, outputs cleared; it needs nothing beyond the book's
  package, and its ``check`` cells tell the student whether an exercise is done;
- ``<out>/solutions/<chapter>.ipynb``: the chapter with outputs cleared and hidden checks dropped;
- ``<out>/grading/<chapter>.zip`` and ``<chapter>.json``: the grading bundle of every chapter with
  code exercises (an otter-grader autograder and its question list; ``tools/grading.py``), with
  the instructor's own hidden tests from ``--extra-tests DIR`` (one file ``<question id>.py`` per
  question, plain Python asserts run after the question's check) merged in.

Copies are built from the flattened form of the Colab edition where it exists (``flatten``: the
copy is made from the MyST chapter, then flattened). ``format_problems`` lists every departure
from the format below (the test suite runs it on each converted chapter).

The exercise format (one for the book and for course assignments)
-----------------------------------------------------------------
**Code exercise.** A code cell whose solution sits between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines (several blocks allowed: a scaffolded exercise gives the structure and
leaves one block per step), with cell metadata
``{"exercise": {"id": "<chapter>.<k>", "points": <int, default 1>, "level": "warm-up" | "core" | "stretch"}}``
and the tag ``hide-input``, so the rendered book (MyST-NB) collapses the cell's code behind a
"Show code cell source" toggle that the reader opens after trying. The markdown cell just before
it names it ("Code exercise 1.2 (core, 2 points): ...") and states what to write. Then:

1. a code cell tagged ``check``: the public check, asserts of properties that do not reveal the
   answer (shape, range, invariants, a case worked by hand; never a package function the student
   could call, never the answer as a typed literal), ending with ``print("check passed")``;
2. one or more code cells tagged ``hidden-check`` and ``remove-cell`` (absent from the rendered
   page, from student and solution copies and from the Colab edition): at least one test the
   public check does not reveal, comparing with the reference solution, whose code lives inside
   the cell, recomputed under the notebook's own parameters. They run in every build of the book
   and are the hidden tests of the grading bundle.

**Prose exercise.** A ```` ```{exercise} ```` block (sphinx-exercise) with a ``:label:``, its
title starting with its level ("Warm-up: ...", "Core: ...", "Stretch: ..."), followed by
```` ```{solution} <label> ```` with ``:class: dropdown``. Student copies drop the solution and
add a markdown answer cell after the exercise.

Each chapter has at least one warm-up, one core and one stretch exercise, the stretch scaffolded.
Chapters not yet converted (no metadata, no hidden checks) still get copies and a bundle: their
code exercises are numbered in order, worth 1 point, graded by their public check alone.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import pathlib
import re
import sys
from typing import NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("exercise: replace this line with your solution")'
LEVELS = ("warm-up", "core", "stretch")
CHECK, HIDDEN = "check", "hidden-check"
ANSWER_PROMPT = "**Your answer** ({title}): double-click this cell and write it here.\n"
# the Colab edition's flattening step: tools/<module>.py, function <name>(notebook dict) -> notebook dict
FLATTEN = ("colab_edition", "flatten_notebook")


class MarkerError(ValueError):
    """The exercise format is broken: unbalanced solution markers, bad metadata, a missing check."""


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def strip_code(source: str, where: str = "cell") -> str:
    """Replace each BEGIN/END SOLUTION block (markers included) by an indented stub."""
    out, inside, indent = [], False, ""
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MarkerError(f"{where}: nested '{BEGIN}'")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}\n")
        elif stripped == END:
            if not inside:
                raise MarkerError(f"{where}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: '{BEGIN}' without '{END}'")
    return "".join(out).rstrip("\n")


_FENCE = re.compile(r"^(\s*)(`{3,}|:{3,})\{(solution|exercise)\}(.*)$")


def _directives(source: str):
    """(kind, first line, last line, argument) of every {exercise}/{solution} block, in order."""
    found, open_ = [], None
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if open_ is None:
            m = _FENCE.match(line)
            if m:
                open_ = (m.group(3), i, m.group(2), m.group(4).strip())
        elif line.strip() == open_[2]:
            found.append((open_[0], open_[1], i, open_[3]))
            open_ = None
    if open_ is not None:
        raise MarkerError(f"markdown: unterminated {{{open_[0]}}} block")
    return found


def _label(lines: list[str], first: int, last: int) -> str | None:
    for ln in lines[first + 1 : last]:
        if ln.strip().startswith(":label:"):
            return ln.split(":label:", 1)[1].strip()
    return None


def strip_prose(source: str) -> str:
    """Remove every ```{solution} (or :::{solution}) block of a markdown cell."""
    lines = source.splitlines()
    drop = {i for kind, a, b, _ in _directives(source) if kind == "solution" for i in range(a, b + 1)}
    kept = "\n".join(ln for i, ln in enumerate(lines) if i not in drop)
    return re.sub(r"\n{3,}", "\n\n", kept).strip("\n")


def split_after_exercises(source: str) -> list[tuple[str, str | None]]:
    """Split a markdown cell after each {exercise} block: [(text, label of the exercise it ends with)]."""
    lines = source.splitlines()
    parts, start = [], 0
    for kind, a, b, _ in _directives(source):
        if kind == "exercise":
            parts.append(("\n".join(lines[start : b + 1]).strip("\n"), _label(lines, a, b) or "this exercise"))
            start = b + 1
    rest = "\n".join(lines[start:]).strip("\n")
    if rest or not parts:
        parts.append((rest, None))
    return parts


def prose_exercises(source: str) -> list[dict]:
    """Every {exercise} of a markdown cell: label, title, level (the title's 'Warm-up:' prefix), solution."""
    lines = source.splitlines()
    found = _directives(source)
    solutions = {}
    for kind, a, b, arg in found:
        if kind == "solution":
            opts = [ln.strip() for ln in lines[a + 1 : b]]
            solutions[arg] = ":class: dropdown" in opts
    out = []
    for kind, a, b, title in found:
        if kind == "exercise":
            label = _label(lines, a, b)
            m = re.match(r"(warm-up|core|stretch):", title, flags=re.IGNORECASE)
            out.append({"label": label, "title": title, "level": m.group(1).lower() if m else None,
                        "solution": label in solutions, "dropdown": solutions.get(label, False)})
    return out


class Exercise(NamedTuple):
    """A code exercise: its id, points and level, and the indices of its cells in the notebook."""

    id: str
    points: int
    level: str | None
    cell: int
    check: int | None
    hidden: tuple[int, ...]
    has_metadata: bool


def chapter_number(stem: str) -> int:
    m = re.match(r"(\d+)_", stem)
    if not m:
        raise MarkerError(f"chapter: file name {stem!r} does not start with its number (e.g. 01_...)")
    return int(m.group(1))


def code_exercises(nb: dict, stem: str) -> list[Exercise]:
    """The code exercises of a notebook, with the check and hidden-check cells that follow each.

    Lenient about chapters not yet converted: without metadata an exercise is '<chapter>.<k>'
    (k counts code exercises from 1), worth 1 point. Raises MarkerError on what grading cannot
    work with: unbalanced markers, a bad id or points, duplicate ids, no check cell.
    """
    cells, number, out = nb["cells"], chapter_number(stem), []
    for i, c in enumerate(cells):
        if c["cell_type"] != "code" or BEGIN not in _source(c):
            continue
        where = f"{stem} cell {i}"
        strip_code(_source(c), where)  # balanced markers
        meta = c.get("metadata", {}).get("exercise")
        has_meta = isinstance(meta, dict)
        meta = meta if has_meta else {}
        ex_id = str(meta.get("id", f"{number}.{len(out) + 1}"))
        if not re.fullmatch(rf"{number}\.\d+", ex_id):
            raise MarkerError(f"{where}: exercise id {ex_id!r} must be '{number}.<k>'")
        points = meta.get("points", 1)
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise MarkerError(f"{where}: exercise {ex_id}: points must be an integer >= 1, got {points!r}")
        level = meta.get("level")
        if level is not None and level not in LEVELS:
            raise MarkerError(f"{where}: exercise {ex_id}: level must be one of {LEVELS}, got {level!r}")
        check, hidden = None, []
        for j in range(i + 1, len(cells)):
            if cells[j]["cell_type"] != "code":
                continue
            tags = _tags(cells[j])
            if CHECK in tags and check is None and not hidden:
                check = j
            elif HIDDEN in tags and check is not None:
                hidden.append(j)
            else:
                break
        if check is None:
            raise MarkerError(f"{where}: exercise {ex_id}: the next code cell must be tagged '{CHECK}'")
        out.append(Exercise(ex_id, points, level, i, check, tuple(hidden), has_meta))
    ids = [e.id for e in out]
    if len(set(ids)) != len(ids):
        raise MarkerError(f"{stem}: duplicate exercise ids {sorted({x for x in ids if ids.count(x) > 1})}")
    return out


def format_problems(nb: dict, stem: str) -> list[str]:
    """Every way a chapter departs from the exercise format of this module's docstring (strict)."""
    cells, problems = nb["cells"], []
    try:
        exercises = code_exercises(nb, stem)
    except MarkerError as e:
        return [str(e)]
    number = chapter_number(stem)
    if not exercises:
        problems.append("no code exercise")
    levels = []
    for k, e in enumerate(exercises, 1):
        c, where = cells[e.cell], f"exercise {e.id} (cell {e.cell})"
        if not e.has_metadata:
            problems.append(f"{where}: no 'exercise' metadata (id, points, level)")
            continue
        if e.id != f"{number}.{k}":
            problems.append(f"{where}: id should be {number}.{k} (numbered in order)")
        if e.level is None:
            problems.append(f"{where}: no level ({' | '.join(LEVELS)})")
        levels.append(e.level)
        if "hide-input" not in _tags(c):
            problems.append(f"{where}: not tagged hide-input (the book must fold the solution away)")
        if e.level == "stretch" and _source(c).count(BEGIN) < 2:
            problems.append(f"{where}: a stretch exercise is scaffolded: one solution block per step (2 or more)")
        before = next((cells[j] for j in range(e.cell - 1, -1, -1) if cells[j]["cell_type"] == "markdown"), None)
        heading = f"Code exercise {e.id} ({e.level}, {e.points} point{'s' if e.points > 1 else ''})"
        if before is None or heading not in _source(before):
            problems.append(f"{where}: the markdown cell before it must name it: '{heading}: ...'")
        if not _source(cells[e.check]).rstrip().endswith('print("check passed")'):
            problems.append(f"{where}: its check cell must end with print(\"check passed\")")
        if not e.hidden:
            problems.append(f"{where}: no hidden-check cell after its check")
        for h in e.hidden:
            if "remove-cell" not in _tags(cells[h]):
                problems.append(f"{where}: hidden-check cell {h} is not tagged remove-cell")
            if _source(cells[h]).strip() == _source(cells[e.check]).strip():
                problems.append(f"{where}: hidden-check cell {h} repeats the public check")
    owned = {h for e in exercises for h in e.hidden}
    problems += [f"cell {i}: a hidden-check cell that follows no exercise's check"
                 for i, c in enumerate(cells) if HIDDEN in _tags(c) and i not in owned]
    for c in cells:
        if c["cell_type"] != "markdown":
            continue
        for ex in prose_exercises(_source(c)):
            name = f"prose exercise {ex['label'] or ex['title']!r}"
            if not ex["label"]:
                problems.append(f"{name}: no :label:")
            if ex["level"] is None:
                problems.append(f"{name}: its title must start with its level (Warm-up:, Core: or Stretch:)")
            if not ex["solution"] or not ex["dropdown"]:
                problems.append(f"{name}: needs a {{solution}} with :class: dropdown")
            levels.append(ex["level"])
    missing = [lv for lv in LEVELS if lv not in levels]
    if missing:
        problems.append(f"no {' or '.join(missing)} exercise (each chapter has a warm-up, a core and a stretch one)")
    return problems


def _cleared(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def _without_hidden_checks(nb: dict) -> dict:
    nb["cells"] = [c for c in nb["cells"] if HIDDEN not in _tags(c)]
    return nb


def _markdown(source: str, metadata: dict | None = None) -> dict:
    return {"cell_type": "markdown", "metadata": metadata or {}, "source": source}


def _label_exercises(nb: dict, stem: str) -> None:
    """Give every code exercise its full ``exercise`` metadata (the grader finds exercises by it)."""
    for e in code_exercises(nb, stem):
        level = {"level": e.level} if e.level else {}
        nb["cells"][e.cell].setdefault("metadata", {})["exercise"] = {"id": e.id, "points": e.points, **level}
    nb["metadata"]["prunebook"] = {"assignment": stem}


def student_copy(nb: dict, stem: str = "chapter") -> dict:
    """Solutions replaced by stubs, prose solutions removed, an answer cell after each prose exercise."""
    nb = _cleared(nb)
    _label_exercises(nb, stem)
    cells = []
    for i, c in enumerate(nb["cells"]):
        if HIDDEN in _tags(c):
            continue
        if c["cell_type"] == "code":
            c["source"] = strip_code(_source(c), f"{stem} cell {i}")
            cells.append(c)
        elif c["cell_type"] == "markdown":
            stripped = strip_prose(_source(c))
            titles = {ex["label"]: ex["title"] for ex in prose_exercises(stripped)}
            parts = split_after_exercises(stripped)
            for k, (text, label) in enumerate(parts):
                if text:  # a cell split in parts: each part keeps a unique id
                    cells.append({**c, "source": text, **({"id": f"{c['id']}-{k}"} if "id" in c and k else {})})
                if label:
                    cells.append({**_markdown(ANSWER_PROMPT.format(title=titles.get(label) or label), {"answer": label}),
                                  **({"id": f"answer-{label}"} if "id" in c else {})})
        else:
            cells.append(c)
    nb["cells"] = cells
    return nb


def solution_copy(nb: dict, stem: str = "chapter") -> dict:
    """The chapter with outputs cleared and hidden checks dropped."""
    nb = _cleared(nb)
    _label_exercises(nb, stem)
    return _without_hidden_checks(nb)


def flatten():
    """The Colab edition's MyST-to-Markdown flattening (``FLATTEN``), or None where it does not exist yet."""
    module, name = FLATTEN
    path = ROOT / "tools" / f"{module}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise MarkerError(f"tools/{module}.py exists but has no function {name}(notebook) -> notebook; "
                          f"set FLATTEN in tools/assignments.py to its flattening function")
    return fn


def write(out: pathlib.Path, chapters: list[pathlib.Path], *, flat=None) -> list[pathlib.Path]:
    """Write student and solution copies; ``flat`` (default: ``flatten()``) is applied last."""
    flat = flatten() if flat is None else flat
    written = []
    for kind in ("student", "solutions"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    for path in chapters:
        nb = json.loads(path.read_text())
        for kind, make in (("solutions", solution_copy), ("student", student_copy)):
            made = make(nb, path.stem)
            if flat:
                made = flat(made)
            target = out / kind / path.name
            target.write_text(json.dumps(made, indent=1, ensure_ascii=False) + "\n")
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    """Student and solution copies only; ``tools/make_assignments.py`` adds the grading bundle."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "assignments")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tools"))
    from notebooks import toc_notebooks

    for p in write(args.out, toc_notebooks()):
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
