"""The Colab cell in a fresh virtual environment: it installs the package (a local build here),
leaves torch alone, and the chapter's first cells then run."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, load_tool

nbtools = load_tool("notebooks")

TORCH_PIN = "torch==2.13.0"
COLAB_STACK = ["numpy", "pandas", "matplotlib", "seaborn"]  # what Colab ships besides torch


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
    return res.stdout


def torch_record(python):
    return run([python, "-c", "import torch, importlib.metadata as m; print(torch.__file__, m.version('torch'))"]).strip()


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    """A fresh venv with Colab's preinstalled stack (torch and friends) but no prunebook."""
    base = tmp_path_factory.mktemp("colab")
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(base / "venv")])
    py = str(base / "venv" / "bin" / "python")
    run([py, "-m", "pip", "install", "-q", TORCH_PIN, *COLAB_STACK])
    fake = base / "fake" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("# stands in for Colab's module: makes `import google.colab` succeed\n")
    wheels = base / "wheels"
    source = base / "source"  # a clean copy: no build/ or egg-info from the checkout can leak into the wheel
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):  # LICENSE: pyproject's license-files
        shutil.copy(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)])
    wheel = next(wheels.glob("prunebook-*.whl"))
    return py, base / "fake", wheel


def test_colab_cell_installs_the_package_and_keeps_torch(colab_like, tmp_path):
    py, fake, wheel = colab_like
    before = torch_record(py)
    assert run([py, "-c", "import importlib.util as u; print(u.find_spec('prunebook'))"]).strip() == "None"
    env = {**os.environ, "PYTHONPATH": str(fake), "PRUNEBOOK_INSTALL_TARGET": f"prunebook @ {wheel.as_uri()}",
           "MPLBACKEND": "Agg"}
    # the first cell of every chapter, exactly as committed
    first = json.loads(nbtools.toc_notebooks()[1].read_text())["cells"][0]
    run([py, "-c", "".join(first["source"])], env=env, cwd=tmp_path)
    assert torch_record(py) == before, "the Colab cell must not touch torch"
    # the package imports, and the first cells of chapter 1 run in smoke mode
    nb = json.loads(next(p for p in nbtools.toc_notebooks() if p.stem == "01_data_model").read_text())
    code = [("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"]
    params = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    n_params = sum(1 for c in nb["cells"][:params] if c["cell_type"] == "code")
    script = "\n".join(code[n_params : n_params + 4]).replace("smoke = False", "smoke = True")
    script = "import matplotlib\nmatplotlib.use('Agg')\n" + script.replace("plt.show()", "plt.close('all')")
    out = run([py, "-c", script], env=env, cwd=tmp_path)
    assert "X (12, 2, 80)" in out and "orthogonal" in out
    site = run([py, "-c", "import prunebook; print(prunebook.__file__)"], env=env)
    assert str(ROOT) not in site, "the fresh environment uses the installed wheel, not the checkout"


def test_colab_cell_does_nothing_elsewhere(colab_like, tmp_path):
    py, fake, wheel = colab_like
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PRUNEBOOK_INSTALL_TARGET"] = "this-package-does-not-exist==0"
    run([py, "-c", nbtools.colab_source()], env=env, cwd=tmp_path)  # no google.colab: no install attempted
