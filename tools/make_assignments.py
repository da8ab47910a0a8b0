"""`make assignments`: the student and solution copies (tools/assignments.py) and the grading bundle
(tools/grading.py).

    python tools/make_assignments.py [--out _build/assignments] [--extra-tests DIR] [--no-grading]

The instructor's extra hidden tests are checked before any copy is written.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import assignments  # noqa: E402
from notebooks import toc_notebooks  # noqa: E402


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "assignments")
    ap.add_argument("--extra-tests", type=pathlib.Path, default=None,
                    help="folder of the instructor's own hidden tests, one <question id>.py per question")
    ap.add_argument("--no-grading", action="store_true", help="student and solution copies only (no otter-grader needed)")
    args = ap.parse_args(argv)
    chapters = toc_notebooks()
    bundle = None
    if not args.no_grading:
        import grading

        try:
            extra = grading.read_extra_tests(args.extra_tests, chapters)  # checked before any work
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        bundle = lambda: grading.write_bundle(args.out / "grading", chapters, extra)  # noqa: E731
    written = assignments.write(args.out, chapters)
    if bundle:
        written += bundle()
    for p in written:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
