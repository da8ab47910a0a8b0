"""Every page of the built book in a real browser (headless Chromium), with screenshots."""

import functools
import http.server
import pathlib
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from test_book import CHAPTERS

CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
PAGES = ["intro"] + [f"chapters/{c}" for c in CHAPTERS] + ["chapters/bibliography"]


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
    return sorted({u for u in urls if not u.startswith((server, "data:", "blob:", "about:"))})


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
    browser.get(url)
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title.strip(), "the page has a title"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])"
    )
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"
    if page != "chapters/bibliography":
        # MathJax (served with the book) typeset the mathematics: no raw TeX delimiters are left
        browser.execute_script("return window.MathJax && MathJax.startup && MathJax.startup.promise")
        assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0
        text = browser.execute_script("return document.querySelector('main').innerText")
        assert "\\(" not in text and "\\[" not in text, "untypeset TeX on the page"
    if page.startswith("chapters/0"):
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
    shots = built_book.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    height = browser.execute_script("return Math.min(document.body.scrollHeight, 4000)")
    browser.set_window_size(1280, max(800, height))
    assert browser.save_screenshot(str(shots / (pathlib.Path(page).name + ".png")))
    browser.set_window_size(1280, 1600)
    outside = non_local(requests_made(browser), server)
    assert not outside, f"the page requested (blocked) non-local URLs: {outside}"


def test_the_browser_blocks_and_reports_non_local_requests(browser):
    """Control for the offline check above: a page that pulls a script from a CDN is reported, and
    the script does not load."""
    requests_made(browser)
    browser.get("data:text/html,<script src='https://cdn.jsdelivr.net/npm/leak@1/leak.js'></script>"
                "<img src='http://example.org/pixel.png'>")
    outside = non_local(requests_made(browser), "http://127.0.0.1:1/")
    assert outside == ["http://example.org/pixel.png", "https://cdn.jsdelivr.net/npm/leak@1/leak.js"]
    assert browser.execute_script("return document.images[0].naturalWidth") == 0, "blocked, not loaded"
