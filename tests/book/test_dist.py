"""`make dist`'s artefacts, built from a clean copy of the sources: sdist and wheel pass
`twine check --strict`, carry the one version, the licence and py.typed, and nothing else of the book."""

import email
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import ROOT

BIN = pathlib.Path(sys.executable).parent


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
    return res.stdout


def clean_copy(dest: pathlib.Path) -> pathlib.Path:
    """The checkout as a fresh clone would have it: the files git tracks (and new ones it does not
    ignore), without build/, egg-info, .venv or _build."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist and wheel built by `python -m build` (as `make dist` does) from a clean copy of the repository."""
    base = tmp_path_factory.mktemp("dist")
    source = clean_copy(base / "source")
    out = base / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)])
    return out


def test_make_dist_builds_with_python_m_build_and_checks_with_twine():
    text = (ROOT / "Makefile").read_text()
    recipe = text.split("\ndist:", 1)[1].split("\n\n", 1)[0]
    assert "-m build --outdir dist ." in recipe and "-m twine check --strict dist/*" in recipe


def test_twine_check_strict_passes(dist):
    files = sorted(dist.iterdir(), key=lambda p: p.suffix)
    assert [p.suffix for p in files] == [".gz", ".whl"]
    out = run([str(BIN / "twine"), "check", "--strict", *map(str, files)])
    assert out.count("PASSED") == 2


def test_the_wheel_carries_the_package_version(dist):
    import prunebook

    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta = email.message_from_bytes(zf.read(f"prunebook-{prunebook.__version__}.dist-info/METADATA"))
    assert meta["Name"] == "prunebook"
    assert meta["Version"] == prunebook.__version__
    assert wheel.name.startswith(f"prunebook-{prunebook.__version__}-py3-none-any")
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)


def test_the_wheel_holds_the_package_and_nothing_of_the_book(dist):
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "prunebook/py.typed" in names and "prunebook/__init__.py" in names
    package = ROOT / "src" / "prunebook"
    modules = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py"))
    assert sorted(n.split("/", 1)[1] for n in names if n.startswith("prunebook/") and n.endswith(".py")) == modules
    tables = sorted(p.relative_to(package).as_posix() for p in (package / "book" / "tables").glob("*.csv"))
    assert tables and set(tables) <= {n.split("/", 1)[1] for n in names}  # the precomputed tables ship
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"prunebook", f"prunebook-{wheel.name.split('-')[1]}.dist-info"}, top
    for forbidden in ("tests/", "chapters/", "tools/", "_build/", ".ipynb", "conftest"):
        assert not any(forbidden in n for n in names), forbidden


def test_the_sdist_holds_the_package_sources_and_licence_only(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    assert {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", "src/prunebook/py.typed",
            "src/prunebook/_version.py"} <= set(names)
    for forbidden in ("tests/", "chapters/", "tools/", "_static/", "_vendor/", "_build", ".venv", ".ipynb", "build/lib"):
        assert not any(n.startswith(forbidden) or forbidden in n for n in names), forbidden
