"""Student and solution copies of the chapters, for course assignments.

    python tools/assignments.py [--out _build/assignments]

writes ``<out>/solutions/<chapter>.ipynb`` (the chapter, outputs cleared) and
``<out>/student/<chapter>.ipynb``, in which

- every code solution, the lines from ``# BEGIN SOLUTION`` to ``# END SOLUTION``, becomes a stub
  that raises ``NotImplementedError`` (at the marker's indentation), so the exercise's ``check``
  cell fails until the student writes a solution;
- every prose solution (a ```{solution} block of sphinx-exercise) is removed;
- outputs and execution counts are cleared.

The format is nbgrader's idea (solution markers replaced by a stub, as its ClearSolutions does)
implemented in a few lines: nbgrader and otter-grader each need their own notebook metadata and
bring a large dependency tree, and the book needs neither their databases nor their graders.
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("exercise: replace this line with your solution")'


class MarkerError(ValueError):
    pass


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


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


_FENCE = re.compile(r"^(\s*)(`{3,}|:{3,})\{solution\}")


def strip_prose(source: str) -> str:
    """Remove every ```{solution} (or :::{solution}) block of a markdown cell."""
    out, fence = [], None
    for line in source.splitlines(keepends=True):
        if fence is None:
            m = _FENCE.match(line)
            if m:
                fence = m.group(2)
                continue
            out.append(line)
        elif line.strip() == fence:
            fence = None
    if fence is not None:
        raise MarkerError("markdown: unterminated {solution} block")
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).rstrip("\n")


def _cleared(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def student_copy(nb: dict) -> dict:
    nb = _cleared(nb)
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "code":
            c["source"] = strip_code(_source(c), f"cell {i}")
        elif c["cell_type"] == "markdown":
            c["source"] = strip_prose(_source(c))
    return nb


def write(out: pathlib.Path, chapters: list[pathlib.Path]) -> list[pathlib.Path]:
    written = []
    for kind in ("student", "solutions"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    for path in chapters:
        nb = json.loads(path.read_text())
        for kind, made in (("solutions", _cleared(nb)), ("student", student_copy(nb))):
            target = out / kind / path.name
            target.write_text(json.dumps(made, indent=1, ensure_ascii=False) + "\n")
            written.append(target)
    return written


def main(argv: list[str]) -> int:
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
