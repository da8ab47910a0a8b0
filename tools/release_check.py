"""Release checks: the tag, the package's one version, the repository URL everywhere it is written.

    python tools/release_check.py check [--tag v0.2.0]   # exit 1 listing every problem; prints version=<v>
    python tools/release_check.py set-url https://github.com/<owner>/<repo>

``check`` (run by .github/workflows/release.yml on a ``v*`` tag, whose output line ``version=<v>``
goes to ``$GITHUB_OUTPUT``) fails, naming each problem, when

- the tag is not ``v`` + the version in ``src/prunebook/_version.py`` (the single version source:
  pyproject.toml reads it);
- ``_config.yml`` (or another file of ``URL_FILES``) still names the placeholder repository (the Colab
  cells would install from, and the launch links would point to, a repository that does not exist),
  or is not a ``https://github.com/<owner>/<repo>`` URL;
- pyproject.toml's ``[project.urls]`` or CITATION.cff name another repository than ``_config.yml``;
- CHANGELOG.md has no ``## [<version>] - YYYY-MM-DD`` section.

Without ``--tag`` it checks only that the URLs agree (the test suite runs that part on every
commit; the placeholder is accepted there, refused at release).

``set-url`` writes a new repository URL (and its GitHub Pages address) into ``_config.yml``,
pyproject.toml and CITATION.cff; then run ``python tools/notebooks.py sync`` for the Colab cells.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLACEHOLDER = "https://github.com/prunebook/pruning-before-training"
GITHUB_URL = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<repo>[A-Za-z0-9._-]+)")
URL_FILES = ("_config.yml", "pyproject.toml", "CITATION.cff")


def version(root: pathlib.Path = ROOT) -> str:
    text = (root / "src" / "prunebook" / "_version.py").read_text()
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise ValueError(f"{root / 'src/prunebook/_version.py'}: no __version__ = \"...\" line")
    return match.group(1)


def repository_url(root: pathlib.Path = ROOT) -> str:
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def pages_url(repo_url: str) -> str:
    """GitHub Pages address of a project repository: https://<owner>.github.io/<repo>/."""
    match = GITHUB_URL.fullmatch(repo_url)
    if not match:
        raise ValueError(f"repository URL: expected https://github.com/<owner>/<repo>, got {repo_url!r}")
    return f"https://{match['owner'].lower()}.github.io/{match['repo']}/"


def url_problems(root: pathlib.Path = ROOT) -> list[str]:
    """The repository URL of _config.yml is the one pyproject.toml and CITATION.cff name."""
    url = repository_url(root)
    if not GITHUB_URL.fullmatch(url):
        return [f"_config.yml: repository.url {url!r} is not https://github.com/<owner>/<repo>"]
    out = []
    urls = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("urls", {})
    expected = {"Repository": url, "Issues": url + "/issues", "Homepage": pages_url(url)}
    for key, want in expected.items():
        if urls.get(key) != want:
            out.append(f"pyproject.toml: [project.urls] {key} = {urls.get(key)!r}, expected {want!r}")
    for key, value in urls.items():
        if key not in expected and not value.startswith(url + "/"):
            out.append(f"pyproject.toml: [project.urls] {key} = {value!r} is not under {url}")
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    if cff.get("repository-code") != url:
        out.append(f"CITATION.cff: repository-code {cff.get('repository-code')!r}, expected {url!r}")
    if cff.get("url") != pages_url(url):
        out.append(f"CITATION.cff: url {cff.get('url')!r}, expected {pages_url(url)!r}")
    return out


def release_problems(tag: str, root: pathlib.Path = ROOT) -> list[str]:
    """Everything that must hold before tag ``tag`` is released."""
    out = []
    ver = version(root)
    if tag != f"v{ver}":
        out.append(
            f"tag {tag!r} does not match the package version {ver!r} (src/prunebook/_version.py): "
            f"tag v{ver}, or bump the version and tag again"
        )
    for name in URL_FILES:
        if PLACEHOLDER in (root / name).read_text():
            out.append(
                f"{name}: still names the placeholder repository {PLACEHOLDER}; create the repository and "
                "run `python tools/release_check.py set-url <its URL>` (RELEASING.md, step 1)"
            )
    out += url_problems(root)
    changelog = (root / "CHANGELOG.md").read_text()
    if not re.search(rf"^## \[{re.escape(ver)}\] - \d{{4}}-\d{{2}}-\d{{2}}\s*$", changelog, re.M):
        out.append(f"CHANGELOG.md: no '## [{ver}] - YYYY-MM-DD' section (move the Unreleased entries under it)")
    return out


def set_url(new: str, root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """Replace the current repository URL and its Pages address in every file that names them."""
    new = new.rstrip("/")
    pages_url(new)  # validates
    old = repository_url(root)
    if old == new:
        return []
    changed = []
    for name in URL_FILES:
        path = root / name
        text = path.read_text()
        updated = text.replace(old, new)
        if GITHUB_URL.fullmatch(old):
            updated = updated.replace(pages_url(old), pages_url(new))
        if updated != text:
            path.write_text(updated)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check the release (with --tag) or only that the URLs agree")
    check.add_argument("--tag", help="the git tag being released, e.g. v0.2.0")
    check.add_argument("--root", type=pathlib.Path, default=ROOT)
    seturl = sub.add_parser("set-url", help="write a new repository URL into _config.yml, pyproject, CITATION")
    seturl.add_argument("url")
    seturl.add_argument("--root", type=pathlib.Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.command == "set-url":
        try:
            changed = set_url(args.url, args.root)
        except ValueError as err:
            print(f"release_check: {err}", file=sys.stderr)
            return 1
        for path in changed:
            print(f"updated {path}", file=sys.stderr)
        print("now run: python tools/notebooks.py sync", file=sys.stderr)
        return 0
    problems = release_problems(args.tag, args.root) if args.tag is not None else url_problems(args.root)
    if problems:
        print("release check failed:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"version={version(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
