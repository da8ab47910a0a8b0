"""The Colab edition as a reader sees it: each notebook rendered to HTML by nbconvert, its math
typeset by the book's own MathJax (served locally, with undefined commands made errors), opened
in headless Chromium. No MathJax error, no raw MyST, nothing fetched from outside; screenshots of
two chapters in _build/screenshots/colab/."""

import functools
import http.server
import json
import re
import threading
import urllib.parse

import pytest

from conftest import ROOT, load_tool
from test_browser import browser, non_local, requests_made  # noqa: F401  (the browser fixture)

nbtools = load_tool("notebooks")
CHAPTERS = [p.stem for p in nbtools.toc_notebooks(pages=True)]
SCREENSHOTS = {"01_data_model": None, "03_gd_dynamics": "Theorem 3.1"}  # chapter -> text scrolled to
MATHJAX = "_static/mathjax/tex-chtml-full.js"

# nbconvert's lab template, with MathJax 3 from the book instead of MathJax 2 from a CDN, and
# without require.js, mermaid and the widget manager (CDN scripts an edition notebook does not need)
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script>
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
    displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
    processEscapes: true,
    processEnvironments: true,
    // an undefined command is an error here (Colab would show it as red raw text)
    packages: {'[-]': ['noundefined', 'noerrors']}
  }
};
</script>
<script src="{{ resources.mathjax_url }}"></script>
{%- endblock html_head_js_mathjax -%}
"""


@pytest.fixture(scope="module")
def rendered(colab_edition, tmp_path_factory):
    """Each edition notebook as nbconvert HTML under _build/colab-render/ (not in _build/colab,
    which the release workflow publishes)."""
    from nbconvert import HTMLExporter

    templates = tmp_path_factory.mktemp("templates")
    (templates / "colab_mathjax3").mkdir()
    (templates / "colab_mathjax3" / "index.html.j2").write_text(TEMPLATE)
    (templates / "colab_mathjax3" / "conf.json").write_text(json.dumps({"base_template": "lab", "mimetypes": {"text/html": True}}))
    exporter = HTMLExporter(template_name="colab_mathjax3", extra_template_basedirs=[str(templates)],
                            mathjax_url="/" + MATHJAX)
    out = ROOT / "_build" / "colab-render"
    out.mkdir(parents=True, exist_ok=True)
    for chapter in CHAPTERS:
        body, _ = exporter.from_filename(str(colab_edition / "chapters" / f"{chapter}.ipynb"))
        (out / f"{chapter}.html").write_text(body)
    return out


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_the_template_makes_undefined_commands_errors(rendered, server, browser, tmp_path):  # noqa: F811
    """Control: the same rendering shows a MathJax error for a command MathJax does not know."""
    page = rendered / "_control.html"
    good = (rendered / f"{CHAPTERS[1]}.html").read_text()
    page.write_text(good.replace("</body>", "<p>$\\lVert x \\rVerte_1$ and $\\bmu$</p></body>"))
    browser.get(urllib.parse.urljoin(server, page.relative_to(ROOT).as_posix()))
    assert _typeset(browser)
    assert browser.execute_script("return document.querySelectorAll('mjx-merror').length") == 2
    page.unlink()


def _typeset(browser) -> bool:  # noqa: F811
    """Wait (polling, up to 20 s) for MathJax to start, then for its first typesetting to finish: a
    page can hand control back before the script has defined MathJax.startup (seen on CI)."""
    browser.set_script_timeout(30)
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; const t0 = Date.now();"
        "(function wait() {"
        "  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {"
        "    MathJax.startup.promise.then(() => done(true), () => done(false));"
        "  } else if (Date.now() - t0 > 20000) { done(false); } else { setTimeout(wait, 100); }"
        "})();")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_edition_renders_cleanly(rendered, server, browser, chapter, colab_edition):  # noqa: F811
    requests_made(browser)
    browser.get(urllib.parse.urljoin(server, (rendered / f"{chapter}.html").relative_to(ROOT).as_posix()))
    assert _typeset(browser), "MathJax (served with the book) loaded and typeset the page"
    errors = browser.execute_script(
        "return Array.from(document.querySelectorAll('mjx-merror')).map("
        "e => (e.closest('mjx-container').getAttribute('aria-label') || e.textContent).slice(0, 200))")
    assert not errors, f"MathJax errors: {errors}"
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 10
    # the prose as a reader sees it: Markdown cells, without code spans and blocks
    text = browser.execute_script(
        "return Array.from(document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')).map(c => {"
        "  const k = c.cloneNode(true); k.querySelectorAll('code, pre, mjx-container').forEach(e => e.remove());"
        "  return k.innerText; }).join('\\n')")
    raw = re.findall(r"\{[A-Za-z][\w:.+-]*\}`?[^\n]{0,30}|^\s*\([\w-]+\)=\s*$|:::|```", text, re.M)
    assert not raw, f"raw MyST in the rendered edition: {raw}"
    assert "$" not in text and "\\(" not in text, "untypeset TeX delimiters"
    details = browser.execute_script("return Array.from(document.querySelectorAll('details')).map(d => d.open)")
    source = (ROOT / "chapters" / f"{chapter}.ipynb").read_text()
    edition = json.loads((colab_edition / "chapters" / f"{chapter}.ipynb").read_text())
    written = sum("".join(c["source"]).count("<details>") for c in edition["cells"] if c["cell_type"] == "markdown")
    assert written >= source.count("{solution}")
    assert details == [False] * written, "each solution (and dropdown) in a closed <details>"
    outside = non_local(requests_made(browser), server)
    assert not outside, f"the edition requested non-local URLs: {outside}"
    if chapter in SCREENSHOTS:
        shots = ROOT / "_build" / "screenshots" / "colab"
        shots.mkdir(parents=True, exist_ok=True)
        if SCREENSHOTS[chapter]:
            browser.execute_script(
                "const e = Array.from(document.querySelectorAll('.jp-RenderedMarkdown blockquote'))"
                f".find(b => b.innerText.includes({SCREENSHOTS[chapter]!r}));"
                "e.scrollIntoView(); document.querySelectorAll('details').forEach(d => d.open = true);")
            assert _typeset(browser)
        assert browser.save_screenshot(str(shots / f"{chapter}.png"))
