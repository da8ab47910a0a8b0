"""The Colab cell in a fresh virtual environment: it installs the package (a local build here),
falls back to the next target when one fails, fails loudly when none works, leaves torch alone;
and every chapter of the Colab edition runs top to bottom there in smoke mode."""

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
# what Colab ships besides torch (and the chapters use): the install cell must not need more
COLAB_STACK = ["numpy", "scipy", "numba", "pandas", "matplotlib", "seaborn", "scikit-learn", "tqdm", "ipykernel"]
# pip finds no package index: a target that needs one fails at once
NO_INDEX = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2",
            "PIP_NO_INPUT": "1", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}


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


def without_prunebook(py):
    """Uninstall the package from the venv (the tests share it), and check that it is gone."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from the checkout
    run([py, "-m", "pip", "uninstall", "-q", "-y", "prunebook"], env=clean)
    assert run([py, "-c", "import importlib.util as u; print(u.find_spec('prunebook'))"], env=clean).strip() == "None"


def test_colab_cell_installs_the_package_and_keeps_torch(colab_like, tmp_path):
    py, fake, wheel = colab_like
    without_prunebook(py)
    before = torch_record(py)
    _, version = nbtools.release()
    # the released version is not reachable (no index): the cell goes on to the next target, the wheel
    env = {**os.environ, **NO_INDEX, "PYTHONPATH": str(fake), "MPLBACKEND": "Agg",
           "PRUNEBOOK_INSTALL_TARGET": f"prunebook=={version}|prunebook @ {wheel.as_uri()}"}
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


def test_colab_cell_failure_names_what_it_tried_and_where_to_report(colab_like, tmp_path):
    py, fake, wheel = colab_like
    without_prunebook(py)
    url, version = nbtools.release()
    targets = [f"prunebook=={version}", f"prunebook @ git+http://127.0.0.1:9/prunebook.git@v{version}"]
    env = {**os.environ, **NO_INDEX, "PYTHONPATH": str(fake), "PRUNEBOOK_INSTALL_TARGET": "|".join(targets)}
    res = subprocess.run([py, "-c", nbtools.colab_source()], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0
    err = res.stderr
    assert f"RuntimeError: Could not install prunebook {version}" in err
    for t in targets:
        assert f"pip install {t!r} (exit status 1):" in err, f"names {t}"
    assert err.count("    ERROR: ") >= 2, "shows pip's own last lines for each target"
    assert "127.0.0.1:9" in err
    assert f"Please report this, with the lines above, at {url}/issues" in err
    without_prunebook(py)  # and nothing was installed


def test_colab_cell_does_nothing_elsewhere(colab_like, tmp_path):
    py, fake, wheel = colab_like
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PRUNEBOOK_INSTALL_TARGET"] = "this-package-does-not-exist==0"
    run([py, "-c", nbtools.colab_source()], env=env, cwd=tmp_path)  # no google.colab: no install attempted


@pytest.fixture(scope="module")
def colab_kernel(colab_like, colab_edition):
    """A Jupyter kernel in the Colab-like venv, with `google.colab` importable and the install cell
    pointed at the local wheel: the edition's first cell installs the package there."""
    py, fake, wheel = colab_like
    without_prunebook(py)
    spec = pathlib.Path(py).parents[2] / "jupyter" / "kernels" / "colab-like"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [py, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python",
        "env": {"PYTHONPATH": str(fake), "PRUNEBOOK_INSTALL_TARGET": f"prunebook @ {wheel.as_uri()}"},
    }))
    return "colab-like", spec.parents[1]


@pytest.mark.notebooks
@pytest.mark.parametrize("chapter", [p.stem for p in nbtools.toc_notebooks()])
def test_edition_runs_in_smoke_mode_where_colab_would(colab_kernel, colab_edition, chapter, tmp_path, monkeypatch):
    import nbformat
    import papermill as pm

    kernel, jupyter_path = colab_kernel
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    out = tmp_path / f"{chapter}.ipynb"
    pm.execute_notebook(str(colab_edition / "chapters" / f"{chapter}.ipynb"), str(out), parameters={"smoke": True},
                        kernel_name=kernel, cwd=str(tmp_path), progress_bar=False, execution_timeout=600)
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "every cell ran"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= (1 if chapter == "00_setup" else 2), "the figures are drawn"
