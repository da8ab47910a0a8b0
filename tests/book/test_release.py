"""The release path's checks: tag against the one version, the placeholder repository URL, the
files a published project carries, and the Colab edition committed to its branch."""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

from conftest import ROOT, load_tool

release_check = load_tool("release_check")
publish_edition = load_tool("publish_edition")


def _copy_release_files(dest):
    for name in ("_config.yml", "pyproject.toml", "CITATION.cff", "CHANGELOG.md"):
        shutil.copy(ROOT / name, dest / name)
    (dest / "src" / "prunebook").mkdir(parents=True)
    shutil.copy(ROOT / "src" / "prunebook" / "_version.py", dest / "src" / "prunebook" / "_version.py")
    return dest


def _set_version(root, version):
    (root / "src" / "prunebook" / "_version.py").write_text(f'__version__ = "{version}"\n')


def _add_changelog_section(root, version):
    text = (root / "CHANGELOG.md").read_text()
    (root / "CHANGELOG.md").write_text(text.replace("## [Unreleased]", f"## [Unreleased]\n\n## [{version}] - 2027-01-15", 1))


def _cli(root, *args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "release_check.py"), *args, "--root", str(root)],
                          capture_output=True, text=True)


def test_the_urls_agree_in_the_repository_as_it_is():
    assert release_check.url_problems(ROOT) == []


def test_the_release_refuses_the_placeholder_url(tmp_path):
    root = _copy_release_files(tmp_path)
    assert release_check.repository_url(root) == release_check.PLACEHOLDER  # until the owners create the repository
    version = release_check.version(root)
    _add_changelog_section(root, version)
    res = _cli(root, "check", "--tag", f"v{version}")
    assert res.returncode == 1 and res.stdout == ""
    assert "placeholder" in res.stderr and "_config.yml" in res.stderr and "set-url" in res.stderr


def test_a_release_with_a_real_url_matching_tag_and_changelog_passes(tmp_path):
    root = _copy_release_files(tmp_path)
    assert release_check.set_url("https://github.com/Some-Org/pruning-book", root)
    _set_version(root, "0.2.0")
    _add_changelog_section(root, "0.2.0")
    res = _cli(root, "check", "--tag", "v0.2.0")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "version=0.2.0\n"  # the workflow appends this line to $GITHUB_OUTPUT
    urls = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == "https://github.com/Some-Org/pruning-book"
    assert urls["Homepage"] == "https://some-org.github.io/pruning-book/"
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["repository-code"] == "https://github.com/Some-Org/pruning-book"
    assert release_check.PLACEHOLDER not in "".join(
        (root / n).read_text() for n in release_check.URL_FILES)


@pytest.mark.parametrize("tag", ["v0.2.1", "0.2.0", "v0.2", "release-0.2.0"])
def test_a_tag_that_is_not_v_plus_the_version_is_refused(tmp_path, tag):
    root = _copy_release_files(tmp_path)
    release_check.set_url("https://github.com/some-org/pruning-book", root)
    _set_version(root, "0.2.0")
    _add_changelog_section(root, "0.2.0")
    res = _cli(root, "check", "--tag", tag)
    assert res.returncode == 1
    assert f"tag '{tag}' does not match the package version '0.2.0'" in res.stderr


def test_a_release_without_its_changelog_section_is_refused(tmp_path):
    root = _copy_release_files(tmp_path)
    release_check.set_url("https://github.com/some-org/pruning-book", root)
    _set_version(root, "0.2.0")
    problems = release_check.release_problems("v0.2.0", root)
    assert problems == ["CHANGELOG.md: no '## [0.2.0] - YYYY-MM-DD' section (move the Unreleased entries under it)"]


def test_urls_that_disagree_are_named(tmp_path):
    root = _copy_release_files(tmp_path)
    text = (root / "CITATION.cff").read_text()
    (root / "CITATION.cff").write_text(text.replace('repository-code: "https://github.com/prunebook/', 'repository-code: "https://github.com/other/'))
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text().replace("/issues", "/discussions"))
    problems = release_check.url_problems(root)
    assert any(p.startswith("CITATION.cff: repository-code") for p in problems)
    assert any(p.startswith("pyproject.toml: [project.urls] Issues") for p in problems)


def test_set_url_rejects_what_is_not_a_github_repository(tmp_path):
    root = _copy_release_files(tmp_path)
    before = (root / "_config.yml").read_text()
    res = _cli(root, "set-url", "https://gitlab.com/x/y")
    assert res.returncode == 1 and "expected https://github.com/<owner>/<repo>" in res.stderr
    assert (root / "_config.yml").read_text() == before


def test_one_version_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "prunebook._version.__version__"}
    import prunebook

    assert prunebook.__version__ == release_check.version(ROOT)
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert "version" not in cff, "CITATION.cff would be a second version to keep in step"


def test_citation_cff_is_valid_and_cites_the_paper_correctly():
    res = subprocess.run([str(pathlib.Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.citation-file-format", str(ROOT / "CITATION.cff")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] == yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    (paper,) = cff["references"]
    assert paper["journal"] == "Journal of Machine Learning Research"
    assert (paper["volume"], paper["issue"], paper["start"], paper["end"], paper["year"]) == (26, "84", 1, 51, 2025)
    assert paper["title"].startswith("Random Pruning Over-parameterized Neural Networks Can Improve Generalization")
    assert [a["family-names"] for a in paper["authors"]] == ["Yang", "Liang", "Guo", "Wu", "Wang"]
    assert any("2301.00335" in i["value"] for i in paper["identifiers"])
    assert "ICLR" not in (ROOT / "CITATION.cff").read_text()  # only submitted there


def test_licences():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE-text.md").read_text()
    assert "CC BY 4.0" in text and "https://creativecommons.org/licenses/by/4.0/" in text
    readme = (ROOT / "README.md").read_text()
    assert "LICENSE-text.md" in readme and "CITATION.cff" in readme


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.M)
    assert headings[0] == ("Unreleased", "")
    for version, rest in headings[1:]:
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{version}]{rest}: needs ' - YYYY-MM-DD'"
    assert headings[-1][0] == "0.1.0"
    sections = set(re.findall(r"^### (\w+)$", text, re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_releasing_md_lists_the_human_steps():
    text = (ROOT / "RELEASING.md").read_text()
    for step in ("set-url", "trusted publisher", "Pages", "CHANGELOG", "tools/notebooks.py sync", "git tag",
                 "release_check.py check"):
        assert step in text, f"RELEASING.md lacks {step!r}"


# --- the Colab edition on its branch ---------------------------------------------------------


def _edition(path, names):
    (path / "chapters").mkdir(parents=True)
    for name in names:
        (path / "chapters" / f"{name}.ipynb").write_text(json.dumps({"cells": [], "name": name}))
    return path


def _branch_files(remote, branch="colab"):
    res = subprocess.run(["git", "ls-tree", "-r", "--name-only", branch], cwd=remote, capture_output=True, text=True,
                         check=True)
    return sorted(res.stdout.split())


@pytest.fixture
def remote(tmp_path):
    path = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def test_editions_are_committed_per_version_on_the_colab_branch(tmp_path, remote):
    first = publish_edition.publish(_edition(tmp_path / "e1", ["01_a", "02_b"]), "0.1.0", str(remote))
    assert first
    assert _branch_files(remote) == ["README.md", "v0.1.0/chapters/01_a.ipynb", "v0.1.0/chapters/02_b.ipynb"]
    publish_edition.publish(_edition(tmp_path / "e2", ["01_a"]), "0.2.0", str(remote))
    assert _branch_files(remote) == ["README.md", "v0.1.0/chapters/01_a.ipynb", "v0.1.0/chapters/02_b.ipynb",
                                     "v0.2.0/chapters/01_a.ipynb"], "earlier releases stay where their links point"
    # the same version again: its folder is replaced; an identical edition makes no commit
    publish_edition.publish(_edition(tmp_path / "e3", ["02_b"]), "0.1.0", str(remote))
    assert "v0.1.0/chapters/01_a.ipynb" not in _branch_files(remote)
    assert publish_edition.publish(tmp_path / "e3", "0.1.0", str(remote)) is None


def test_publishing_refuses_an_empty_edition_or_a_bad_version_before_touching_git(tmp_path, remote):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="edition: no chapters/"):
        publish_edition.publish(tmp_path / "empty", "0.1.0", str(remote))
    with pytest.raises(ValueError, match="version: expected"):
        publish_edition.publish(_edition(tmp_path / "e", ["a"]), "v0.1.0", str(remote))
    res = subprocess.run(["git", "branch", "--list"], cwd=remote, capture_output=True, text=True, check=True)
    assert res.stdout == ""


def test_publishing_to_an_unreachable_remote_fails_clearly(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "publish_edition.py"), str(_edition(tmp_path / "e", ["a"])),
                          "--version", "0.1.0", "--remote", str(tmp_path / "no-such-remote.git")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("publish_edition: git ls-remote failed")
