"""The set-up `make` runs: torch from PyTorch's CPU index with a fast fallback to the default index
(tools/install_torch.py, exercised against local package indexes in fresh virtual environments),
and the package's tree installed under constraints.txt (tools/constraints.py)."""

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import ROOT, load_tool

constraints = load_tool("constraints")
install_torch = load_tool("install_torch")


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
    return res.stdout


# --- the Makefile -----------------------------------------------------------------------------


def _dry_run(target):
    """The commands `make <target>` would run from scratch (make -n -B: print, run nothing).

    Run as a top-level make (no MAKEFLAGS/MAKELEVEL from a `make test` around it, which would add
    "Entering directory" lines), so the output is exactly the recipe lines.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    return run(["make", "--no-print-directory", "-n", "-B", target], cwd=ROOT, env=env).splitlines()


def test_make_installs_torch_from_the_cpu_index_first_then_the_package_under_the_constraints():
    lines = _dry_run("install")
    torch_line = next(i for i, ln in enumerate(lines) if "tools/install_torch.py" in ln)
    pkg_line = next(i for i, ln in enumerate(lines) if "pip install" in ln and "-e '.[book,test]'" in ln)
    assert torch_line < pkg_line, "torch first, so that the package's install keeps it"
    assert "torch==2.13.0 --index https://download.pytorch.org/whl/cpu --record .venv/torch-source.txt" in lines[torch_line]
    assert "-c constraints.txt" in lines[pkg_line]
    assert any("torch-source.txt" in ln and "echo" in ln for ln in lines[pkg_line:]), "make prints torch's source"
    makefile = (ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, re.M).group(1)
    assert "$(CONSTRAINTS)" in stamp_rule, "a refreshed constraints.txt must re-run the set-up"


def test_make_constraints_freezes_a_fresh_venv_without_the_old_constraints():
    lines = _dry_run("constraints")
    assert re.search(r"-m venv \S*prunebook-constraints-venv", lines[1])
    pkg = next(i for i, ln in enumerate(lines) if "-e '.[book,test]'" in ln)
    assert "-c " not in lines[pkg], "a refresh resolves the ranges of pyproject anew"
    # then otter-grader's tree, under the book and test extras' fresh pins (it must not move them)
    book = next(i for i, ln in enumerate(lines) if "constraints.py freeze --extras book,test --out" in ln)
    grading = next(i for i, ln in enumerate(lines) if "-e '.[grading]'" in ln)
    pinned = re.search(r"--out (\S+)", lines[book]).group(1)
    assert pkg < book < grading and f"-c {pinned} " in lines[grading]
    final = next(i for i, ln in enumerate(lines) if "tools/constraints.py freeze --out constraints.txt" in ln)
    assert grading < final and "--extras" not in lines[final], "constraints.txt pins all three extras"
    assert "make constraints" in (ROOT / "README.md").read_text(), "the README documents the refresh"


def test_make_installs_the_grader_under_the_constraints():
    lines = _dry_run(".venv/.installed-grading")
    grading = next(ln for ln in lines if "-e '.[grading]'" in ln)
    assert "-c constraints.txt" in grading


# --- constraints.txt --------------------------------------------------------------------------


def test_constraints_are_exact_pins_with_a_python_marker():
    pins = constraints.parse(ROOT / "constraints.txt")
    assert len(pins) > 50
    for name, req in pins.items():
        assert str(req.marker).startswith('python_version == "3.'), f"{name}: {req.marker}"
        assert not constraints.UNPINNED.match(name), f"{name} must not be pinned (torch is installed first)"


def test_constraints_pin_the_extras_top_level_packages_within_pyprojects_ranges():
    pins = constraints.parse(ROOT / "constraints.txt")
    for req in constraints.top_level(ROOT):
        if req.name == "torch":
            continue
        name = constraints.canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        pinned = next(iter(pins[name].specifier)).version
        assert req.specifier.contains(pinned, prereleases=True), f"{req.name}=={pinned} is outside pyproject's {req}"


def test_constraints_pin_every_installed_package_the_extras_need():
    """Here: the tree of the package's requirements and extras, as installed in this environment."""
    pins = constraints.parse(ROOT / "constraints.txt")
    needed = constraints.pins(ROOT)
    assert {"jupyter-book", "sphinx", "myst-nb", "docutils", "selenium", "zizmor"} <= set(needed)
    assert {"otter-grader", "jupytext", "python-on-whales", "dill"} <= set(needed), "the grading extra's tree too"
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"not pinned (run `make constraints`): {missing}"


def test_constraint_parser_rejects_ranges_and_duplicates(tmp_path):
    (tmp_path / "c.txt").write_text("# comment\nsphinx>=7\n")
    with pytest.raises(ValueError, match="c.txt:2: 'sphinx>=7' is not an exact pin"):
        constraints.parse(tmp_path / "c.txt")
    (tmp_path / "c.txt").write_text("Sphinx==7.4.7\nsphinx==7.4.7\n")
    with pytest.raises(ValueError, match="sphinx is pinned twice"):
        constraints.parse(tmp_path / "c.txt")


def test_freeze_output_round_trips(tmp_path):
    pinned = {"alpha": "1.0", "beta-gamma": "2.3.post1"}
    text = constraints.render(pinned)
    (tmp_path / "c.txt").write_text(text)
    parsed = constraints.parse(tmp_path / "c.txt")
    assert {n: next(iter(r.specifier)).version for n, r in parsed.items()} == pinned
    assert "make constraints" in text and "book, test and grading extras' tree" in text
    assert "the book and test extras' tree" in constraints.render(pinned, ("book", "test"))


def test_constraints_txt_pins_the_grading_extra():
    """otter-grader's tree is in constraints.txt: `make test`, `make assignments` and `make grade`
    install it with -c constraints.txt, so none of it may float."""
    pins = constraints.parse(ROOT / "constraints.txt")
    assert "grading" in constraints.EXTRAS
    assert any(r.name == "otter-grader" for r in constraints.top_level(ROOT))
    assert {"otter-grader", "jupytext", "python-on-whales", "fica"} <= set(pins)
    assert "book, test and grading" in (ROOT / "constraints.txt").read_text().splitlines()[0]


# --- tools/install_torch.py against local indexes ------------------------------------------------


def _wheel(directory, name, version):
    """A minimal valid wheel: one module and its dist-info."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def _index(root, name, version):
    """A PEP 503 simple index on disk holding one wheel; returns its file:// URL."""
    project = root / name
    project.mkdir(parents=True)
    wheel = _wheel(project, name, version)
    (project / "index.html").write_text(f'<html><body><a href="{wheel.name.replace("+", "%2B")}">{wheel.name}</a></body></html>')
    return root.as_uri()


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the socket is: connections are refused


@pytest.fixture
def venv(tmp_path):
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(tmp_path / "venv")])
    return tmp_path / "venv" / "bin" / "python"


def _env(default_index):
    """pip without this machine's configuration, its default index replaced by a local one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=default_index, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_CACHE_DIR="1")
    return env


def _install(python, *args, default_index):
    return subprocess.run([str(python), str(ROOT / "tools" / "install_torch.py"), *args],
                          capture_output=True, text=True, env=_env(default_index))


def test_the_cpu_index_is_asked_first(tmp_path, venv):
    cpu = _index(tmp_path / "cpu", "fakelib", "1.0+cpu")
    default = _index(tmp_path / "default", "fakelib", "1.0")
    record = tmp_path / "record.txt"
    res = _install(venv, "fakelib==1.0", "--index", cpu, "--record", str(record), default_index=default)
    assert res.returncode == 0, res.stdout + res.stderr
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith(f"fakelib 1.0+cpu (CPU build) from PyTorch's CPU index {cpu}: {cpu}/fakelib/")
    assert "[first attempt" in line and record.read_text() == line + "\n"
    assert run([str(venv), "-c", "import fakelib; print(fakelib.VERSION)"]).strip() == "1.0+cpu"


def test_an_unreachable_cpu_index_falls_back_within_seconds(tmp_path, venv):
    default = _index(tmp_path / "default", "fakelib", "1.0")
    unreachable = f"http://127.0.0.1:{_closed_port()}/whl/cpu"
    record = tmp_path / "record.txt"
    start = time.monotonic()
    res = _install(venv, "fakelib==1.0", "--index", unreachable, "--timeout", "5", "--record", str(record),
                   default_index=default)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.strip().splitlines()
    first = float(re.search(r"not found that way after ([\d.]+) s", res.stdout).group(1))
    assert first < 5, f"the failed first attempt cost {first} s"
    assert out[-1].startswith("fakelib 1.0 (default build) from a local file (pip's configuration: find-links or a "
                              f"local index): {default}/fakelib/")
    assert "[fallback" in out[-1] and record.read_text().strip() == out[-1]
    assert time.monotonic() - start < 60


def test_neither_index_working_fails_naming_both(tmp_path, venv):
    empty = tmp_path / "empty"
    empty.mkdir()
    unreachable = f"http://127.0.0.1:{_closed_port()}/whl/cpu"
    res = _install(venv, "fakelib==1.0", "--index", unreachable, default_index=empty.as_uri())
    assert res.returncode == 1
    assert f"could not install fakelib==1.0: neither {unreachable} nor pip's default index worked" in res.stderr
    assert "First attempt's last lines" in res.stderr


def test_no_fallback_never_asks_the_default_index(tmp_path, venv):
    """--no-fallback (tests/book/test_colab.py: Colab's torch as a CPU build or not at all): an unreachable
    CPU index fails at once, though the default index has the package."""
    default = _index(tmp_path / "default", "fakelib", "1.0")
    unreachable = f"http://127.0.0.1:{_closed_port()}/whl/cpu"
    res = _install(venv, "fakelib==1.0", "--index", unreachable, "--no-fallback", default_index=default)
    assert res.returncode == 1
    assert f"could not install fakelib==1.0 from {unreachable}" in res.stderr and "--no-fallback" in res.stderr
    assert "asking pip's default index" not in res.stdout
    assert subprocess.run([str(venv), "-c", "import fakelib"], capture_output=True).returncode != 0


def test_an_installed_torch_is_kept_with_its_record(tmp_path, venv):
    cpu = _index(tmp_path / "cpu", "fakelib", "1.0+cpu")
    record = tmp_path / "record.txt"
    assert _install(venv, "fakelib==1.0", "--index", cpu, "--record", str(record), default_index=cpu).returncode == 0
    first = record.read_text()
    res = _install(venv, "fakelib==1.0", "--index", cpu, "--record", str(record), default_index=cpu)
    assert res.returncode == 0 and record.read_text() == first
    assert res.stdout.strip().splitlines()[-1] == first.strip()


@pytest.mark.parametrize("args, message", [
    (["fakelib==1.0", "--index", "download.pytorch.org/whl/cpu"], "index: expected an http(s) or file URL"),
    (["fakelib==1.0", "--index", "https://x.invalid/", "--timeout", "0"], "timeout: expected a positive number"),
    (["==1.0", "--index", "https://x.invalid/"], "requirement: '==1.0' does not start with a package name"),
])
def test_bad_arguments_are_named_before_pip_runs(args, message):
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "install_torch.py"), *args], capture_output=True,
                         text=True)
    assert res.returncode == 1 and message in res.stderr
    assert "asking" not in res.stdout
