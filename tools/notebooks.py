"""Chapter hygiene (the Colab bootstrap cell, outputs, the parameters cell, warnings) and page conventions.

    python tools/notebooks.py sync          # rewrite each notebook's first cell, strip outputs
    python tools/notebooks.py check         # exit 1 and list hygiene problems (the test suite runs this)
    python tools/notebooks.py conventions   # exit 1 and list departures from the page conventions
    python tools/notebooks.py stats         # per chapter: prose words, visible code lines, longest cell, figures

The page conventions (DESIGN section 5, "A textbook, not a lab notebook") that :func:`conventions`
checks: a "What this chapter shows" box (``:class: tip``) before the first section and a
"Takeaways" box (``:class: important``) after the last one (only Exercises and References follow);
evidence blocks written ``:::{admonition} Evidence: <what it supports>`` with ``:class: dropdown``;
no code cell longer than :data:`MAX_CELL_LINES` lines (the install cell, the parameters cell and
removed hidden-check cells aside); at most :data:`MAX_VISIBLE_LINES` unfolded code lines per chapter
(a cell is folded when tagged hide-input, hide-cell or remove-cell; check cells count); every code
line at most :data:`MAX_LINE_CHARS` characters (the generated install cell aside).

The Colab cell is generated from one place: the repository URL in ``_config.yml`` and the
package version in ``src/prunebook/_version.py`` (the release tag is ``v<version>``).

Warnings: a warning a chapter does not catch reaches the reader as stderr output, which fails
the book build (``execute.stderr_output: warn`` in ``_config.yml``, with ``-W``) and the smoke
runs (:func:`stderr_outputs`, tests/book/test_notebooks.py and tests/book/test_colab.py). A chapter that
expects a warning catches it in code, and says why: ``warnings.filterwarnings`` or
``simplefilter`` only inside ``with warnings.catch_warnings():`` (or ``catch_warnings(action=...)``),
with a ``category=`` and a comment on its line or the line above; hiding stderr instead (a
``remove-stderr`` tag, a cell-level ``output_stderr``) is refused, since Colab would still show it.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import sys
import typing

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB_TAG = "colab-install"
#: a chapter's file name: two digits and an underscore (other notebooks in _toc.yml are companion
#: pages, such as the interactive phase diagram: no exercises, no chapter number)
CHAPTER_NAME = re.compile(r"\d\d_")

COLAB_TEMPLATE = '''\
# Colab set-up: on Colab, install this book's helper package at the book's release, prunebook {version}
# (from PyPI, else from the release tag on GitHub). Elsewhere (a local clone, the book build,
# papermill) this cell does nothing. torch is never reinstalled: the running version is pinned.
import os, subprocess, sys
from importlib.metadata import version

try:
    import google.colab  # noqa: F401  (importable only on Colab)
    ON_COLAB = True
except ImportError:
    ON_COLAB = False
TARGETS = os.environ.get("PRUNEBOOK_INSTALL_TARGET")  # for tests: pip targets separated by "|"
TARGETS = TARGETS.split("|") if TARGETS else ["prunebook=={version}", "prunebook @ git+{url}@v{version}"]
if ON_COLAB:
    tried = []
    for target in TARGETS:
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", target, f"torch=={{version('torch')}}"],
                             capture_output=True, text=True)
        if pip.returncode == 0:
            break
        last = "\\n".join(("    " + line) for line in (pip.stdout + pip.stderr).strip().splitlines()[-10:])
        tried.append(f"pip install {{target!r}} (exit status {{pip.returncode}}):\\n{{last}}")
    else:
        raise RuntimeError(
            "Could not install prunebook {version}, the package this book's chapters import. Tried:\\n\\n"
            + "\\n\\n".join(tried)
            + "\\n\\nPlease report this, with the lines above, at {issues}"
        )'''


def release(root: pathlib.Path = ROOT) -> tuple[str, str]:
    """(repository URL, package version): the single source of both."""
    url = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]
    text = (root / "src" / "prunebook" / "_version.py").read_text()
    version = re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)
    return url, version


def issues_url(url: str) -> str:
    """Where readers report problems: the repository's issue tracker."""
    return url.rstrip("/") + "/issues"


def colab_source() -> str:
    url, version = release()
    return COLAB_TEMPLATE.format(url=url, version=version, issues=issues_url(url))


def toc_notebooks(*, pages: bool = False, root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Every chapter notebook listed in _toc.yml, in book order; with ``pages=True`` also the other
    notebook pages (companion pages without exercises, e.g. ``chapters/04b_explore_phase``)."""
    root = ROOT if root is None else root
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    found = [root / (f + ".ipynb") for f in files if (root / (f + ".ipynb")).exists()]
    return found if pages else [p for p in found if CHAPTER_NAME.match(p.name)]


def executed(path: pathlib.Path, root: pathlib.Path = ROOT) -> dict | None:
    """The chapter at ``path`` with the outputs of its last execution by the book build, or None.

    Read from the book's execution cache (jupyter-cache, ``execute.cache`` in _config.yml), which
    keys each entry on the notebook's code, so the outputs always belong to this code. (MyST-NB's
    own copy in ``_build/jupyter_execute`` is written without outputs when they came from the cache.)
    """
    import nbformat
    from jupyter_cache import get_cache

    config = yaml.safe_load((root / "_config.yml").read_text()).get("execute") or {}
    cache = root / config.get("cache", "_build/.jupyter_cache")
    if not cache.is_dir():
        return None
    try:
        _, merged = get_cache(cache).merge_match_into_notebook(nbformat.read(path, as_version=4))
    except KeyError:  # no execution of this code in the cache
        return None
    return json.loads(nbformat.writes(merged))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def stderr_outputs(nb: dict) -> list[str]:
    """Every stderr stream output of an executed notebook, as "cell <i>: <text>" (warnings a chapter did not catch)."""
    found = []
    for i, c in enumerate(nb["cells"]):
        for o in c.get("outputs", []) if c["cell_type"] == "code" else []:
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = o.get("text", "")
                found.append(f"cell {i}: {''.join(text) if isinstance(text, list) else text}".rstrip())
    return found


SILENCERS = {"filterwarnings", "simplefilter"}


def warning_problems(source: str) -> list[str]:
    """Warnings silenced without being scoped, targeted and explained (see the module's docstring)."""
    lines = source.splitlines()
    try:  # IPython magics and shell escapes are not Python: blank them, keeping the line numbers
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines))
    except SyntaxError:
        return []
    scoped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            isinstance(item.context_expr, ast.Call) and _called(item.context_expr) == "catch_warnings"
            for item in node.items
        ):
            scoped |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        action = _called(node) == "catch_warnings" and any(k.arg == "action" for k in node.keywords)
        if not (action or _called(node) in SILENCERS):
            continue
        what = f"line {node.lineno}: {_called(node)}"
        if id(node) not in scoped and not action:
            out.append(f"{what} outside `with warnings.catch_warnings():`")
        if not any(k.arg == "category" for k in node.keywords):
            out.append(f"{what} without a category=")
        near = lines[max(0, node.lineno - 2) : node.end_lineno]
        if not any("#" in ln for ln in near):
            out.append(f"{what} without a comment saying why (on its line or the line above)")
    return out


def _called(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def problems(path: pathlib.Path) -> list[str]:
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    out = []
    if not cells or _source(cells[0]) != colab_source() or cells[0]["cell_type"] != "code":
        out.append("first cell is not the current Colab set-up cell (run tools/notebooks.py sync)")
    for i, c in enumerate(cells):
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            out.append(f"cell {i} has outputs or an execution count")
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        out.append(f"needs exactly one cell tagged 'parameters', found {len(tagged)}")
    elif "smoke" not in _source(cells[tagged[0]]):
        out.append("the parameters cell has no 'smoke' switch")
    for i, c in enumerate(cells):
        if c["cell_type"] != "code":
            continue
        out += [f"cell {i}: {w}" for w in warning_problems(_source(c))]
        if "remove-stderr" in c.get("metadata", {}).get("tags", []) or "output_stderr" in str(c["metadata"]):
            out.append(f"cell {i}: hides its stderr (catch the warning in code instead)")
    if "output_stderr" in str(nb.get("metadata", {})):
        out.append("the notebook's metadata hides stderr (catch the warning in code instead)")
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        out.append("kernelspec must be python3")
    return [f"{_name(path)}: {p}" for p in out]


def sync(path: pathlib.Path) -> None:
    nb = json.loads(path.read_text())
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "colab-install",
        "metadata": {"tags": [COLAB_TAG, "hide-cell"]},  # collapsed in the rendered book
        "outputs": [],
        "source": colab_source().splitlines(keepends=True),
    }
    cells = nb["cells"]
    if cells and COLAB_TAG in cells[0].get("metadata", {}).get("tags", []):
        cells[0] = cell
    else:
        cells.insert(0, cell)
    for c in cells:
        if c["cell_type"] == "code":
            c["outputs"] = []
            c["execution_count"] = None
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# page conventions and the per-chapter statistics

MAX_CELL_LINES = 30
MAX_VISIBLE_LINES = 150
MAX_LINE_CHARS = 88
FOLDED_TAGS = {"hide-input", "hide-cell", "remove-cell"}
SHOWS_TITLE, TAKEAWAYS_TITLE, EVIDENCE_PREFIX = "What this chapter shows", "Takeaways", "Evidence"
#: the sections that may follow the Takeaways box
CLOSING_SECTIONS = ("Exercises", "References", "Further reading", "Bibliography")

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,}|~{3,})[ \t]*(?P<info>.*)$")


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _lines(cell) -> list[str]:
    text = _source(cell).strip("\n")
    return text.split("\n") if text else []


def cell_exempt(cell) -> bool:
    """Cells the 30-line rule leaves aside: the generated install cell, the papermill parameters cell
    and hidden-check cells removed from the page."""
    tags = _tags(cell)
    return COLAB_TAG in tags or "parameters" in tags or {"hidden-check", "remove-cell"} <= tags


def folded(cell) -> bool:
    """A code cell the rendered page folds or removes (hide-input, hide-cell, remove-cell)."""
    return bool(_tags(cell) & FOLDED_TAGS)


class Block(typing.NamedTuple):
    """A fenced MyST directive of a markdown cell: name, argument, options, the cell and line."""

    name: str
    argument: str
    options: dict
    fence: str
    cell: int
    line: int
    body: str


def directives(cells) -> list[Block]:
    """Every fenced directive (``` or :::) of the markdown cells, nested ones included, in order."""
    found: list[Block] = []

    def scan(text: str, cell: int, offset: int):
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            fence = m.group("fence")
            close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            info = m.group("info").strip()
            d = re.match(r"^\{(?P<name>[^}\s]+)\}[ \t]*(?P<arg>.*)$", info)
            body = lines[i + 1 : j]
            if d:
                options, k = {}, 0
                while k < len(body) and re.match(r"^[ \t]*:[\w-]+:", body[k]):
                    key, _, value = body[k].strip()[1:].partition(":")
                    options[key] = value.strip()
                    k += 1
                found.append(Block(d.group("name"), d.group("arg").strip(), options, fence, cell, offset + i,
                                   "\n".join(body[k:])))
                if d.group("name") not in ("code", "code-block", "math"):
                    scan("\n".join(body), cell, offset + i + 1)
            i = j + 1

    for k, c in enumerate(cells):
        if c["cell_type"] == "markdown":
            scan(_source(c), k, 0)
    return found


def _headings(cells) -> list[tuple[int, int, int, str]]:
    """(cell, line, level, title) of every Markdown heading outside fenced blocks."""
    out = []
    for k, c in enumerate(cells):
        if c["cell_type"] != "markdown":
            continue
        inside = None
        for n, line in enumerate(_source(c).split("\n")):
            m = FENCE.match(line)
            if inside is None and m:
                inside = m.group("fence")
                continue
            if inside is not None:
                if re.match(rf"^[ \t]*{re.escape(inside[0])}{{{len(inside)},}}[ \t]*$", line):
                    inside = None
                continue
            h = re.match(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", line)
            if h:
                out.append((k, n, len(h.group(1)), h.group(2).strip()))
    return out


def conventions(path: pathlib.Path) -> list[str]:
    """Every way a chapter departs from the page conventions (module docstring), one message each."""
    nb = json.loads(path.read_text())
    cells, out = nb["cells"], []
    blocks = directives(cells)
    admonitions = [b for b in blocks if b.name == "admonition"]
    sections = [((k, n), title) for k, n, level, title in _headings(cells) if level == 2]

    def where(b: Block) -> str:
        return f"cell {b.cell}, line {b.line + 1}"

    def classes(b: Block) -> set[str]:
        return set(b.options.get("class", "").split())

    for title, css, place in ((SHOWS_TITLE, "tip", "opens"), (TAKEAWAYS_TITLE, "important", "closes")):
        found = [b for b in admonitions if b.argument == title]
        if len(found) != 1:
            out.append(f"needs exactly one '{{admonition}} {title}' box (:class: {css}); found {len(found)}")
            continue
        b = found[0]
        if css not in classes(b):
            out.append(f"{where(b)}: the '{title}' box needs ':class: {css}'")
        if place == "opens" and sections and sections[0][0] < (b.cell, b.line):
            out.append(f"{where(b)}: the '{title}' box must come before the first section ('## {sections[0][1]}')")
        if place == "closes":
            after = [t for at, t in sections if at > (b.cell, b.line) and not t.startswith(CLOSING_SECTIONS)]
            if after:
                out.append(f"{where(b)}: the '{title}' box must close the chapter; sections after it: {after}")
    for b in admonitions:
        if b.argument.startswith(EVIDENCE_PREFIX):
            if not re.fullmatch(rf"{EVIDENCE_PREFIX}: \S.*", b.argument):
                out.append(f"{where(b)}: an evidence block is titled 'Evidence: <what it supports>', got {b.argument!r}")
            if "dropdown" not in classes(b):
                out.append(f"{where(b)}: evidence block {b.argument!r} needs ':class: dropdown' (folded)")
            if not b.fence.startswith(":"):
                out.append(f"{where(b)}: evidence block {b.argument!r}: write it as ':::{{admonition}}'")
    for b in blocks:
        if b.name == "dropdown" and b.argument.startswith(EVIDENCE_PREFIX):
            out.append(f"{where(b)}: evidence block {b.argument!r}: use ':::{{admonition}} Evidence: ...' with "
                       "':class: dropdown', not {dropdown}")
    visible = 0
    for k, c in enumerate(cells):
        if c["cell_type"] != "code":
            continue
        lines = _lines(c)
        if not cell_exempt(c) and len(lines) > MAX_CELL_LINES:
            out.append(f"cell {k}: {len(lines)} lines of code (at most {MAX_CELL_LINES}; move the work into prunebook.book)")
        if COLAB_TAG not in _tags(c):
            long = [n + 1 for n, line in enumerate(lines) if len(line) > MAX_LINE_CHARS]
            if long:
                out.append(f"cell {k}: lines {long} are longer than {MAX_LINE_CHARS} characters")
        if not folded(c):
            visible += len(lines)
    if visible > MAX_VISIBLE_LINES:
        out.append(f"{visible} unfolded code lines (at most about {MAX_VISIBLE_LINES}; fold plotting, glue and claim "
                   "cells with hide-input)")
    return [f"{_name(path)}: {p}" for p in out]


def _name(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _prose(text: str) -> str:
    """Markdown without what is not prose: code blocks, display math, directive fences and options,
    label targets, HTML comments; inline math and roles count as one word each."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^(`{3,}|~{3,})[ \t]*(?!\{)[^\n]*\n.*?^\1[ \t]*$", " ", text, flags=re.M | re.S)
    text = re.sub(r"^(`{3,}|~{3,}|:{3,})[ \t]*\{math\}.*?^\1[ \t]*$", " ", text, flags=re.M | re.S)
    text = re.sub(r"\$\$.+?\$\$(?:[ \t]*\([^()\s]+\))?", " ", text, flags=re.S)
    text = re.sub(r"^[ \t]*(`{3,}|~{3,}|:{3,}).*$", " ", text, flags=re.M)
    text = re.sub(r"^[ \t]*:[\w-]+:.*$", " ", text, flags=re.M)
    text = re.sub(r"^[ \t]*\([^()\s]+\)=[ \t]*$", " ", text, flags=re.M)
    text = re.sub(r"\$[^$\n]+\$", " MATH ", text)
    text = re.sub(r"\{[\w:.+-]+\}`[^`]*`", " ROLE ", text)
    return text


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]\S*", _prose(text)))


def stats(path: pathlib.Path) -> dict:
    """One chapter's size as a reader meets it: prose words in the main text, in evidence blocks and
    in exercises (with their solutions); visible (unfolded) code lines; the longest code cell the
    30-line rule counts; figures (code cells with a MyST-NB figure, {figure} and {glue:figure})."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    blocks = directives(cells)
    evidence = sum(_words(b.body) for b in blocks if b.name == "admonition" and b.argument.startswith(EVIDENCE_PREFIX))
    top_level = [b for b in blocks if not any(o is not b and o.cell == b.cell and o.line < b.line and
                                               b.line < o.line + o.body.count("\n") + 3 for o in blocks)]
    exercises = sum(_words(b.body) + _words(b.argument) for b in top_level if b.name in ("exercise", "solution"))
    total = sum(_words(_source(c)) for c in cells if c["cell_type"] == "markdown")
    code = [(k, c) for k, c in enumerate(cells) if c["cell_type"] == "code"]
    counted = [(len(_lines(c)), -k) for k, c in code if not cell_exempt(c)]
    longest = max(counted, default=(0, 1))  # the first of the longest
    md = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    figures = sum(bool(c["metadata"].get("mystnb", {}).get("figure")) for _, c in code)
    figures += len(re.findall(r"\{(?:glue:)?figure\}", md))
    return {
        "chapter": path.stem,
        "words_main": total - evidence - exercises,
        "words_evidence": evidence,
        "words_exercises": exercises,
        "evidence_blocks": sum(b.name == "admonition" and b.argument.startswith(EVIDENCE_PREFIX) for b in blocks),
        "visible_code_lines": sum(len(_lines(c)) for _, c in code if not folded(c)),
        "longest_cell": longest[0],
        "longest_cell_index": -longest[1],
        "code_cells": len(code),
        "figures": figures,
    }


def stats_table(paths) -> str:
    """A Markdown table of :func:`stats` for ``paths``."""
    rows = [stats(p) for p in paths]
    head = ["chapter", "words: main", "words: evidence", "words: exercises", "evidence blocks",
            "visible code lines", "longest cell (cell #)", "figures"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['chapter']} | {r['words_main']} | {r['words_evidence']} | {r['words_exercises']} | "
                     f"{r['evidence_blocks']} | {r['visible_code_lines']} | {r['longest_cell']} ({r['longest_cell_index']}) "
                     f"| {r['figures']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    commands = ("sync", "check", "conventions", "stats")
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    paths = toc_notebooks()
    if len(argv) > 1:  # named notebooks (for authors: a chapter being written, or a copy)
        paths = [pathlib.Path(a).resolve() for a in argv[1:]]
    elif argv[0] in ("sync", "check"):
        paths = toc_notebooks(pages=True)
    if argv[0] == "sync":
        for p in paths:
            sync(p)
        return 0
    if argv[0] == "stats":
        print(stats_table(paths))
        return 0
    check = problems if argv[0] == "check" else conventions
    found = [msg for p in paths for msg in check(p)]
    print("\n".join(found) or f"{len(paths)} notebooks OK")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
