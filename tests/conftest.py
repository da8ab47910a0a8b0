import pathlib

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def built_book() -> pathlib.Path:
    """Build the whole book strictly (warnings are errors), executing every chapter at book settings."""
    rc = load_tool("build_book").build(ROOT, ROOT / "src")
    assert rc == 0, "jupyter-book build -n -W failed; the execution reports are printed above"
    return ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def colab_edition() -> pathlib.Path:
    """`make colab`: the Colab edition of every chapter in _build/colab (glue values from the built
    book's executed chapters where present)."""
    load_tool("colab_edition").write()
    return ROOT / "_build" / "colab"


def load_tool(name: str):
    """Import tools/<name>.py (the repository's scripts are not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_problem(*, n=6, d=12, m=3, p=0.3, seed=0, dtype=torch.float64, mu_norm=2.0, signal="sparse", sigma_0=0.3):
    """A small (W0, M, data) triple for tests."""
    import prunebook as pb

    mu = pb.signal_vector(d, mu_norm, kind=signal, seed=None if signal == "sparse" else seed + 100, dtype=dtype)
    ds = pb.sample_data(n, mu, seed=seed)
    W0 = pb.init_weights(m, d, sigma_0, seed=seed + 1, dtype=dtype)
    M = pb.random_mask(W0.shape, p, seed=seed + 2, dtype=dtype)
    return W0, M, ds
