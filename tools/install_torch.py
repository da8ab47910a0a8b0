"""Install torch into the running virtual environment, the CPU build where PyTorch's index is reachable.

    .venv/bin/python tools/install_torch.py torch==2.13.0 --index https://download.pytorch.org/whl/cpu \\
        [--timeout 5] [--record .venv/torch-source.txt] [--no-fallback]

From plain PyPI on Linux, ``torch`` resolves to the CUDA build (several GB of NVIDIA libraries);
PyTorch's CPU wheel index serves the CPU build. So:

1. the first attempt asks the CPU index (``--index-url``; pip's own configuration, such as
   ``find-links`` or extra indexes, still applies), with a short ``--timeout`` and no retries, so
   an index that cannot be reached costs seconds, not minutes;
2. if that fails, the second attempt asks pip's default index (PyPI unless configured otherwise),
   unless ``--no-fallback`` is given (tests/book/test_colab.py: Colab's torch, as a CPU build or not at all).

It prints one line saying which build was installed and where the wheel came from (pip's
installation report), and writes that line to ``--record``. Standard library only: it runs
before anything else is installed. Exit status 1, with both attempts' last lines, if neither works.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata

TAIL = 8  # lines of pip's output shown for a failed attempt


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"requirement: {requirement!r} does not start with a package name")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def pip_install(requirement: str, options: list[str], *, capture: bool) -> tuple[int, dict | None, str, float]:
    """Run ``pip install`` with a JSON report; return (exit status, report, output, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = pathlib.Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--report", str(report_path), *options, requirement]
        start = time.monotonic()
        res = subprocess.run(cmd, capture_output=capture, text=True)
        seconds = time.monotonic() - start
        report = json.loads(report_path.read_text()) if res.returncode == 0 and report_path.exists() else None
    output = (res.stdout or "") + (res.stderr or "") if capture else ""
    return res.returncode, report, output, seconds


def describe(name: str, report: dict | None, index: str) -> str:
    """One line: which torch build is installed and where its wheel came from."""
    installed = [item for item in (report or {}).get("install", []) if _name(item["metadata"]["name"]) == name]
    if not installed:
        return f"{name} {metadata.version(name)} was already installed (kept as it is)"
    item = installed[0]
    version = item["metadata"]["version"]
    url = item.get("download_info", {}).get("url", "?")
    others = [_name(i["metadata"]["name"]) for i in report.get("install", [])]
    if "+cpu" in version:
        build = "CPU build"
    elif any(o.startswith("nvidia-") for o in others):
        build = "CUDA build, with NVIDIA libraries of several GB"
    else:
        build = "default build"
    if url.startswith(index.rstrip("/") + "/"):
        source = f"PyTorch's CPU index {index}"
    elif url.startswith("file:"):
        source = "a local file (pip's configuration: find-links or a local index)"
    elif "files.pythonhosted.org" in url:
        source = "PyPI"
    else:
        source = "another index of pip's configuration"
    return f"{name} {version} ({build}) from {source}: {url}"


def install(requirement: str, index: str, timeout: float, fallback: bool = True) -> tuple[str, list[str]]:
    """Install ``requirement``: the CPU index first, then (``fallback``) the default index. Returns (line, log)."""
    if not index.startswith(("https://", "http://", "file:")):
        raise ValueError(f"index: expected an http(s) or file URL, got {index!r}")
    if not timeout > 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    name = _name(requirement)
    log = [f"{name}: asking {index} first (timeout {timeout:g} s, no retries)"]
    print(log[-1], flush=True)
    rc, report, output, seconds = pip_install(
        requirement, ["--index-url", index, "--timeout", f"{timeout:g}", "--retries", "0"], capture=True
    )
    if rc == 0:
        line = describe(name, report, index) + f" [first attempt, {seconds:.1f} s]"
        return line, log
    first_tail = output.strip().splitlines()[-TAIL:]
    if not fallback:
        raise RuntimeError(
            f"could not install {requirement} from {index} after {seconds:.1f} s ({_reason(output)}); "
            "not asking pip's default index (--no-fallback).\nLast lines:\n  " + "\n  ".join(first_tail)
        )
    log.append(f"{name}: not found that way after {seconds:.1f} s ({_reason(output)}); asking pip's default index")
    print(log[-1], flush=True)
    rc, report, output, seconds = pip_install(requirement, [], capture=False)
    if rc != 0:
        raise RuntimeError(
            f"could not install {requirement}: neither {index} nor pip's default index worked.\n"
            "First attempt's last lines:\n  " + "\n  ".join(first_tail)
            + "\n(the second attempt's output is printed above)"
        )
    return describe(name, report, index) + f" [fallback, {seconds:.1f} s]", log


def _reason(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pattern in ("No matching distribution", "Could not find a version", "NameResolutionError",
                    "Failed to establish a new connection", "ConnectTimeout", "timed out", "ERROR"):
        hit = next((ln for ln in reversed(lines) if pattern in ln), None)
        if hit:
            return hit[:200]
    return lines[-1][:200] if lines else "no output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirement", help="e.g. torch==2.13.0")
    parser.add_argument("--index", required=True, help="the CPU wheel index, asked first")
    parser.add_argument("--timeout", type=float, default=5.0, help="pip's socket timeout for the first attempt (s)")
    parser.add_argument("--record", type=pathlib.Path, help="file to write the result line to")
    parser.add_argument("--no-fallback", action="store_true", help="ask the CPU index only, never the default index")
    args = parser.parse_args(argv)
    try:
        line, _ = install(args.requirement, args.index, args.timeout, fallback=not args.no_fallback)
    except (ValueError, RuntimeError) as err:
        print(f"install_torch: {err}", file=sys.stderr)
        return 1
    if args.record is not None:
        if "already installed" in line and args.record.exists():
            line = args.record.read_text().strip()  # keep the record of the original installation
        else:
            args.record.write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
