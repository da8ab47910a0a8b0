"""Every page of the built book in a real browser (headless Chromium, a 1280-px window), with
screenshots in _build/screenshots: every page, the top of every page (top/), the interactive figure.

Besides loading, links and typesetting: no page requests a non-local URL; no display equation is
wider than its container; every figure's smallest font is at least 9 pt as displayed; the
interactive figure changes when a slider moves."""

import functools
import http.server
import pathlib
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from test_book import CHAPTERS, NOTEBOOK_PAGES

CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
PAGES = ["intro"] + [f"chapters/{c}" for c in NOTEBOOK_PAGES] + ["chapters/bibliography", "CHANGELOG"]
EXPLORE = "chapters/04b_explore_phase"
WINDOW = (1280, 1600)


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM and CHROMEDRIVER, "chromium (or google-chrome) and chromedriver are needed: `make browser` installs them"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                 # offline: every host but the local server is unresolvable, so nothing leaves the machine
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    yield driver
    driver.quit()


def requests_made(driver) -> list[str]:
    """The URLs the browser requested since the last call (Chrome's performance log, drained)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def non_local(urls, server: str) -> list[str]:
    """URLs that would leave the machine (the browser's own chrome:// pages, such as the new-tab page
    a fresh session loads first, do not)."""
    local = (server, "data:", "blob:", "about:", "chrome:", "chrome-untrusted:", "chrome-extension:", "devtools:")
    return sorted({u for u in urls if not u.startswith(local)})


@functools.lru_cache(maxsize=None)
def _status_and_ids(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode("utf-8", "replace")
            status = r.status
    except urllib.error.HTTPError as e:
        return e.code, frozenset()
    ids = parse_text(body).ids if url.endswith((".html", "/")) else set()
    return status, frozenset(ids)


def parse_text(text):
    import test_book

    p = test_book.Page()
    p.feed(text)
    return p


@pytest.mark.parametrize("page", PAGES)
def test_page_in_chromium(server, browser, built_book, page):
    url = urllib.parse.urljoin(server, page + ".html")
    requests_made(browser)  # drain what earlier pages left
    _open(browser, url)
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title.strip(), "the page has a title"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])"
    )
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"
    shots = built_book.parent / "screenshots"
    (shots / "top").mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "top" / (pathlib.Path(page).name + ".png"))), "the page's top"
    if page not in ("chapters/bibliography", "CHANGELOG"):
        # MathJax (served with the book) typeset the mathematics: no raw TeX delimiters are left
        browser.execute_script("return window.MathJax && MathJax.startup && MathJax.startup.promise")
        assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0
        text = browser.execute_script("return document.querySelector('main').innerText")
        assert "\\(" not in text and "\\[" not in text, "untypeset TeX on the page"
    if page in [f"chapters/{c}" for c in CHAPTERS]:
        assert browser.execute_script("return document.querySelectorAll('div.exercise').length") > 0
        assert len(images) >= 2
    if page == "chapters/03_gd_dynamics":
        assert browser.execute_script("return document.querySelectorAll('div.theorem').length") >= 2
    hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    internal = {h for h in hrefs if h.startswith(server)}
    assert internal, "the page links to the rest of the book"
    for h in sorted(internal):
        target, _, fragment = h.partition("#")
        status, ids = _status_and_ids(target)
        assert status == 200, f"{h} -> HTTP {status}"
        if fragment and target.endswith(".html"):
            assert urllib.parse.unquote(fragment) in ids, f"{h}: no element with id {fragment!r}"
    height = browser.execute_script("return Math.min(document.body.scrollHeight, 4000)")
    browser.set_window_size(1280, max(800, height))
    assert browser.save_screenshot(str(shots / (pathlib.Path(page).name + ".png")))
    browser.set_window_size(*WINDOW)
    outside = non_local(requests_made(browser), server)
    assert not outside, f"the page requested (blocked) non-local URLs: {outside}"


def _open(browser, url: str, timeout: float = 60) -> None:
    """Load ``url`` and wait until the document has loaded (under load, Chrome can hand back
    control while the document is still parsing)."""
    import time

    browser.get(url)
    deadline = time.time() + timeout
    while browser.execute_script("return document.readyState") != "complete" and time.time() < deadline:
        time.sleep(0.1)


def _typeset(browser, timeout: float = 30) -> bool:
    """Wait for MathJax to finish typesetting (a flag set when its promise settles, polled)."""
    import time

    started = browser.execute_script(
        "if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;"
        "window.__typeset = null;"
        "MathJax.startup.promise.then(() => { window.__typeset = true; }, () => { window.__typeset = false; });"
        "return true;")
    deadline = time.time() + timeout
    while started and time.time() < deadline:
        state = browser.execute_script("return window.__typeset")
        if state is not None:
            return state
        time.sleep(0.1)
    return False


#: every display equation: its rendered width, its container's, and its TeX (for the message)
DISPLAYS = """
return Array.from(document.querySelectorAll('mjx-container[display="true"]')).map(c => {
  const math = c.querySelector('mjx-math');
  const box = c.getBoundingClientRect(), inner = math.getBoundingClientRect();
  const tex = (c.parentElement.getAttribute('data-tex') || c.getAttribute('aria-label')
               || c.parentElement.id || c.parentElement.textContent).slice(0, 80);
  return [inner.left - box.left, box.right - inner.right, inner.width, box.width, tex];
});"""


@pytest.mark.parametrize("page", [p for p in PAGES if p not in ("chapters/bibliography", "CHANGELOG")])
def test_display_equations_fit_the_column(server, browser, page):
    """No display equation is wider than the text column at a 1280-px window (none is cut off)."""
    browser.set_window_size(*WINDOW)
    _open(browser, urllib.parse.urljoin(server, page + ".html"))
    assert _typeset(browser), "MathJax typeset the page"
    displays = browser.execute_script(DISPLAYS)
    wide = [f"{tex!r}: {width:.0f} px in a {column:.0f}-px column"
            for left, right, width, column, tex in displays if left < -1 or right < -1]
    assert not wide, "display equations overflow the column (break them with aligned and \\\\):\n" + "\n".join(wide)


def test_the_overflow_check_sees_a_wide_equation(server, browser):
    """Control: the same measurement flags a display equation wider than its column."""
    browser.set_window_size(*WINDOW)
    _open(browser, urllib.parse.urljoin(server, "intro.html"))
    assert _typeset(browser)
    wide = " + ".join(f"x_{{{k}}}" for k in range(120))
    browser.execute_script(
        "const d = document.createElement('div'); d.className = 'math'; d.textContent = '\\\\[' + arguments[0] + '\\\\]';"
        "document.querySelector('main section, main').appendChild(d);"
        "MathJax.startup.promise = MathJax.typesetPromise([d]);", wide)
    assert _typeset(browser)
    left, right, width, column, _ = browser.execute_script(DISPLAYS)[-1]
    assert right < -1 and width > column


#: every figure of the article (the book's images, not the theme's icons): its URL, natural and
#: displayed widths, folded blocks opened first
IMAGES = """
document.querySelectorAll('details').forEach(d => d.open = true);
document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
return Array.from(document.querySelectorAll('main img')).filter(i => (i.currentSrc || i.src).includes('/_images/'))
  .map(i => [i.currentSrc || i.src, i.naturalWidth, i.getBoundingClientRect().width]);"""


def displayed_font(min_font_pt: float, dpi: float, natural: float, shown: float) -> float:
    """A figure's smallest font as displayed, in points: its size in the figure, times the scale the
    page shows the image at (displayed / natural width), times dpi / 96 when the figure was drawn at
    less than 96 dpi (CSS's pixels per inch; at 96 dpi or more, a natural-size image shows its
    fonts at least at their nominal size, and the check counts them at that)."""
    return min_font_pt * (shown / natural) * min(1.0, dpi / 96)


@pytest.mark.parametrize("page", PAGES)
def test_figure_text_is_legible_as_displayed(server, browser, built_book, page):
    """Each figure's smallest matplotlib font x (displayed width / natural width) >= 9 pt. The
    figures carry their smallest font and dpi in PNG text chunks (prunebook.book.plots.use_book_style)."""
    from prunebook.book.plots import MIN_FONT_PT, png_font_metadata

    browser.set_window_size(*WINDOW)
    _open(browser, urllib.parse.urljoin(server, page + ".html"))
    images = browser.execute_script(IMAGES)
    report, small, unmarked = [], [], []
    for src, natural, shown in images:
        if not src.startswith(server) or not src.lower().endswith(".png"):
            continue
        with urllib.request.urlopen(src, timeout=10) as r:
            meta = png_font_metadata(r.read())
        name = src.rsplit("/", 1)[-1]
        if meta["min_font_pt"] is None:
            unmarked.append(name)
            continue
        size = displayed_font(meta["min_font_pt"], meta["dpi"] or 96.0, natural, shown)
        report.append({"page": page, "image": name, "min_font_pt": meta["min_font_pt"], "dpi": meta["dpi"],
                       "natural_px": natural, "displayed_px": round(shown, 1), "displayed_pt": round(size, 2)})
        if size < MIN_FONT_PT - 1e-6:
            small.append(f"{name}: {meta['min_font_pt']:g} pt x {shown:.0f}/{natural} px = {size:.1f} pt")
    out = built_book.parent / "screenshots" / "figure-fonts"
    out.mkdir(parents=True, exist_ok=True)
    (out / (pathlib.Path(page).name + ".json")).write_text(__import__("json").dumps(report, indent=1))
    assert not unmarked, f"figures without their font size (drawn before use_book_style()?): {unmarked}"
    assert not small, f"text below {MIN_FONT_PT:g} pt as displayed at 1280 px:\n" + "\n".join(small)


def test_displayed_font_scales_with_the_displayed_width():
    assert displayed_font(10, 110, 880, 730) == pytest.approx(10 * 730 / 880)
    assert displayed_font(10, 72, 720, 720) == pytest.approx(7.5), "a low-dpi figure shows small text"
    assert displayed_font(12, 200, 1440, 730) < 9, "a high-dpi figure shrunk to the column fails"


def _svg(browser) -> str:
    return browser.execute_script("const s = document.querySelector('.prunebook-explorer svg'); return s ? s.outerHTML : ''")


def test_the_interactive_figure_redraws_when_a_slider_moves(server, browser, built_book):
    """Kernel-free: Vega (served by the book) draws the figure; moving the seeds slider recolours
    the cells, moving the race-constant slider moves the boundary; nothing is fetched from outside."""
    import time

    shots = built_book.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    browser.set_window_size(*WINDOW)
    requests_made(browser)
    _open(browser, urllib.parse.urljoin(server, EXPLORE + ".html"))
    deadline = time.time() + 30
    while not _svg(browser) and time.time() < deadline:
        time.sleep(0.2)
    first = _svg(browser)
    assert first, "the figure was drawn"
    sliders = browser.execute_script(
        "return Array.from(document.querySelectorAll('.prunebook-explorer input[type=range]')).map(i => i.name)")
    assert sliders == ["seeds", "logC", "level"]
    browser.execute_script("document.querySelector('.prunebook-explorer').scrollIntoView()")
    assert browser.save_screenshot(str(shots / "explore-figure.png"))

    def move(name, value):
        browser.execute_script(
            "const i = document.querySelector(`.prunebook-explorer input[name='${arguments[0]}']`);"
            "i.value = arguments[1]; i.dispatchEvent(new Event('input', {bubbles: true}));", name, value)
        before, deadline = _svg(browser), time.time() + 10
        while _svg(browser) == before and time.time() < deadline:
            time.sleep(0.1)
        return _svg(browser)

    one_seed = move("seeds", 1)
    assert one_seed != first, "the cells changed with the seeds"
    paths = browser.execute_script("return Array.from(document.querySelectorAll('.prunebook-explorer svg path'))"
                                   ".map(p => p.getAttribute('d'))")
    moved = move("logC", float(browser.execute_script(
        "return document.querySelector(\".prunebook-explorer input[name='logC']\").min")))
    assert moved != one_seed
    assert browser.execute_script("return Array.from(document.querySelectorAll('.prunebook-explorer svg path'))"
                                  ".map(p => p.getAttribute('d'))") != paths, "the boundary moved"
    assert browser.save_screenshot(str(shots / "explore-figure-moved.png"))
    urls = requests_made(browser)
    assert any(u.startswith(server) and u.endswith("/vega/vega-embed.min.js") for u in urls), "Vega came from the book"
    outside = non_local(urls, server)
    assert not outside, f"the interactive page requested non-local URLs: {outside}"


def test_the_browser_blocks_and_reports_non_local_requests(browser):
    """Control for the offline check above: a page that pulls a script from a CDN is reported, and
    the script does not load."""
    requests_made(browser)
    browser.get("data:text/html,<script src='https://cdn.jsdelivr.net/npm/leak@1/leak.js'></script>"
                "<img src='http://example.org/pixel.png'>")
    outside = non_local(requests_made(browser), "http://127.0.0.1:1/")
    assert outside == ["http://example.org/pixel.png", "https://cdn.jsdelivr.net/npm/leak@1/leak.js"]
    assert browser.execute_script("return document.images[0].naturalWidth") == 0, "blocked, not loaded"
