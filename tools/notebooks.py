"""Chapter hygiene: the Colab bootstrap cell, outputs, the parameters cell, warnings.

    python tools/notebooks.py sync    # rewrite each chapter's first cell, strip outputs
    python tools/notebooks.py check   # exit 1 and list problems (the test suite runs this)

The Colab cell is generated from one place: the repository URL in ``_config.yml`` and the
package version in ``src/prunebook/_version.py`` (the release tag is ``v<version>``).

Warnings: a warning a chapter does not catch reaches the reader as stderr output, which fails
the book build (``execute.stderr_output: warn`` in ``_config.yml``, with ``-W``) and the smoke
runs (:func:`stderr_outputs`, tests/test_notebooks.py and tests/test_colab.py). A chapter that
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

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB_TAG = "colab-install"

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


def toc_notebooks() -> list[pathlib.Path]:
    """Every chapter notebook listed in _toc.yml, in book order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
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
    return [ROOT / (f + ".ipynb") for f in files if (ROOT / (f + ".ipynb")).exists()]


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
    return [f"{path.relative_to(ROOT)}: {p}" for p in out]


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


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("sync", "check"):
        print(__doc__)
        return 2
    paths = toc_notebooks()
    if argv[0] == "sync":
        for p in paths:
            sync(p)
        return 0
    found = [msg for p in paths for msg in problems(p)]
    print("\n".join(found) or f"{len(paths)} notebooks OK")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
