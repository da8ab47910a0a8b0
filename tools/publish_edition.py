"""Commit the Colab edition of a release to the branch ``colab``, under ``v<version>/``.

    PUBLISH_REMOTE=<git remote URL> python tools/publish_edition.py _build/colab --version 0.2.0 [--branch colab]

The book's launch links open
``https://colab.research.google.com/github/<owner>/<repo>/blob/colab/v<version>/chapters/<chapter>.ipynb``,
so each release's edition (``make colab`` writes ``_build/colab/chapters/*.ipynb``) is kept on its own
path of one branch: earlier releases stay where their links point. Publishing a version again
replaces that version's folder; an identical edition makes no commit. The branch is created (with
no history shared with ``main``) on the first release. The remote comes from ``PUBLISH_REMOTE``
(the release workflow puts its token there, out of the command line) or ``--remote``.
Standard library and git only.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

VERSION = re.compile(r"\d+(\.\d+)*([abc]|rc|\.post|\.dev)?\d*")
BRANCH_README = """\
# The Colab edition of the book, one folder per release

This branch is written by `.github/workflows/release.yml` (`tools/publish_edition.py`); do not
commit to it by hand. `v<version>/chapters/<chapter>.ipynb` is the Colab edition of release
`v<version>`, which the book's launch buttons open in Colab. The sources are on the default branch.
"""


def git(*args: str, cwd: pathlib.Path, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and res.returncode != 0:
        # never echo the remote: it may hold a token
        raise RuntimeError(f"git {args[0]} failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")
    return res


def publish(edition: pathlib.Path, version: str, remote: str, branch: str = "colab") -> str | None:
    """Commit ``edition`` to ``branch`` under ``v<version>/`` and push. Returns the commit, or None if unchanged."""
    if not VERSION.fullmatch(version):
        raise ValueError(f"version: expected a release version such as 0.2.0, got {version!r}")
    notebooks = sorted((edition / "chapters").glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"edition: no chapters/*.ipynb under {edition} (run `make colab` first)")
    if not remote:
        raise ValueError("remote: set PUBLISH_REMOTE or pass --remote")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        git("init", "-q", cwd=work)
        git("config", "user.name", "github-actions[bot]", cwd=work)
        git("config", "user.email", "41898282+github-actions[bot]@users.noreply.github.com", cwd=work)
        found = git("ls-remote", "--exit-code", "--heads", remote, branch, cwd=work, check=False)
        if found.returncode == 0:
            git("fetch", "-q", "--depth=1", remote, f"refs/heads/{branch}", cwd=work)
            git("checkout", "-q", "-B", branch, "FETCH_HEAD", cwd=work)
        elif found.returncode == 2:  # the remote answered: no such branch yet
            git("checkout", "-q", "--orphan", branch, cwd=work)
        else:
            raise RuntimeError(f"git ls-remote failed (exit {found.returncode}): {found.stderr.strip()[-500:]}")
        target = work / f"v{version}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(edition, target)
        if not (work / "README.md").exists():
            (work / "README.md").write_text(BRANCH_README)
        git("add", "-A", cwd=work)
        if git("diff", "--cached", "--quiet", cwd=work, check=False).returncode == 0:
            return None
        git("commit", "-q", "-m", f"Colab edition of v{version} ({len(notebooks)} chapters)", cwd=work)
        git("push", "-q", remote, f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("edition", type=pathlib.Path, help="the edition's folder, holding chapters/*.ipynb")
    parser.add_argument("--version", required=True, help="the release's version, without the v")
    parser.add_argument("--branch", default="colab")
    parser.add_argument("--remote", default=os.environ.get("PUBLISH_REMOTE", ""))
    args = parser.parse_args(argv)
    try:
        commit = publish(args.edition, args.version, args.remote, args.branch)
    except (ValueError, RuntimeError) as err:
        print(f"publish_edition: {err}", file=sys.stderr)
        return 1
    where = f"{args.branch}:v{args.version}/chapters/"
    print(f"published {where} at {commit}" if commit else f"{where} already holds this edition; nothing to commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
