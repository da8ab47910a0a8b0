"""The book's toolchain pinned: constraints.txt, written from the running environment.

    python tools/constraints.py freeze [--out constraints.txt] [--extras book,test,grading]
    python tools/constraints.py check                            # every package the extras need here is pinned

Jupyter Book 1 is in maintenance mode and its dependencies drift, so ``make`` installs the
package with ``-c constraints.txt``. ``freeze`` walks the installed dependency tree of the
package's requirements and its ``book``, ``test`` and ``grading`` extras (read from
pyproject.toml; ``--extras`` chooses fewer) and pins every distribution in it, except torch (installed first, from PyTorch's CPU index, by
tools/install_torch.py) and the CUDA-only packages that a CUDA torch brings. Each pin carries a
``python_version`` marker for the interpreter it was resolved with, so other Python versions
resolve pyproject's ranges freely instead of failing on a pin made for another interpreter.

One file for all three extras: ``make test`` installs them into one environment, so their trees
must agree. ``make constraints`` resolves the book and test extras first, freezes them, then
installs the grading extra (otter-grader) under those pins, so otter's tree never moves the
book's; should otter ever need other versions of a shared package, that step fails, and the
grader would need its own environment and constraints file.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import re
import sys
import tomllib
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXTRAS = ("book", "test", "grading")
UNPINNED = re.compile(r"^(torch|triton|nvidia-.*|prunebook)$")  # torch and what only a CUDA torch brings


def top_level(root: pathlib.Path = ROOT, extras: tuple[str, ...] = EXTRAS) -> list[Requirement]:
    """The package's requirements and those of its extras (book, test and grading unless told)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return [Requirement(r) for r in reqs]


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    env = default_environment()
    return any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))


def tree(requirements: list[Requirement]) -> dict[str, str]:
    """{canonical name: installed version} of every installed distribution the requirements need."""
    found: dict[str, str] = {}
    missing: list[str] = []
    queue = [req for req in requirements if _applies(req, set())]
    extras_seen: dict[str, set[str]] = {}
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        wanted = {canonicalize_name(e) for e in req.extras}
        if name in found and wanted <= extras_seen[name]:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        found[name] = dist.version
        extras_seen[name] = extras_seen.get(name, set()) | wanted
        for spec in dist.requires or []:
            sub = Requirement(spec)
            if _applies(sub, extras_seen[name]):
                queue.append(sub)
    if missing:
        raise LookupError("not installed here, though required: " + ", ".join(sorted(set(missing))))
    return found


def pins(root: pathlib.Path = ROOT, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """What constraints.txt should pin, from the running environment."""
    return {name: ver for name, ver in sorted(tree(top_level(root, extras)).items()) if not UNPINNED.match(name)}


def render(pinned: dict[str, str], extras: tuple[str, ...] = EXTRAS) -> str:
    py = ".".join(platform.python_version_tuple()[:2])
    names = ", ".join(extras[:-1]) + " and " + extras[-1] if len(extras) > 1 else extras[0]
    head = [
        f"# Constraints for the book's toolchain: every package of the {names} extras' tree, pinned",
        "# (torch aside: tools/install_torch.py installs it first). Used by every `pip install` of the",
        f"# Makefile. Resolved with Python {py} on {platform.system()} {platform.machine()}; the markers leave",
        "# other Python versions to pyproject's ranges. Refresh: `make constraints`. Do not edit by hand.",
    ]
    return "\n".join(head + [f'{n}=={v} ; python_version == "{py}"' for n, v in pinned.items()]) + "\n"


def parse(path: pathlib.Path) -> dict[str, Requirement]:
    """{canonical name: Requirement} of a constraints file; ValueError on anything but exact pins."""
    out: dict[str, Requirement] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise ValueError(f"{path.name}:{number}: {line!r} is not an exact pin (name==version)")
        name = canonicalize_name(req.name)
        if name in out:
            raise ValueError(f"{path.name}:{number}: {name} is pinned twice")
        out[name] = req
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["freeze", "check"])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "constraints.txt")
    parser.add_argument("--extras", default=",".join(EXTRAS), help=f"comma-separated, of {', '.join(EXTRAS)}")
    args = parser.parse_args(argv)
    extras = tuple(e for e in args.extras.split(",") if e)
    if not extras or set(extras) - set(EXTRAS):
        parser.error(f"--extras: expected some of {', '.join(EXTRAS)}, got {args.extras!r}")
    try:
        wanted = pins(extras=extras)
    except LookupError as err:
        print(f"constraints: {err}", file=sys.stderr)
        return 1
    if args.command == "freeze":
        args.out.write_text(render(wanted, extras))
        print(f"constraints: pinned {len(wanted)} packages in {args.out}", file=sys.stderr)
        return 0
    have = parse(args.out)
    unpinned = sorted(set(wanted) - set(have))
    print("\n".join(f"not pinned: {n}" for n in unpinned) or f"constraints: all {len(wanted)} packages pinned")
    return 1 if unpinned else 0


if __name__ == "__main__":
    sys.exit(main())
