"""Build one chapter (with the introduction) into a throwaway book and screenshot it at 1280 px.

    python tools/preview.py chapters/03_gd_dynamics [--smoke] [--out _build/preview]

For authors: the full strict build executes every chapter; this executes only the chapter named
(papermill, book settings unless ``--smoke``), renders it with the book's configuration (not
strictly: references to other chapters stay unresolved) and saves full-page screenshots of the
page, in slices of 1600 px, from headless Chromium at a 1280-px window:
``<out>/<chapter>/shot-<k>.png``. Prints the paths. The real gate is ``make book``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapter", help="e.g. chapters/03_gd_dynamics (no suffix), or intro")
    ap.add_argument("--smoke", action="store_true", help="execute with smoke=True")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "preview")
    args = ap.parse_args(argv)
    name = args.chapter.removesuffix(".ipynb").removesuffix(".md")
    out = (args.out / pathlib.Path(name).name).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="preview-"))
    for item in ("_config.yml", "intro.md", "_static", "tools", "chapters/references.bib", "chapters/bibliography.md",
                 "src/prunebook/_version.py"):
        src = ROOT / item
        dst = work / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    bin_dir = pathlib.Path(sys.executable).parent
    if name != "intro":
        executed = work / f"{name}.ipynb"
        cmd = [str(bin_dir / "papermill"), str(ROOT / f"{name}.ipynb"), str(executed), "--cwd", str(ROOT / "chapters")]
        if args.smoke:
            cmd += ["-p", "smoke", "True"]
        subprocess.run(cmd, check=True)
    toc = {"format": "jb-book", "root": "intro"}
    if name != "intro":
        toc["chapters"] = [{"file": name}, {"file": "chapters/bibliography"}]
    (work / "_toc.yml").write_text(json.dumps(toc))
    cfg = (work / "_config.yml").read_text().replace("execute_notebooks: cache", "execute_notebooks: off")
    # the Colab and download links need the full build's execution cache: left out of a preview
    cfg = "\n".join(line for line in cfg.splitlines() if "local_extensions" not in line and "book_links" not in line)
    (work / "_config.yml").write_text(cfg)
    subprocess.run([str(bin_dir / "jupyter-book"), "build", str(work), "--path-output", str(out)], check=True)
    page = out / "_build" / "html" / f"{name}.html"
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    if not chromium:
        print(f"built {page}; no chromium for screenshots (make browser installs it)")
        return 0
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={work / 'chromium'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts)
    try:
        driver.get(page.as_uri())
        height = driver.execute_script("return document.body.scrollHeight")
        for k, top in enumerate(range(0, height, 1500)):
            driver.execute_script(f"window.scrollTo(0, {top})")
            shot = out / f"shot-{k:02d}.png"
            driver.save_screenshot(str(shot))
            print(shot)
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
