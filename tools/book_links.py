"""Sphinx extension (``sphinx.local_extensions`` in _config.yml): the book's launch and download links.

- The Colab button of a chapter opens that chapter's Colab edition *at the book's release*:
  ``<colab_url>/github/<org>/<repo>/blob/colab/v<version>/<docname>.ipynb``. The release workflow
  publishes ``make colab``'s output (``_build/colab``) under ``v<version>/`` on the ``colab`` branch,
  so the notebook a reader opens, the package its install cell installs and the page they came
  from are the same release (``main`` moves on; a release does not).
- The ``.ipynb`` download of a chapter serves the *executed* notebook (with its outputs and
  figures), written into the site as ``_notebooks/<docname>.ipynb`` from the execution cache
  (tools/notebooks.py ``executed``).

The repository comes from ``repository.url`` and the version from ``src/prunebook/_version.py``,
read by tools/notebooks.py (the single source of both).
"""

import importlib.util
import json
import pathlib
import re

TOOLS = pathlib.Path(__file__).resolve().parent
EXECUTED_DIR = "_notebooks"  # in the built site
COLAB_BRANCH = "colab"


def _notebooks():
    spec = importlib.util.spec_from_file_location("prunebook_tools_notebooks", TOOLS / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def colab_url(colab: str, repo_url: str, version: str, docname: str) -> str:
    """The Colab link of one chapter's edition at the release ``version``."""
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repo_url)
    if not m:
        raise ValueError(f"repository.url {repo_url!r}: Colab opens GitHub repositories only")
    return f"{colab.rstrip('/')}/github/{m.group(1)}/{m.group(2)}/blob/{COLAB_BRANCH}/v{version}/{docname}.ipynb"


def _buttons(buttons):
    for b in buttons:
        yield b
        yield from _buttons(b.get("buttons", []))


def page_links(app, pagename, templatename, context, doctree):
    if context.get("page_source_suffix") != ".ipynb":
        return
    url, version = _notebooks().release(pathlib.Path(app.confdir))
    for button in _buttons(context.get("header_buttons", [])):
        if "colab.research.google.com" in str(button.get("url", "")):
            colab = button["url"].split("/github/")[0]
            button["url"] = colab_url(colab, url, version, pagename)
        if button.get("label") == "download-source-button":
            button["url"] = f"{context['pathto'](EXECUTED_DIR, 1)}/{pagename}.ipynb"
            button["tooltip"] = "Download the notebook with its outputs"


def write_executed(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    tools = _notebooks()
    for docname in sorted(app.env.found_docs):
        source = pathlib.Path(app.env.doc2path(docname))
        if source.suffix != ".ipynb":
            continue
        nb = tools.executed(source, pathlib.Path(app.confdir))
        if nb is None:
            raise RuntimeError(f"{docname}: no executed copy in the execution cache for the download link")
        target = pathlib.Path(app.outdir) / EXECUTED_DIR / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def setup(app):
    # after sphinx-book-theme has added its launch and download buttons (priority 501)
    app.connect("html-page-context", page_links, priority=900)
    app.connect("build-finished", write_executed)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
