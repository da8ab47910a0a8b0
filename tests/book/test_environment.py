"""environment.yml, pyproject.toml, the Makefile and .ci/run tell the same story."""

import re
import tomllib

import yaml
from packaging.requirements import Requirement


CONDA_NAMES = {"build": "python-build"}  # PyPI name -> conda-forge name, where they differ


def _pyproject(root):
    return tomllib.loads((root / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject(root):
    proj = _pyproject(root)["project"]
    wanted = [Requirement(r) for r in proj["dependencies"] if not r.startswith("torch")]
    for extra in ("book", "test"):
        wanted += [Requirement(r) for r in proj["optional-dependencies"][extra]]
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda = {}
    pip = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            name = re.split(r"[<>=! ]", dep, maxsplit=1)[0]
            conda[name.lower()] = dep
    for req in wanted:
        name = CONDA_NAMES.get(req.name.lower(), req.name.lower())
        assert name in conda, f"environment.yml lacks {name}"
        env_req = Requirement(conda[name].replace("python=", "python=="))
        assert env_req.specifier == req.specifier, f"{req.name}: {env_req.specifier} vs pyproject {req.specifier}"
    assert set(conda) - {CONDA_NAMES.get(r.name.lower(), r.name.lower()) for r in wanted} == {"python", "pip"}
    assert "-e ." in pip
    torch_pin = next(p for p in pip if p.startswith("torch"))
    assert torch_pin.split("#")[0].strip() == _makefile_var(root, "TORCH")


def test_environment_yml_asks_the_makefiles_cpu_index(root):
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    index = _makefile_var(root, "TORCH_INDEX")
    assert index == "https://download.pytorch.org/whl/cpu"
    assert f"--extra-index-url {index}" in pip, "conda users must get the CPU build where the index is reachable"


def _makefile_var(root, name):
    return re.search(rf"^{name}\s*:=\s*(\S+)", (root / "Makefile").read_text(), re.M).group(1)


def test_torch_pin_is_admitted_by_the_package(root):
    pin = _makefile_var(root, "TORCH")
    version = pin.split("==")[1]
    torch_req = next(Requirement(r) for r in _pyproject(root)["project"]["dependencies"] if r.startswith("torch"))
    assert torch_req.specifier.contains(version), f"pyproject's {torch_req} must admit {version}"
    env = yaml.safe_load((root / "environment.yml").read_text())
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(_pyproject(root)["project"]["requires-python"]).contains(py.split("=")[1] + ".0")


def test_ci_runs_the_readme_test_command(root):
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands[-1] == "make test"
