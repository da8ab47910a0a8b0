"""The grader's trusted side: it runs the reference solution, records probes, and decides verdicts.

    python tools/grading_referee.py REFERENCE.ipynb CHAPTER PROBES_STEM REQUEST_FD RESPONSE_FD

Started once per chapter and grading run by ``tools/grading.py``, in a sandbox of its own
(``tools/sandbox.py``: the same isolation as a submission's, with the private copy of the bundle's
reference notebook, the chapter with its solutions, public checks, hidden tests and the
instructor's extra tests, which never enters a submission's sandbox). No student code ever runs
here: what comes from a submission is read as plain data (``grading_runner.load``).

1. **The reference run.** The chapter runs in an in-process IPython shell (``smoke = True`` after
   its parameters cell). Each exercise cell is noted with the names it defines. Each test cell of
   a question (its public check, each hidden test, each extra test) runs with those names
   replaced by recorders: every call a test makes to an exercise function (not the calls the
   functions make to each other) is recorded with its arguments as plain data (a value returned
   by an earlier recorded call is recorded as a reference to it), and so is every exercise
   variable the test reads. Before the test cell runs, the names it reads are snapshotted (deep
   copies where possible). The probes (calls and variables, no test code, no expected value) are
   written to PROBES_STEM.json/.npz for the submissions' sandboxes. A reference solution that
   fails one of its own tests stops grading. The package's compiled kernels (numba's cache, in
   ``NUMBA_CACHE_DIR``) that this run compiles are what each submission then gets a copy of.
2. **Verdicts.** For each request (a line of JSON on REQUEST_FD: a submission's answers folder and
   its question ids) every test cell of each question runs again, here, on a fresh copy of its
   snapshot, with each exercise function replaced by a stub that returns (or raises) what the
   student's function returned (or raised) for the same call in the sandbox, in the same order,
   and each exercise variable set to the student's value. The assertions therefore run in this
   process, against reference values computed here. A case passes when its cell runs to the end;
   a question passes when all its cases do. One line of JSON answers on RESPONSE_FD.

What this grades is the exercise's *answers to the tests' questions*: the values the student's
functions return for the inputs the tests give them. A test whose later inputs are computed from
an earlier answer gets, in the sandbox, inputs computed from the reference's answer (unless the
answer itself is passed on, which is recorded as a reference and resolved to the student's own
answer). Side effects of the student's functions (on their arguments or on globals) are not seen.
"""

from __future__ import annotations

import copy
import dis
import functools
import json
import os
import pathlib
import signal
import sys
import time
import types
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import assignments as asg  # noqa: E402
import grading_runner as gr  # noqa: E402

EXTRA = "extra-check"  # tag of the instructor's extra tests in the reference notebook


class ReferenceFailed(RuntimeError):
    """The reference solution does not run, or fails one of its own tests."""


class ReplayMismatch(AssertionError):
    """The test called the exercise's functions in another order than with the reference."""


class GradingTimeLimit(Exception):
    pass


def global_names(code: types.CodeType) -> set[str]:
    """Names a compiled cell reads from its module namespace (in it and in functions it defines)."""
    names = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_NAME", "LOAD_GLOBAL", "LOAD_FROM_DICT_OR_GLOBALS", "DELETE_NAME", "DELETE_GLOBAL"):
            names.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def _copyable(value) -> bool:
    return not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                                  types.MethodType, functools.partial))


class Case:
    """One test cell of a question, as recorded in the reference run."""

    def __init__(self, qid: str, name: str, hidden: bool, code, names: set[str]):
        self.qid, self.name, self.hidden, self.code, self.names = qid, name, hidden, code, names
        self.snapshot: dict = {}
        self.pristine: dict = {}
        self.calls: list[str] = []  # the exercise function called, in order (global index in the question's list)
        self.first = 0  # index of this case's first call in the question's call list
        self.vars: list[str] = []
        self.seconds = 0.0


class Referee:
    def __init__(self, nb: dict, stem: str):
        self.nb, self.stem = nb, stem
        self.exercises = asg.code_exercises(nb, stem)
        self.defined: dict[str, list[str]] = {}
        self.cases: dict[str, list[Case]] = {e.id: [] for e in self.exercises}
        self.probe_calls: dict[str, list[dict]] = {e.id: [] for e in self.exercises}
        self.arrays: dict = {}
        self.refs: dict[str, dict[int, int]] = {e.id: {} for e in self.exercises}  # id(result) -> call index
        self.results: list = []  # the recorded calls' results, kept alive so that their ids stay theirs
        self.shell = gr._shell()
        self.ns = self.shell.user_ns

    # ------------------------------------------------------------------ the reference run

    def run_reference(self) -> None:
        cells = self.nb["cells"]
        role: dict[int, tuple[str, str, bool]] = {}
        for e in self.exercises:
            role[e.cell] = (e.id, "exercise", False)
            role[e.check] = (e.id, "public check", False)
            k_hidden = k_extra = 0
            for h in e.hidden:
                if EXTRA in asg._tags(cells[h]):
                    k_extra += 1
                    role[h] = (e.id, f"extra test {k_extra}", True)
                else:
                    k_hidden += 1
                    role[h] = (e.id, f"hidden test {k_hidden}", True)
        params = next((i for i, c in enumerate(cells) if c["cell_type"] == "code" and "parameters" in asg._tags(c)), None)
        if params is None:
            self._run("smoke = True", "the injected parameters")
        for i, c in enumerate(cells):
            if c["cell_type"] != "code":
                continue
            src = asg._source(c)
            if i not in role:
                self._run(src, f"cell {i}")
            elif role[i][1] == "exercise":
                before = dict(self.ns)
                self._run(src, f"cell {i} (exercise {role[i][0]})")
                self.defined[role[i][0]] = [k for k, v in self.ns.items()
                                            if not k.startswith("_") and (k not in before or before[k] is not v)]
            else:
                qid, name, hidden = role[i]
                self._record(qid, name, hidden, src, i)
            if i == params:
                self._run("smoke = True", "the injected parameters")

    def _run(self, src: str, where: str) -> None:
        result = self.shell.run_cell(src, store_history=False)
        err = result.error_before_exec or result.error_in_exec
        if err is not None:
            raise ReferenceFailed(f"{self.stem}: the reference run failed at {where}: {type(err).__name__}: {err}")

    def _record(self, qid: str, name: str, hidden: bool, src: str, index: int) -> None:
        code = compile(self.shell.transform_cell(src), f"<{self.stem} {qid} {name}>", "exec")
        case = Case(qid, name, hidden, code, global_names(code))
        case.snapshot = dict(self.ns)
        for n in case.names & set(self.ns):
            if _copyable(self.ns[n]):
                try:
                    case.pristine[n] = copy.deepcopy(self.ns[n])
                except Exception:  # noqa: BLE001 - not copyable: the snapshot keeps the object itself
                    pass
        student = [n for n in self.defined.get(qid, []) if n in self.ns]
        calls = self.probe_calls[qid]
        case.first = len(calls)
        refs = self.refs[qid]
        depth = [0]

        def recorder(fname, fn):
            @functools.wraps(fn)
            def rec(*args, **kwargs):
                if depth[0]:
                    return fn(*args, **kwargs)
                try:
                    enc_args = gr.encode(list(args), self.arrays, refs)
                    enc_kwargs = gr.encode(dict(kwargs), self.arrays, refs)
                except gr.Unreadable as e:
                    raise ReferenceFailed(f"{self.stem}: the {name} of {qid} calls {fname} with {e}: "
                                          f"the grader can pass only plain data to an exercise function") from None
                k = len(calls)
                calls.append({"name": fname, "args": enc_args, "kwargs": enc_kwargs})
                case.calls.append(fname)
                depth[0] += 1
                try:
                    out = fn(*args, **kwargs)
                finally:
                    depth[0] -= 1
                if not any(out is a for a in (*args, *kwargs.values())):  # a new value, not an argument handed back
                    self.results.append(out)
                    refs[id(out)] = k
                return out

            return rec

        originals = {n: self.ns[n] for n in student if callable(self.ns[n])}
        case.vars = sorted(n for n in student if n not in originals and n in case.names)
        for n, fn in originals.items():
            self.ns[n] = recorder(n, fn)
        start = time.time()
        try:
            result = self.shell.run_cell(src, store_history=False)
        finally:
            for n, fn in originals.items():
                self.ns[n] = fn
        case.seconds = time.time() - start
        err = result.error_before_exec or result.error_in_exec
        if isinstance(err, ReferenceFailed):
            raise err
        if err is not None:
            raise ReferenceFailed(f"{self.stem}: the reference solution fails the {name} of {qid} (cell {index}): "
                                  f"{type(err).__name__}: {err}")
        self.cases[qid].append(case)

    def write_probes(self, stem: str) -> None:
        doc = {qid: {"calls": self.probe_calls[qid], "vars": sorted({v for c in self.cases[qid] for v in c.vars})}
               for qid in self.cases}
        gr.save(stem, (doc, self.arrays))

    # ------------------------------------------------------------------ verdicts

    def replay(self, answers_dir: str, qids: list[str]) -> dict:
        out = {}
        for qid in qids:
            if qid not in self.cases:
                continue
            out[qid] = self._replay_question(answers_dir, qid)
        return out

    def _replay_question(self, answers_dir: str, qid: str) -> dict:
        stem = os.path.join(answers_dir, qid)
        try:
            doc, arrays = gr.load(stem)
        except FileNotFoundError:
            return {"ran": False, "cases": []}
        except Exception:  # noqa: BLE001 - Unreadable, bad JSON, bad UTF-8, too deep; no detail: it may quote the file
            return {"ran": True, "unreadable": "its answers could not be read", "cases": []}
        n_calls = len(self.probe_calls[qid])
        calls = doc.get("calls") if isinstance(doc, dict) else None
        variables = doc.get("vars") if isinstance(doc, dict) else None
        if not isinstance(calls, list) or not isinstance(variables, dict) or len(calls) != n_calls:
            return {"ran": True, "unreadable": "its answers do not match the tests' calls", "cases": []}
        decoded: list = []
        budget = gr._Budget()
        for entry in calls:
            decoded.append(self._outcome(entry, arrays, budget))
        var_values = {name: self._outcome(variables.get(name), arrays, budget)
                      for c in self.cases[qid] for name in c.vars}
        results = []
        for case in self.cases[qid]:
            results.append(self._replay_case(case, decoded, var_values))
        unreadable = [o for o in decoded if o[0] == "unreadable"]
        return {"ran": True, "cases": results,
                "unreadable": "a function returned a value the grader cannot read" if unreadable else None}

    @staticmethod
    def _outcome(entry, arrays, budget):
        """('value', v) | ('error', exception name) | ('unreadable', why) for one answer entry."""
        if not isinstance(entry, dict):
            return ("error", "NameError")
        if entry.get("ok") is True:
            try:
                return ("value", gr.decode(entry.get("value"), arrays, None, budget))
            except Exception as e:  # noqa: BLE001 - Unreadable, or a value numpy or torch refuses
                return ("unreadable", str(e)[:80])
        name = entry.get("error")
        if entry.get("unreadable"):
            return ("unreadable", "")
        return ("error", name if isinstance(name, str) and name in gr.ERROR_NAMES else "Exception")

    def _replay_case(self, case: Case, decoded: list, var_values: dict) -> dict:
        ns = dict(case.snapshot)
        try:
            ns.update(copy.deepcopy(case.pristine))
        except Exception:  # noqa: BLE001
            pass
        position = [0]

        def stub(fname):
            def answer(*args, **kwargs):
                k = position[0]
                if k >= len(case.calls) or case.calls[k] != fname:
                    raise ReplayMismatch(f"call {k} to {fname}")
                position[0] += 1
                kind, value = decoded[case.first + k]
                if kind == "value":
                    return value
                if kind == "unreadable":
                    raise TypeError("the exercise returned a value the grader cannot read")
                exc = getattr(__import__("builtins"), value, None) if value in gr.BUILTIN_EXCEPTIONS else None
                if exc is None or not issubclass(exc, Exception):
                    exc = StudentError
                try:
                    error = exc(f"raised by the exercise ({value})")
                except Exception:  # noqa: BLE001 - a class that wants other arguments
                    error = StudentError(value)
                raise error

            answer.__name__ = answer.__qualname__ = fname
            return answer

        student = {n for n in case.calls}
        live = {}
        for n in set(self.defined.get(case.qid, [])) | student:
            if n in case.vars:
                kind, value = var_values.get(n, ("error", "NameError"))
                if kind == "value":
                    ns[n] = value
                else:
                    ns.pop(n, None)
                continue
            if callable(self.ns.get(n)) or n in student:
                ns[n] = stub(n)
                live[n] = self.ns.get(n)
                self.ns[n] = ns[n]  # a helper of the chapter that calls it by its global name gets the stub too
        limit = max(30.0, 10 * case.seconds + 10)

        def stop(signum, frame):
            raise GradingTimeLimit("the test ran past its time limit on these answers")

        previous = signal.signal(signal.SIGALRM, stop)
        error = None
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, limit)
                exec(case.code, ns)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as e:  # noqa: BLE001 - a failed assertion, anything the test raised, the time limit
            error = e
        finally:
            signal.signal(signal.SIGALRM, previous)
            for n, fn in live.items():
                if fn is None:
                    self.ns.pop(n, None)
                else:
                    self.ns[n] = fn
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: the grader is being stopped
        return {"case": case.name, "hidden": case.hidden, "passed": error is None,
                "error": None if error is None else _error_label(error)}


class StudentError(Exception):
    """The exercise raised an exception that is not a built-in one."""


def _error_label(e: BaseException) -> str:
    if isinstance(e, StudentError):
        return "Exception"
    if isinstance(e, (ReplayMismatch, GradingTimeLimit)):
        return type(e).__name__
    return gr.error_name(e) if gr.error_name(e) != "Exception" else type(e).__name__[:40]


def serve(nb_path: str, stem: str, probes_stem: str, req_fd: int, resp_fd: int) -> int:
    import matplotlib

    matplotlib.use("Agg")
    nb = json.loads(pathlib.Path(nb_path).read_text())
    requests = os.fdopen(req_fd, "r")
    responses = os.fdopen(resp_fd, "w")

    def answer(obj):
        responses.write(json.dumps(obj) + "\n")
        responses.flush()

    try:
        referee = Referee(nb, stem)
        referee.run_reference()
        referee.write_probes(probes_stem)
    except ReferenceFailed as e:
        answer({"error": str(e)})
        return 1
    except Exception as e:  # noqa: BLE001
        answer({"error": f"{stem}: the reference run failed: {type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}"})
        return 1
    answer({"ready": True, "questions": {q: len(referee.cases[q]) for q in referee.cases}})
    for line in requests:
        req = json.loads(line)
        if req.get("stop"):
            break
        try:
            answer({"verdicts": referee.replay(req["answers"], req["questions"])})
        except Exception as e:  # noqa: BLE001
            answer({"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}"})
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    code = serve(a[0], a[1], a[2], int(a[3]), int(a[4]))
    sys.stdout.flush()
    os._exit(code)
