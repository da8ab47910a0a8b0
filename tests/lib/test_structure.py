"""The package's shape: no import cycle, one place for each concept (activation, seeds, thresholds)."""

import ast
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "prunebook"


def _module_name(path: pathlib.Path) -> str:
    """'train', 'engines.flow', 'engines' (a subpackage's __init__), '__init__' (the package's)."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
#: the chapter-only analysis: the library never imports it
BOOK = "book"


def _imports(path: pathlib.Path, modules=None) -> set[str]:
    """Package modules imported anywhere in ``path`` (module level and inside functions), dotted."""
    modules = MODULES if modules is None else modules
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]  # a submodule, else resolves to the module
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "prunebook" or len(parts) < 2:
                continue
            # the longest dotted prefix that is a module: prunebook.engines.flow.run -> engines.flow
            for k in range(len(parts), 1, -1):
                dotted = ".".join(parts[1:k])
                if dotted in modules:
                    out.add(dotted)
                    break
    return out


def import_graph() -> dict[str, set[str]]:
    return {name: _imports(path) - {name} for name, path in MODULES.items() if name != "__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_function_level_and_dotted_imports_are_seen(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from prunebook.train import train\n    import prunebook.data\n"
                 "from prunebook.engines import flow as fl\nfrom prunebook.book.claims import glue\n")
    assert _imports(f) == {"train", "data", "engines.flow", "book.claims"}


def test_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) >= 30 and graph["train"] >= {"engines.weights", "engines.coefficients", "engines.flow"}
    assert find_cycle(graph) is None, find_cycle(graph)


def test_the_library_never_imports_the_book():
    """prunebook.book holds what only the chapters use; everything else stands without it."""
    graph = import_graph()
    for name, deps in graph.items():
        if name != BOOK and not name.startswith(BOOK + "."):
            assert not {d for d in deps if d == BOOK or d.startswith(BOOK + ".")}, (name, deps)
    assert not {d for d in _imports(MODULES["__init__"]) if d.startswith(BOOK)}


def test_every_engine_lives_in_engines_and_the_registry_names_it():
    from prunebook.engines import ENGINES

    for engine in ENGINES.values():
        assert f"engines.{engine.module}" in MODULES, engine
        engine.load()
    assert set(ENGINES) == {"reference", "weights", "coefficients", "gram", "flow"}
    top = {name for name in MODULES if "." not in name}
    assert not top & {"guard", "engine_weights", "engine_coefficients", "coefficient_kernel", "dynamics"}


def test_leaf_modules_stay_leaves():
    graph = import_graph()
    for leaf in ("_checks", "activation", "conventions", "result", "provenance", "_version", "engines.guard",
                 "engines.coefficient_kernel", "engines.flow_kernel"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    assert graph["seeds"] == {"_checks"}
    assert "experiment" not in graph["criteria"], "criteria must not import upwards"


def _code(path: pathlib.Path) -> str:
    """Source without docstrings and comments."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            body.pop(0)
    return ast.unparse(tree)


def test_one_activation():
    """sigma and sigma' are computed in prunebook.activation only."""
    for name, path in MODULES.items():
        if name == "activation":
            continue
        code = _code(path)
        assert not re.search(r"\brelu\(|clamp_min\(0\)\.pow|clamp\(min=0\)\.pow", code), f"{name} computes an activation itself"


def _chapter_code() -> dict[str, str]:
    out = {}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        out[path.stem] = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return out


RANDOM_STATE = re.compile(r"torch\.Generator\(|manual_seed\(|default_rng\(|SeedSequence\(|np\.random\.\w+\(|torch\.manual_seed")


def test_generators_made_only_by_the_seeds_module():
    for name, path in MODULES.items():
        if name == "seeds":
            continue
        assert not RANDOM_STATE.search(_code(path)), f"{name} makes its own generator: use prunebook.seeds"
    for name, code in _chapter_code().items():
        body = "\n".join(ln for ln in code.splitlines() if "google.colab" not in ln)
        assert not RANDOM_STATE.search(body), f"chapter {name} makes its own generator: use prunebook.seeds"
        assert not re.search(r"\bseed\s*\+\s*\d", body), f"chapter {name} offsets a seed by hand: use prunebook.seeds"


THRESHOLD_USES = {
    "MIN_TEST_SIZE": r"n_test\W{1,12}2000\b|\b2000\W{1,12}n_test|test_size\W{1,5}2000\b",
    "LOSS_TARGET": r"(target_loss|loss)\s*(:\s*float\s*)?[<=]\s*(1e-2|0\.01)\b",
    "SUCCESS_ERROR": r"(error|level)\s*(:\s*float\s*)?[<>=]=?\s*0\.25\b",
}


def test_threshold_patterns_catch_literals():
    assert re.search(THRESHOLD_USES["SUCCESS_ERROR"], "ok = test_error < 0.25")
    assert re.search(THRESHOLD_USES["SUCCESS_ERROR"], "def f(df, *, level: float = 0.25)")
    assert re.search(THRESHOLD_USES["LOSS_TARGET"], "target_loss: float = 1e-2")
    assert re.search(THRESHOLD_USES["MIN_TEST_SIZE"], "if n_test < 2000:")
    assert not re.search(THRESHOLD_USES["SUCCESS_ERROR"], "ok = test_error < SUCCESS_ERROR")


@pytest.mark.parametrize("constant", sorted(THRESHOLD_USES))
def test_thresholds_are_named_once(constant):
    """The book's thresholds are defined in prunebook.conventions and used by name elsewhere."""
    from prunebook import conventions

    assert hasattr(conventions, constant)
    for name, path in MODULES.items():
        if name != "conventions":
            assert not re.search(THRESHOLD_USES[constant], _code(path)), f"{name} writes a literal instead of {constant}"
