"""The GitHub workflows, linted offline (zizmor, check-jsonschema's vendored schemas) and held to
the release design: least privilege per job, no deploy cut off halfway, the book published from tags."""

import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

BIN = pathlib.Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name):
    # PyYAML reads the key `on` as True (YAML 1.1); BaseLoader keeps every key a string
    return yaml.load((WORKFLOWS / name).read_text(), Loader=yaml.BaseLoader)


def _steps(job):
    return job.get("steps", [])


def _uses(job):
    return [s["uses"] for s in _steps(job) if "uses" in s]


def _runs(job):
    return "\n".join(s.get("run", "") for s in _steps(job))


def zizmor(*paths):
    return subprocess.run([str(BIN / "zizmor"), "--offline", "--persona", "pedantic", "--no-progress", *map(str, paths)],
                          capture_output=True, text=True, cwd=ROOT)


def schema(name, *paths):
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", name, *map(str, paths)],
                          capture_output=True, text=True)


def test_zizmor_offline_finds_nothing():
    res = zizmor(ROOT / ".github")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No findings to report" in res.stdout + res.stderr
    audited = set(re.findall(r"completed \S*?\.github/(\S+)", res.stderr))
    assert audited == {"dependabot.yml", "workflows/book.yml", "workflows/release.yml"}, audited


def test_zizmor_would_catch_a_regression(tmp_path):
    text = (WORKFLOWS / "release.yml").read_text()
    assert "\npermissions:\n  contents: read\n" in text and "persist-credentials: false" in text
    bad = text.replace("\npermissions:\n  contents: read\n", "\npermissions: write-all\n")
    bad = bad.replace("        with:\n          persist-credentials: false\n", "")  # checkout leaves the token on disk
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "release.yml").write_text(bad)
    res = zizmor(tmp_path / "workflows" / "release.yml")
    assert res.returncode != 0
    assert "excessive-permissions" in res.stdout and "artipacked" in res.stdout


@pytest.mark.parametrize("name", ["vendor.github-workflows", "custom.github-workflows-require-timeout"])
def test_workflows_match_the_vendored_schemas(name):
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"book.yml", "release.yml"}
    res = schema(name, *files)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dependabot_config_matches_its_schema():
    res = schema("vendor.dependabot", ROOT / ".github" / "dependabot.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_schema_check_would_catch_a_broken_workflow(tmp_path):
    text = (WORKFLOWS / "book.yml").read_text()
    (tmp_path / "book.yml").write_text(text.replace("runs-on:", "runs_on:"))
    assert schema("vendor.github-workflows", tmp_path / "book.yml").returncode != 0


def test_every_action_is_pinned_to_a_commit_of_a_current_major():
    current = {  # the newest major of each action (checked 2026-11 against the actions' repositories)
        "actions/checkout": 7, "actions/setup-python": 7, "actions/upload-artifact": 7,
        "actions/download-artifact": 8, "actions/upload-pages-artifact": 5, "actions/deploy-pages": 5,
        "pypa/gh-action-pypi-publish": 1,
    }
    seen = set()
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            match = re.search(r"uses:\s*([\w.-]+/[\w.-]+)@(\S+)\s*#\s*v(\d+)\.", line)
            if "uses:" in line:
                assert match, f"{path.name}: {line.strip()} is not '<action>@<sha>  # v<version>'"
                action, ref, major = match.group(1), match.group(2), int(match.group(3))
                assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}: {action} pinned to {ref}, not a commit"
                assert major >= current[action], f"{path.name}: {action} v{major} is older than v{current[action]}"
                seen.add(action)
    assert seen == set(current)


def test_permissions_are_read_only_except_where_a_job_publishes():
    privileged = {}
    for path in WORKFLOWS.glob("*.yml"):
        wf = _load(path.name)
        assert wf["permissions"] == {"contents": "read"}, path.name
        for job_id, job in wf["jobs"].items():
            perms = job.get("permissions", {})
            writes = {k for k, v in perms.items() if v == "write"}
            if writes:
                privileged[(path.name, job_id)] = writes
    uses = {key: _uses(_load(key[0])["jobs"][key[1]]) for key in privileged}
    assert privileged == {
        ("release.yml", "pypi"): {"id-token"},
        ("release.yml", "colab"): {"contents"},
        ("release.yml", "pages"): {"pages", "id-token"},
    }
    assert any(u.startswith("pypa/gh-action-pypi-publish@") for u in uses[("release.yml", "pypi")])
    assert any(u.startswith("actions/deploy-pages@") for u in uses[("release.yml", "pages")])
    for key in privileged:  # privileged jobs run no project code beyond the small publishing script
        assert "make" not in _runs(_load(key[0])["jobs"][key[1]])


def test_book_workflow_tests_on_push_pr_and_weekly_with_a_pip_cache():
    wf = _load("book.yml")
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(wf["on"])
    assert re.fullmatch(r"\d+ \d+ \* \* \d", wf["on"]["schedule"][0]["cron"]), "weekly"
    test = wf["jobs"]["test"]
    setup = next(s for s in _steps(test) if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"].split() == ["pyproject.toml", "constraints.txt"]
    assert "make test" in _runs(test) and "make dist" in _runs(test)
    artifacts = {s["with"]["name"] for s in _steps(test) if s.get("uses", "").startswith("actions/upload-artifact@")}
    assert artifacts == {"screenshots", "book-html", "assignments", "dist"}
    for job in wf["jobs"].values():  # the book is published from release tags only
        assert not any("deploy-pages" in u or "pypi-publish" in u for u in _uses(job))


def test_release_workflow_runs_on_v_tags_and_cannot_be_cancelled_halfway():
    wf = _load("release.yml")
    assert wf["on"] == {"push": {"tags": ["v*"]}}
    assert wf["concurrency"]["cancel-in-progress"] == "false"
    pages = wf["jobs"]["pages"]
    assert pages["concurrency"]["cancel-in-progress"] == "false"
    assert pages["environment"]["name"] == "github-pages"
    assert set(pages["needs"]) == {"build", "pypi", "colab"}
    assert wf["jobs"]["pypi"]["environment"]["name"] == "pypi"


def test_release_workflow_checks_tests_and_builds_before_publishing():
    build = _load("release.yml")["jobs"]["build"]
    runs = [s.get("run", "") for s in _steps(build)]
    order = ["tools/release_check.py check --tag", "make test", "make dist", "make book", "make colab"]
    positions = [next(i for i, r in enumerate(runs) if step in r) for step in order]
    assert positions == sorted(positions), "check the tag first, then test, then build"
    assert '>> "$GITHUB_OUTPUT"' in runs[positions[0]]
    setup = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/setup-python@"))
    assert "cache" not in setup.get("with", {}), "no cache in a release build (cache poisoning)"
    uploads = {s["with"].get("name", "github-pages"): s["with"]["path"] for s in _steps(build)
               if "upload" in s.get("uses", "")}
    assert uploads == {"dist": "dist", "colab-edition": "_build/colab", "github-pages": "_build/html"}
    colab = _load("release.yml")["jobs"]["colab"]
    assert "tools/publish_edition.py edition" in _runs(colab) and '--branch colab' in _runs(colab)
    assert "${{" not in _runs(colab), "expressions go through env:, never into the script"


def test_makefile_targets_the_workflows_call_exist():
    targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.M))
    called = set()
    for path in WORKFLOWS.glob("*.yml"):
        called |= set(re.findall(r"\bmake ([a-z]+)", path.read_text()))
    missing = called - targets
    # `make colab` is the Colab edition's target (issue 13), added with the edition itself
    assert not missing, missing
