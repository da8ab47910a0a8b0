"""Course assignments: the exercise format, student and solution copies, checks that catch wrong answers, the bundle."""

import html
import html.parser
import json
import pathlib
import re
import zipfile

import nbformat
import papermill as pm
import pytest

from conftest import load_tool

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "90_fixture.ipynb"

assign = load_tool("assignments")
grading = load_tool("grading")
nbtools = load_tool("notebooks")
CHAPTERS = nbtools.toc_notebooks()


def _nb(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def test_strip_code_keeps_indentation_and_everything_else():
    src = "def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n\n\ndef g():\n    # BEGIN SOLUTION\n    return 2\n    # END SOLUTION\nprint('kept')"
    out = assign.strip_code(src)
    assert "y = x + 1" not in out and "return 2" not in out and "print('kept')" in out
    assert out.count("    raise NotImplementedError(") == 2
    ns = {}
    exec(out, ns)
    with pytest.raises(NotImplementedError):
        ns["f"](1)


@pytest.mark.parametrize("src", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_unbalanced_markers_are_rejected(src):
    with pytest.raises(assign.MarkerError, match="cell"):
        assign.strip_code(src)


def test_strip_prose_removes_solution_blocks_only():
    md = "Intro\n\n```{exercise}\n:label: e1\nDo it.\n```\n\n```{solution} e1\n:class: dropdown\nSecret $x$.\n```\n\nAfter"
    out = assign.strip_prose(md)
    assert "Secret" not in out and "{solution}" not in out
    assert "Do it." in out and "After" in out and "{exercise}" in out


def test_split_after_exercises_gives_each_exercise_its_own_cell():
    md = "Intro\n\n```{exercise} Core: a\n:label: e1\nA.\n```\n\nBetween\n\n```{exercise} Stretch: b\n:label: e2\nB.\n```\n\nAfter"
    parts = assign.split_after_exercises(md)
    assert [label for _, label in parts] == ["e1", "e2", None]
    assert parts[0][0].startswith("Intro") and parts[0][0].endswith("```")
    assert parts[1][0].startswith("Between") and parts[2][0] == "After"


# ----------------------------------------------------------------------------- the format


@pytest.mark.parametrize("path", CHAPTERS + [FIXTURE], ids=lambda p: p.stem)
def test_exercises_follow_the_format(path):
    """Metadata with points and level, a check cell after, a hidden-check cell after that, a level spread."""
    nb = _nb(path)
    exercises = assign.code_exercises(nb, path.stem)
    assert exercises and all(nb["cells"][e.check]["cell_type"] == "code" for e in exercises)
    assert assign.format_problems(nb, path.stem) == []


def test_format_problems_names_what_is_wrong():
    nb = _nb(FIXTURE)
    cells = nb["cells"]
    ex = [c for c in cells if "exercise" in c["metadata"]]
    ex[0]["metadata"]["exercise"]["level"] = None
    ex[1]["metadata"]["tags"] = []
    hidden = [c for c in cells if "hidden-check" in c["metadata"].get("tags", [])]
    hidden[2]["metadata"]["tags"] = ["hidden-check"]
    ex[2]["source"] = ex[2]["source"].replace("# BEGIN SOLUTION", "", 1).replace("# END SOLUTION", "", 1)
    problems = "\n".join(assign.format_problems(nb, FIXTURE.stem))
    assert "exercise 90.1" in problems and "no level" in problems
    assert "exercise 90.2" in problems and "hide-input" in problems
    assert "not tagged remove-cell" in problems and "scaffolded" in problems
    with pytest.raises(assign.MarkerError, match="points"):
        ex[0]["metadata"]["exercise"]["points"] = 0
        assign.code_exercises(nb, FIXTURE.stem)


# ----------------------------------------------------------------------------- copies


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    assign.write(out, CHAPTERS)
    return out


def _solution_lines(nb):
    """Every substantive line of every code solution, prose solution and hidden check of a notebook."""
    lines = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "code" and "hidden-check" in c["metadata"].get("tags", []):
            lines += [ln.strip() for ln in src.splitlines() if len(ln.strip()) > 30]
        elif c["cell_type"] == "code":
            inside = False
            for ln in src.splitlines():
                if ln.strip() == assign.BEGIN:
                    inside = True
                elif ln.strip() == assign.END:
                    inside = False
                elif inside and len(ln.strip()) > 8:
                    lines.append(ln.strip())
        else:
            fence = None
            for ln in src.splitlines():
                m = assign._FENCE.match(ln)
                if fence is None and m and m.group(3) == "solution":
                    fence = m.group(2)
                elif fence is not None and ln.strip() == fence:
                    fence = None
                elif fence is not None and len(ln.strip()) > 20 and not ln.startswith(":"):
                    lines.append(ln.strip())
    return lines


# What a public check may call from the package: constructors of inputs worked by hand. Anything
# else (theory, the analyses, training) could compute the answer the student is asked for.
CHECK_MAY_CALL = {"Dataset", "sample_data", "signal_vector", "init_weights", "random_mask"}


def _package_calls(source: str) -> set[str]:
    """Names of package functions a cell calls or imports (``pb.x(``, ``prunebook.m.x(``, ``from prunebook... import x``)."""
    import ast

    tree = ast.parse(source)
    aliases = {"pb", "prunebook"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("prunebook")}
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prunebook"):
            called |= {a.name for a in node.names}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root = node.func.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in aliases | {"theory", "boundary", "margins", "stats", "cr"}:
                called.add(node.func.attr)
    return called


def test_package_calls_sees_every_way_to_reach_the_package():
    src = ("import prunebook.theory as th\nfrom prunebook.book.boundary import slope\nth.snr_p(1)\n"
           "pb.sample_data(3)\ntheory.race_boundary_n(2)\nx.y(1)")
    assert _package_calls(src) == {"slope", "snr_p", "sample_data", "race_boundary_n"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_public_checks_call_no_package_function_that_could_compute_the_answer(path):
    nb = _nb(path)
    for e in assign.code_exercises(nb, path.stem):
        extra = _package_calls(assign._source(nb["cells"][e.check])) - CHECK_MAY_CALL
        assert not extra, f"the public check of exercise {e.id} calls {sorted(extra)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_text_in_student_copy(copies, path):
    original = _nb(path)
    student = (copies / "student" / path.name).read_text()
    secrets = _solution_lines(original)
    assert secrets, "every chapter has exercises with solutions"
    leaked = [s for s in secrets if s in student]
    assert not leaked, leaked
    assert "BEGIN SOLUTION" not in student and "{solution}" not in student and "hidden-check" not in student
    nb = nbformat.reads(student, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    solution = nbformat.read(copies / "solutions" / path.name, as_version=4)
    nbformat.validate(solution)
    assert not [c for c in solution.cells if "hidden-check" in c.metadata.get("tags", [])], "hidden tests are grading material"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_copy_has_an_answer_cell_after_each_prose_exercise(copies, path):
    labels = [ex["label"] for c in _nb(path)["cells"] if c["cell_type"] == "markdown"
              for ex in assign.prose_exercises(assign._source(c))]
    cells = nbformat.read(copies / "student" / path.name, as_version=4).cells
    answers = [i for i, c in enumerate(cells) if c.metadata.get("answer")]
    assert [cells[i].metadata["answer"] for i in answers] == labels, "one answer cell per prose exercise, in order"
    assert all(cells[i - 1].cell_type == "markdown" and not cells[i - 1].metadata.get("answer") for i in answers)
    assert len({c.get("id") for c in cells}) == len(cells), "cell ids stay unique"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_copies_name_their_assignment_and_exercises(copies, path):
    ids = [e.id for e in assign.code_exercises(_nb(path), path.stem)]
    for kind in ("student", "solutions"):
        nb = _nb(copies / kind / path.name)
        assert nb["metadata"]["prunebook"] == {"assignment": path.stem}
        assert [c["metadata"]["exercise"]["id"] for c in nb["cells"] if "exercise" in c["metadata"]] == ids


def test_copies_are_built_from_the_flattened_form_when_it_exists(tmp_path, monkeypatch):
    seen = []

    def flat(nb):
        seen.append(nb["metadata"]["prunebook"]["assignment"])
        return {**nb, "metadata": {**nb["metadata"], "flattened": True}}

    assign.write(tmp_path, [FIXTURE], flat=flat)
    assert seen == [FIXTURE.stem, FIXTURE.stem]
    assert all(_nb(tmp_path / k / FIXTURE.name)["metadata"]["flattened"] for k in ("student", "solutions"))
    monkeypatch.setattr(assign, "FLATTEN", ("no_such_module", "flatten_notebook"))
    assert assign.flatten() is None, "without tools/colab_edition.py the copies keep their MyST"
    monkeypatch.setattr(assign, "FLATTEN", ("notebooks", "no_such_function"))
    with pytest.raises(assign.MarkerError, match="no_such_function"):
        assign.flatten()


CODE_EXERCISE_CHAPTERS = [p for p in CHAPTERS if "# BEGIN SOLUTION" in p.read_text()]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", CODE_EXERCISE_CHAPTERS, ids=lambda p: p.stem)
def test_student_copy_fails_at_its_first_check(copies, path, tmp_path):
    student = copies / "student" / path.name
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(student), str(tmp_path / "out.ipynb"), parameters={"smoke": True},
                            kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    assert info.value.ename == "NotImplementedError"
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))]
    first_check = next(c for c in nb.cells if "check" in c.metadata.get("tags", []))
    assert failed and failed[0].source == first_check.source, "the failure is the first check cell"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", CODE_EXERCISE_CHAPTERS, ids=lambda p: p.stem)
def test_solution_copy_runs_green(copies, path, tmp_path):
    pm.execute_notebook(str(copies / "solutions" / path.name), str(tmp_path / "out.ipynb"), parameters={"smoke": True},
                        kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) >= 2 and all("check passed" in "".join(o.get("text", "") for o in c.outputs) for c in checks)


# ----------------------------------------------------------------------------- checks catch wrong answers

# Plausible wrong answers to the exercises of the converted chapters. Each must fail the public
# check; those marked "hidden" pass the public check and must fail the hidden test.
WRONG = {
    "0.1": [
        ("public", "def masks_from_uniforms(U, ps):\n    return torch.stack([(U < 1 - p).float() for p in ps])"),
        ("public", "def masks_from_uniforms(U, ps):\n    return torch.stack([U >= p for p in ps])"),
        ("public", "def masks_from_uniforms(U, ps):\n    return (U[None] >= torch.tensor(ps)[:, None]).float()"),
        ("hidden", "def masks_from_uniforms(U, ps):\n    out = torch.stack([(U >= p).float() for p in ps])\n"
                   "    return out if U.numel() in (4, 100_000) else out[:, :1]"),
    ],
    "0.2": [
        ("public", "def paired_differences(errors, grid_p, grid_seed, p_a, p_b):\n"
                   "    e = {(p, s): x for p, s, x in zip(grid_p, grid_seed, errors)}\n"
                   "    return np.array([x - e[p_a, s] for p, s, x in zip(grid_p, grid_seed, errors) if p == p_b and (p_a, s) in e])"),
        ("public", "def paired_differences(errors, grid_p, grid_seed, p_a, p_b):\n"
                   "    e = {(p, s): x for p, s, x in zip(grid_p, grid_seed, errors)}\n"
                   "    return np.array([e[p_a, s] - e[p_b, s] for s in sorted(set(grid_seed)) if (p_a, s) in e and (p_b, s) in e])"),
        ("hidden", "def paired_differences(errors, grid_p, grid_seed, p_a, p_b):\n"
                   "    e = {(p, s): x for p, s, x in zip(grid_p, grid_seed, errors)}\n"
                   "    seeds_ = sorted(set(grid_seed)) if len(errors) == 5 else list(dict.fromkeys(grid_seed))\n"
                   "    return np.array([e[p_b, s] - e[p_a, s] for s in seeds_ if (p_a, s) in e and (p_b, s) in e])"),
    ],
    "0.3": [
        ("public", "def sign_test_pvalue(diffs):\n    a, b = count_signs(diffs)\n    N = a + b\n"
                   "    return 1.0 if N == 0 else binomial_cdf_half(min(a, b), N)"),
        ("public", "def count_signs(diffs):\n    diffs = np.asarray(diffs)\n    return int((diffs > 0).sum()), int((diffs <= 0).sum())"),
        ("public", "def sign_test_pvalue(diffs):\n    a, b = count_signs(diffs)\n    N = a + b\n"
                   "    return 1.0 if N == 0 else 2 * binomial_cdf_half(min(a, b), N)"),
        ("public", "from scipy.stats import norm\ndef binomial_cdf_half(k, N):\n    return float(norm.cdf((k + 0.5 - N / 2) / (N / 4) ** 0.5))"),
    ],
    "1.1": [
        ("public", "def patch_norm_ratio(X):\n    return (X[..., 0, :] ** 2).sum(-1) / (X[..., 1, :] ** 2).sum(-1)"),
        ("public", "def patch_norm_ratio(X):\n    return X[..., 1, :].norm(dim=-1) / X[..., 0, :].norm(dim=-1)"),
        ("hidden", "def patch_norm_ratio(X):\n    return X[:, 0].norm(dim=-1) / X[:, 1].norm(dim=-1)"),
    ],
    "1.2": [
        ("public", "def exact_interpolator(ds):\n    return (ds.y[:, None] * ds.xi / ds.xi.pow(2).sum(-1, keepdim=True)).sum(0)"),
        ("public", "def exact_interpolator(ds):\n    return torch.linalg.solve(ds.xi @ ds.xi.T, ds.y)"),
        ("public", "def exact_interpolator(ds):\n    return ds.xi.T @ ds.y / ds.xi.pow(2).sum(-1).mean()"),
    ],
    "1.3": [
        ("public", "def cross_terms(ds):\n    inner = ds.xi @ ds.xi.T\n    scaled = inner / inner.diagonal()[:, None]\n"
                   "    scaled.fill_diagonal_(0)\n    return ds.y * (scaled @ ds.y)"),
        ("public", "def cross_terms(ds):\n    inner = ds.xi @ ds.xi.T\n    scaled = inner / inner.diagonal()[None, :]\n"
                   "    scaled.fill_diagonal_(0)\n    return scaled @ ds.y"),
        ("public", "def cross_terms(ds):\n    inner = ds.xi @ ds.xi.T\n    return ds.y * ((inner / inner.diagonal()[None, :]) @ ds.y)"),
        ("public", "def first_unfit_n(d, n_grid, seeds):\n    fitted = [m for m in n_grid if fitted_fraction(m, d, seeds) == 1]\n"
                   "    return fitted[-1] if fitted else None"),
    ],
    "5.1": [
        ("public", "def magnitude_mask(W, p):\n    k = round((1 - p) * W.shape[-1])\n"
                   "    return torch.zeros_like(W).scatter_(-1, torch.sort(W.abs(), dim=-1, stable=True).indices[..., :k], 1.0)"),
        ("public", "def magnitude_mask(W, p):\n    k = int((1 - p) * W.shape[-1])\n"
                   "    return torch.zeros_like(W).scatter_(-1, torch.sort(W.abs(), dim=-1, descending=True, stable=True).indices[..., :k], 1.0)"),
        ("public", "def magnitude_mask(W, p):\n    k = round((1 - p) * W.shape[-1])\n"
                   "    return torch.zeros_like(W).scatter_(-1, torch.sort(W, dim=-1, descending=True, stable=True).indices[..., :k], 1.0)"),
        ("hidden", "def magnitude_mask(W, p):\n    k = round((1 - p) * W.shape[-1])\n"
                   "    out = torch.zeros_like(W).scatter_(-1, torch.sort(W.abs(), dim=-1, descending=True, stable=True).indices[..., :k], 1.0)\n"
                   "    return out if W.shape[-1] == 4 else torch.ones_like(W)"),
    ],
    "5.2": [
        ("public", "def snip_signal_score(W0, y, mu_norm):\n    return 3 / (4 * W0.shape[-2]) * W0[..., 0].abs() ** 3 * mu_norm**3"),
        ("public", "def snip_signal_score(W0, y, mu_norm):\n    n, m = y.shape[-1], W0.shape[-2]\n"
                   "    pos = (y > 0).sum(-1).to(W0.dtype)[..., None, None]\n"
                   "    return 3 / (2 * n * m) * torch.where(W0[..., 0] > 0, pos, n - pos) * W0[..., 0] ** 2 * mu_norm**3"),
        ("public", "def snip_signal_score(W0, y, mu_norm):\n    n, m = y.shape[-1], W0.shape[-2]\n"
                   "    pos = (y > 0).sum(-1).to(W0.dtype)[..., None, None]\n    w1 = W0[..., 0]\n"
                   "    usable = torch.tensor([1.0, -1.0], dtype=W0.dtype)[:, None] * w1 > 0\n"
                   "    return torch.where(usable, 3 / (2 * n * m) * torch.where(w1 > 0, pos, n - pos) * w1.abs() ** 3 * mu_norm**3, 0.0)"),
        ("hidden", "def snip_signal_score(W0, y, mu_norm):\n    n, m = y.shape[-1], W0.shape[-2]\n"
                   "    pos = (y > 0).sum().to(W0.dtype)\n"
                   "    return 3 / (2 * n * m) * torch.where(W0[..., 0] > 0, pos, n - pos) * W0[..., 0].abs() ** 3 * mu_norm**3"),
    ],
    "5.3": [
        ("public", "def patch_margins(W0, M, X, y):\n    Z = torch.einsum('...npd,...jrd->...npjr', X, W0 * M)\n"
                   "    a = torch.relu(Z) ** 3\n    return (a[..., 0, :] - a[..., 1, :]).sum(-1) / W0.shape[-2]"),
        ("public", "def patch_margins(W0, M, X, y):\n    Z = torch.einsum('...npd,...jrd->...npjr', X, W0 * M)\n"
                   "    a = torch.relu(Z) ** 3\n    return y[..., None] * (a[..., 0, :] - a[..., 1, :]).sum(-1)"),
        ("public", "def patch_margins(W0, M, X, y):\n    Z = torch.einsum('...npd,...jrd->...npjr', X, W0 * M)\n"
                   "    a = torch.relu(Z) ** 3\n    return y[..., None] * (a[..., 0, :] + a[..., 1, :]).sum(-1) / W0.shape[-2]"),
        ("public", "def initial_loss(W0, M, X, y):\n    mg = patch_margins(W0, M, X, y).sum(-1)\n"
                   "    return torch.logaddexp(torch.zeros((), dtype=mg.dtype), mg).mean(-1)"),
        ("hidden", "def grasp_vs_random(p):\n    out = {}\n    for name in ('random', 'grasp'):\n"
                   "        M = cr.mask_from_scores(scores[name], p)\n"
                   "        noise = patch_margins(W0, M, data.X, data.y)[..., 1]\n"
                   "        out[name] = {'loss': float(initial_loss(W0, M, data.X, data.y).mean()),\n"
                   "                     'worst_noise_margin': float(noise.min(-1).values.mean())}\n    return out"),
    ],
    "6.1": [
        ("public", "def noise_to_image_ratio(X):\n    return X[..., 0, :].norm(dim=-1) / X[..., 1, :].norm(dim=-1)"),
        ("public", "def noise_to_image_ratio(X):\n    return (X[..., 1, :] ** 2).sum(-1) / (X[..., 0, :] ** 2).sum(-1)"),
        ("hidden", "def noise_to_image_ratio(X):\n    return X[:, 1].norm(dim=-1) / X[:, 0].norm(dim=-1)"),
    ],
    "6.2": [
        ("public", "def paired_bootstrap(a, b, n_boot=2000, seed=0):\n    rng = numpy_rng(seed)\n"
                   "    a, b = np.asarray(a, float), np.asarray(b, float)\n"
                   "    ia = rng.integers(0, len(a), size=(n_boot, len(a)))\n    ib = rng.integers(0, len(b), size=(n_boot, len(b)))\n"
                   "    lo, hi = np.quantile(np.median(a[ia] - b[ib], axis=1), [0.025, 0.975])\n    return float(lo), float(hi)"),
        ("public", "def paired_bootstrap(a, b, n_boot=2000, seed=0):\n    diff = np.asarray(a, float) - np.asarray(b, float)\n"
                   "    idx = numpy_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))\n"
                   "    lo, hi = np.quantile(np.median(diff[idx], axis=1), [0.025, 0.975])\n    return float(hi), float(lo)"),
        ("hidden", "def paired_bootstrap(a, b, n_boot=2000, seed=0):\n    diff = np.asarray(a, float) - np.asarray(b, float)\n"
                   "    idx = numpy_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))\n"
                   "    lo, hi = np.quantile(np.mean(diff[idx], axis=1), [0.025, 0.975])\n    return float(lo), float(hi)"),
    ],
    "6.3": [
        ("public", "def first_coordinate_share(train, H):\n    X = train.X[:, 0].double() @ H.double().T\n"
                   "    diff = X[train.y > 0].mean(0) - X[train.y < 0].mean(0)\n    return float(diff[1] ** 2 / (diff**2).sum())"),
        ("public", "def pca_basis(train):\n    return torch.linalg.eigh(torch.cov(train.X[:, 0].double().T))[1].flip(-1)[:, :32].T"),
        ("hidden", "def pca_basis(train):\n    return torch.linalg.eigh(torch.cov(train.X[:, 0].double().T))[1].T"),
        ("hidden", "def first_coordinate_share(train, H):\n    X = train.X[:, 0].double() @ H.double().T\n"
                   "    diff = X[train.y > 0].mean(0) - X[train.y < 0].mean(0)\n    return float(diff[0].abs() / diff.abs().sum())"),
    ],
}


def _run_chapter_in_process(path: pathlib.Path) -> tuple[dict, dict]:
    """Execute a chapter's code cells (smoke, no Colab cell) in one namespace; its exercises by id."""
    import matplotlib

    matplotlib.use("Agg")
    nb = _nb(path)
    ns = {"__name__": "__chapter__"}
    for c in nb["cells"][1:]:
        if c["cell_type"] != "code":
            continue
        exec(compile(assign._source(c), f"{path.stem}", "exec"), ns)
        if "parameters" in c["metadata"].get("tags", []):
            ns["smoke"] = True
    cells = {e.id: (assign._source(nb["cells"][e.cell]), assign._source(nb["cells"][e.check]),
                    [assign._source(nb["cells"][h]) for h in e.hidden]) for e in assign.code_exercises(nb, path.stem)}
    return ns, cells


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", ["00_setup", "01_data_model", "05_pruning_criteria", "06_real_data"])
def test_checks_catch_wrong_answers(stem):
    import warnings

    import matplotlib
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", UserWarning)  # plt.show() on the Agg backend
        ns, exercises = _run_chapter_in_process(ROOT / "chapters" / f"{stem}.ipynb")
        plt.close("all")
    assert set(exercises) <= set(WRONG) and len(exercises) >= 3
    for ex_id, (solution, check, hidden) in exercises.items():
        for where, wrong in WRONG[ex_id]:
            exec(solution, ns)
            exec(wrong, ns)
            if where == "public":
                with pytest.raises(Exception):
                    exec(check, ns)
                continue
            exec(check, ns)  # passes the public check ...
            with pytest.raises(Exception):  # ... but not the hidden test
                for h in hidden:
                    exec(h, ns)
        exec(solution, ns)  # the reference passes everything, after all the wrong answers
        exec(check, ns)
        for h in hidden:
            exec(h, ns)


# ----------------------------------------------------------------------------- the grading bundle


def test_bundle_has_a_question_per_code_exercise(tmp_path):
    chapters = [FIXTURE, ROOT / "chapters" / "01_data_model.ipynb", ROOT / "chapters" / "02_pruning_at_initialization.ipynb"]
    extra_dir = tmp_path / "extra"
    extra_dir.mkdir()
    (extra_dir / "90.2.py").write_text("assert total([1, 1]) == 2\n")
    extra = grading.read_extra_tests(extra_dir, chapters)
    grading.write_bundle(tmp_path / "grading", chapters, extra)
    for path in chapters:
        manifest = _nb(tmp_path / "grading" / f"{path.stem}.json")
        exercises = assign.code_exercises(_nb(path), path.stem)
        assert [q["id"] for q in manifest["questions"]] == [e.id for e in exercises]
        assert [q["points"] for q in manifest["questions"]] == [e.points for e in exercises]
        with zipfile.ZipFile(tmp_path / "grading" / f"{path.stem}.zip") as z:
            for e in exercises:
                test = z.read(f"tests/{e.id}.py").decode()
                assert f'name = "{e.id}"' in test and f"points = {e.points}" in test and "all_or_nothing = True" in test
                n_hidden = len(e.hidden) + (1 if e.id == "90.2" else 0)
                assert test.count("hidden=True") == n_hidden and test.count("hidden=False") == 1
            assert json.loads(z.read("otter_config.json")).get("assignment_name") is None
    assert "total([1, 1])" in zipfile.ZipFile(tmp_path / "grading" / "90_fixture.zip").read("tests/90.2.py").decode()
    reference = _nb(tmp_path / "grading" / "90_fixture.reference.ipynb")  # what the grader runs as the reference
    ref_exercises = assign.code_exercises(reference, "90_fixture")
    assert [len(e.hidden) for e in ref_exercises] == [1, 2, 1], "hidden tests kept, the extra test after 90.2's"
    extra_cell = reference["cells"][ref_exercises[1].hidden[-1]]
    assert extra_cell["source"] == "assert total([1, 1]) == 2\n" and "extra-check" in extra_cell["metadata"]["tags"]
    assert assign.format_problems(reference, "90_fixture") == [], "the reference is still the chapter, in its format"
    converted = _nb(tmp_path / "grading" / "01_data_model.json")["questions"]
    assert all(q["hidden_tests"] >= 1 and q["level"] in assign.LEVELS for q in converted)


@pytest.mark.parametrize("name, content, message", [
    ("9.9.py", "assert True\n", "9.9.py"),
    ("notes.txt", "hello\n", "notes.txt"),
    ("90.1.py", "assert (\n", "90.1.py"),
])
def test_extra_tests_are_checked_before_any_work(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        grading.read_extra_tests(tmp_path, [FIXTURE])
    with pytest.raises(ValueError, match="not a folder"):
        grading.read_extra_tests(tmp_path / "missing", [FIXTURE])


# ----------------------------------------------------------------------------- the rendered book


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def rendered_problems(page: str, nb: dict, stem: str) -> list[str]:
    """How a built chapter page departs from the format: solutions in plain view, hidden tests shown."""
    problems = []
    cells = nb["cells"]
    exercises = assign.code_exercises(nb, stem)
    # the page's code cells, in the notebook's order (removed cells are not on the page); plotting
    # and glue cells are folded too, so each exercise's own cell is looked up
    shown = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    starts = [m.start() for m in re.finditer(r'<div class="cell(?: [^"]*)? docutils container">', page)]
    if len(starts) != len(shown):
        problems.append(f"{len(starts)} code cells on the page for {len(shown)} shown in the notebook")
        return problems
    span = dict(zip(shown, zip(starts, starts[1:] + [len(page)])))
    folded = re.compile(r'<div class="cell tag_hide-input[^"]*">\s*<details class="[^"]*\bhide\b[^"]*above-input[^"]*">')
    for e in exercises:
        a, b = span[e.cell]
        if not folded.match(page, a, b):
            problems.append(f"the solution of {e.id} is not folded")
    parser = _Text()
    parser.feed(page)
    text = "".join(parser.parts)
    for e in exercises:
        public = assign._source(cells[e.cell]) + assign._source(cells[e.check])  # on the page, the solution folded
        for h in e.hidden:
            shown = [ln for ln in assign._source(cells[h]).splitlines()
                     if len(ln.strip()) > 30 and ln.strip() in text and ln.strip() not in public]
            if shown:
                problems.append(f"hidden test of {e.id} shown: {shown[0].strip()!r}")
    return problems


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_rendered_book_folds_solutions_and_leaves_hidden_tests_out(built_book, path):
    page = (built_book / "chapters" / f"{path.stem}.html").read_text()
    assert rendered_problems(page, _nb(path), path.stem) == []


def test_the_rendered_check_sees_an_unfolded_solution_and_a_shown_hidden_test(built_book):
    """Control for the check above, on chapter 4's built page: unfold every folded code cell, then
    show a hidden test's line, and the check reports each."""
    path = next(p for p in CHAPTERS if p.stem == "04_phase_transition")
    nb = _nb(path)
    page = (built_book / "chapters" / f"{path.stem}.html").read_text()
    unfolded = page.replace('<div class="cell tag_hide-input', '<div class="cell tag_shown')
    found = rendered_problems(unfolded, nb, path.stem)
    ids = [e.id for e in assign.code_exercises(nb, path.stem)]
    assert [f"the solution of {i} is not folded" for i in ids] == found
    hidden = assign.code_exercises(nb, path.stem)[0].hidden[0]
    line = next(ln.strip() for ln in assign._source(nb["cells"][hidden]).splitlines() if len(ln.strip()) > 30)
    leaked = page.replace("</body>", f"<p>{html.escape(line)}</p></body>")
    assert any(p.startswith(f"hidden test of {ids[0]} shown") for p in rendered_problems(leaked, nb, path.stem))
