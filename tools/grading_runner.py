"""What runs inside the grading sandbox, and the plain-data format that crosses its wall.

    python grading_runner.py run JOB.json        (started by tools/grading.py, inside the sandbox)

This file is copied into every sandbox (``tools/sandbox.py``): it may import only the standard
library, numpy, IPython and (lazily) torch, never anything of the repository.

**The runner** executes one prepared submission (``JOB.json``, written by ``tools/grading.py``) in
an in-process IPython shell: its code cells in order, each interrupted at the deadline (a
``SIGALRM`` timer raises ``GradingTimeLimit`` in the running cell; later cells do not run). Right
after the check cell of each question it evaluates that question's *probes*: the calls that the
question's tests (public check, hidden tests, the instructor's extra tests) made to the functions
the exercise defines, and the exercise's variables they read, recorded by the grader's own run of
the reference solution (``tools/grading_referee.py``). A probe is a function name with its
arguments as plain data; the runner calls the student's function of that name on them and writes
what came back, as plain data, to ``out/answers/<question>.json`` (+ ``.npz``). It never sees a
test's code or an expected value. At the end it writes ``out/done.json``: the cells that raised,
each with the name of its nearest built-in exception class (a closed vocabulary: nothing the
student's code chooses can be carried out through it).

**The plain-data format** (``encode``/``decode``, ``save``/``load``): a JSON tree for the
structure, plus one uncompressed ``.npz`` (``allow_pickle=False``) for the arrays. Supported:
None, bool, int, float, str, complex, list, tuple, dict (any encodable keys), set, frozenset,
range, named tuples (rebuilt as the package's own class when it is one, e.g. ``prunebook.Dataset``,
else as a plain named tuple), numpy arrays and scalars (no object dtype), torch tensors (dense,
any dtype, ``requires_grad`` kept), ``torch.Size``, torch and numpy dtypes, pandas DataFrames,
Series and Index (columns of numbers, booleans, dates, text or missing values, in their pandas
dtype; no MultiIndex). Anything else is
refused. An array that occurs several times (the same table passed to several calls) is stored
once. Reading never runs code from the data: no pickle, no import outside ``prunebook``, no
constructor other than the named-tuple classes above; sizes and depth are capped.
"""

from __future__ import annotations

import builtins
import importlib
import io
import json
import os
import signal
import stat
import sys
import time
import zipfile

# ----------------------------------------------------------------------------- limits

MAX_DEPTH = 64
MAX_NODES = 2_000_000
MAX_JSON_BYTES = 64 * 2**20
MAX_ARRAY_BYTES = 512 * 2**20  # uncompressed, per answer file
MAX_SMALL_FILE = 2**20  # done.json


class Unreadable(TypeError):
    """A value the plain-data format cannot carry (or a file that breaks its limits)."""


# names the feedback may show: the built-in exception classes, and the runner's own
BUILTIN_EXCEPTIONS = frozenset(
    n for n in dir(builtins) if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
)


class GradingTimeLimit(Exception):
    """Raised in the running cell at the deadline (or instead of a cell that would start after it)."""


ERROR_NAMES = BUILTIN_EXCEPTIONS | {"GradingTimeLimit"}


def error_name(e: BaseException) -> str:
    """The nearest built-in exception class of ``e`` (``GradingTimeLimit`` for the runner's own)."""
    for cls in type(e).__mro__:
        if cls is GradingTimeLimit:
            return "GradingTimeLimit"
        if cls.__module__ == "builtins" and cls.__name__ in BUILTIN_EXCEPTIONS and getattr(builtins, cls.__name__) is cls:
            return cls.__name__
    return "Exception"


# ----------------------------------------------------------------------------- the plain-data format


def _torch():
    return sys.modules.get("torch")


def _numpy():
    import numpy

    return numpy


class _Budget:
    def __init__(self):
        self.nodes = 0
        self.array_bytes = 0

    def tick(self, depth: int):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Unreadable(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise Unreadable(f"nested deeper than {MAX_DEPTH}")

    def add_array(self, nbytes: int):
        self.array_bytes += int(nbytes)
        if self.array_bytes > MAX_ARRAY_BYTES:
            raise Unreadable(f"arrays larger than {MAX_ARRAY_BYTES // 2**20} MiB in all")


_REFABLE = (list, dict, tuple)


def encode(obj, arrays: dict, refs: dict | None = None, _budget: _Budget | None = None, _depth: int = 0):
    """The JSON tree of ``obj``; its arrays are added to ``arrays`` (name -> numpy array).

    ``refs`` maps ``id(x)`` to an index for objects to be written as ``{"$ref": index}`` (an
    earlier probe's result, passed on to a later probe).
    """
    np = _numpy()
    torch = _torch()
    budget = _budget or _Budget()
    budget.tick(_depth)
    t = type(obj)
    if refs and id(obj) in refs and (isinstance(obj, (_REFABLE, np.ndarray)) or (torch is not None and isinstance(obj, torch.Tensor))):
        if not (isinstance(obj, tuple) and len(obj) == 0):
            return {"$ref": refs[id(obj)]}
    if obj is None or t in (bool, int, str):
        return obj
    if t is float:
        return obj
    if isinstance(obj, np.generic):
        arr = np.asarray(obj)
        _check_dtype(arr.dtype)
        return {"$npscalar": _add(arrays, arr, budget)}
    if t is complex:
        return {"$complex": [obj.real, obj.imag]}
    if isinstance(obj, np.ndarray):
        arr = np.asarray(obj)
        _check_dtype(arr.dtype)
        return {"$ndarray": _add(arrays, arr, budget)}
    if torch is not None:
        if isinstance(obj, torch.Tensor):
            if obj.layout != torch.strided or obj.is_quantized or obj.device.type == "meta":
                raise Unreadable(f"a {obj.layout} tensor (only dense tensors)")
            x = obj.detach().cpu().resolve_conj().resolve_neg()
            dtype = str(x.dtype).removeprefix("torch.")
            if x.dtype == torch.bfloat16:
                x = x.to(torch.float32)
            arr = x.contiguous().numpy()
            return {"$tensor": _add(arrays, arr, budget), "dtype": dtype, "grad": bool(obj.requires_grad)}
        if isinstance(obj, torch.Size):
            return {"$torch_size": [int(v) for v in obj]}
        if isinstance(obj, torch.dtype):
            return {"$torch_dtype": str(obj).removeprefix("torch.")}
    if isinstance(obj, np.dtype):
        _check_dtype(obj)
        return {"$np_dtype": obj.str}
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
        return _encode_pandas(pd, obj, arrays, refs, budget, _depth)
    if isinstance(obj, tuple) and hasattr(t, "_fields"):
        fields = [str(f) for f in t._fields]
        return {"$namedtuple": f"{t.__module__}:{t.__qualname__}", "fields": fields,
                "items": [encode(v, arrays, refs, budget, _depth + 1) for v in tuple.__iter__(obj)]}
    if isinstance(obj, tuple):
        return {"$tuple": [encode(v, arrays, refs, budget, _depth + 1) for v in tuple.__iter__(obj)]}
    if isinstance(obj, list):
        return {"$list": [encode(v, arrays, refs, budget, _depth + 1) for v in list.__iter__(obj)]}
    if isinstance(obj, dict):
        return {"$dict": [[encode(k, arrays, refs, budget, _depth + 1), encode(v, arrays, refs, budget, _depth + 1)]
                          for k, v in dict.items(obj)]}
    if isinstance(obj, (set, frozenset)):
        return {"$set": [encode(v, arrays, refs, budget, _depth + 1) for v in obj], "frozen": isinstance(obj, frozenset)}
    if t is range:
        return {"$range": [obj.start, obj.stop, obj.step]}
    if isinstance(obj, (bool, int, float, str)):  # subclasses (np.float64 was handled above): their base value
        for base in (bool, int, float, str):
            if isinstance(obj, base):
                return base(obj) if base is not str else str.__str__(obj)
    raise Unreadable(f"a value of type {t.__module__}.{t.__qualname__}")


def _check_dtype(dtype):
    if dtype.kind not in "biufcUSmM" or dtype.hasobject or dtype.fields is not None:
        raise Unreadable(f"an array of dtype {dtype} (only numbers, booleans, strings and dates)")


def _add(arrays: dict, arr, budget: _Budget) -> str:
    """The name of ``arr`` in ``arrays`` (an array of the same dtype, shape and bytes is stored once)."""
    import hashlib

    arr = arr if arr.flags.c_contiguous else arr.copy(order="C")
    key = f"{arr.dtype.str} {arr.shape} {hashlib.sha256(arr.reshape(-1).view('u1') if arr.size else b'').hexdigest()}"
    seen = arrays.setdefault("__seen__", {}) if isinstance(arrays, dict) else {}
    if key in seen:
        return seen[key]
    budget.add_array(arr.nbytes)
    name = f"a{len(arrays) - 1}"
    arrays[name] = arr
    seen[key] = name
    return name


def _column(pd, values, arrays: dict, budget: _Budget) -> dict:
    """A pandas column (or index): an array when numpy holds it (numbers, booleans, dates), else its
    values one by one (text, missing values, nullable integers...) with the name of its pandas dtype."""
    np = _numpy()
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        return {"$array": _add(arrays, np.asarray(values.to_numpy()), budget)}
    out = []
    for v in values.to_numpy(dtype=object).tolist():
        if v is None or v is pd.NA or v is pd.NaT:
            out.append(None)
        elif type(v) in (str, int, float, bool):
            out.append(v)
        elif isinstance(v, np.generic) and v.dtype.kind in "biuf":
            out.append(v.item())
        else:
            raise Unreadable(f"a pandas column holding a {type(v).__name__} (only numbers, booleans, dates, text)")
    budget.nodes += len(out)
    if budget.nodes > MAX_NODES:
        raise Unreadable(f"more than {MAX_NODES} values")
    return {"$values": out, "dtype": str(dtype)}


def _encode_pandas(pd, obj, arrays, refs, budget, depth):
    if isinstance(obj, pd.MultiIndex) or (isinstance(obj, pd.DataFrame) and isinstance(obj.columns, pd.MultiIndex)):
        raise Unreadable("a pandas MultiIndex")
    if isinstance(obj, pd.RangeIndex):
        return {"$range_index": [obj.start, obj.stop, obj.step], "name": encode(obj.name, arrays, refs, budget, depth + 1)}
    if isinstance(obj, pd.Index):
        return {"$index": _column(pd, obj, arrays, budget), "name": encode(obj.name, arrays, refs, budget, depth + 1)}
    index = encode(obj.index, arrays, refs, budget, depth + 1)
    if isinstance(obj, pd.Series):
        return {"$series": _column(pd, obj, arrays, budget), "index": index, "name": encode(obj.name, arrays, refs, budget, depth + 1)}
    return {"$dataframe": [_column(pd, obj.iloc[:, k], arrays, budget) for k in range(obj.shape[1])],
            "columns": encode(obj.columns, arrays, refs, budget, depth + 1), "index": index}


def decode(node, arrays, ref=None, _budget: _Budget | None = None, _depth: int = 0):
    """The value of a JSON tree written by ``encode``; ``ref(i)`` resolves ``{"$ref": i}``."""
    budget = _budget or _Budget()
    budget.tick(_depth)
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is not dict or not node:
        raise Unreadable("not a value of the plain-data format")
    kind = next(iter(node))

    def sub(v):
        return decode(v, arrays, ref, budget, _depth + 1)

    def seq(v):
        if type(v) is not list:
            raise Unreadable(f"{kind}: not a list")
        return [sub(x) for x in v]

    value = node[kind]
    if kind == "$ref":
        if ref is None or type(value) is not int:
            raise Unreadable("a reference where none is allowed")
        return ref(value)
    if kind == "$list":
        return seq(value)
    if kind == "$tuple":
        return tuple(seq(value))
    if kind == "$dict":
        if type(value) is not list or not all(type(p) is list and len(p) == 2 for p in value):
            raise Unreadable("$dict: not a list of pairs")
        out = {}
        for k, v in value:
            key = sub(k)
            try:
                hash(key)
            except TypeError:
                raise Unreadable("$dict: an unhashable key") from None
            out[key] = sub(v)
        return out
    if kind == "$set":
        items = seq(value)
        try:
            return frozenset(items) if node.get("frozen") is True else set(items)
        except TypeError:
            raise Unreadable("$set: an unhashable item") from None
    if kind == "$range":
        if type(value) is not list or len(value) != 3 or not all(type(v) is int for v in value):
            raise Unreadable("$range: three integers")
        return range(*value)
    if kind == "$complex":
        if type(value) is not list or len(value) != 2 or not all(type(v) in (int, float) for v in value):
            raise Unreadable("$complex: two numbers")
        return complex(*value)
    if kind == "$namedtuple":
        fields = node.get("fields")
        if type(value) is not str or type(fields) is not list or not all(type(f) is str and f.isidentifier() for f in fields):
            raise Unreadable("$namedtuple: a class name and field names")
        items = seq(node.get("items"))
        if len(items) != len(fields):
            raise Unreadable("$namedtuple: as many items as fields")
        return _namedtuple_class(value, fields)(*items)
    if kind in ("$ndarray", "$npscalar", "$tensor"):
        arr = arrays.get(value) if type(value) is str else None
        if not isinstance(arr, _numpy().ndarray):
            raise Unreadable(f"{kind}: no such array")
        if kind == "$ndarray":
            return arr.copy()
        if kind == "$npscalar":
            if arr.ndim != 0:
                raise Unreadable("$npscalar: not a 0-d array")
            return arr[()]
        import torch

        dtype = getattr(torch, node.get("dtype", ""), None) if type(node.get("dtype")) is str else None
        if not isinstance(dtype, torch.dtype):
            raise Unreadable("$tensor: no such dtype")
        if arr.dtype.kind not in "biufc":
            raise Unreadable("$tensor: not a numeric array")
        t = torch.from_numpy(arr.copy()).to(dtype)
        if node.get("grad") is True and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
        return t
    if kind in ("$series", "$dataframe", "$index", "$range_index"):
        return _decode_pandas(kind, node, arrays, sub)
    if kind == "$torch_size":
        import torch

        if type(value) is not list or not all(type(v) is int for v in value):
            raise Unreadable("$torch_size: integers")
        return torch.Size(value)
    if kind == "$torch_dtype":
        import torch

        dtype = getattr(torch, value, None) if type(value) is str else None
        if not isinstance(dtype, torch.dtype):
            raise Unreadable("$torch_dtype: no such dtype")
        return dtype
    if kind == "$np_dtype":
        np = _numpy()
        try:
            dt = np.dtype(value if type(value) is str else "O")
            _check_dtype(dt)
        except (TypeError, ValueError):
            raise Unreadable("$np_dtype: not a plain dtype") from None
        return dt
    raise Unreadable(f"unknown kind {kind!r}")


def _decode_column(node, arrays):
    """The values of a pandas column: a numpy array, or an object array and the dtype to give it."""
    np = _numpy()
    if type(node) is dict and "$values" in node:
        values = node["$values"]
        if type(values) is not list or not all(v is None or type(v) in (str, int, float, bool) for v in values):
            raise Unreadable("a pandas column of unknown values")
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr, node.get("dtype") if type(node.get("dtype")) is str else "object"
    arr = arrays.get(node.get("$array")) if type(node) is dict and type(node.get("$array")) is str else None
    if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind not in "biufcmM":
        raise Unreadable("a pandas column without its array")
    return arr.copy(), None


def _pandas_values(pd, column):
    """A Series of the column's values, in its own pandas dtype when that dtype is a plain one."""
    arr, dtype = column
    s = pd.Series(arr, copy=False)
    if dtype not in (None, "object"):
        try:
            s = s.astype(pd.api.types.pandas_dtype(dtype))
        except (TypeError, ValueError):  # a dtype this pandas does not know: the values stay objects
            pass
    return s


def _decode_pandas(kind, node, arrays, sub):
    import pandas as pd

    if kind == "$range_index":
        v = node["$range_index"]
        if type(v) is not list or len(v) != 3 or not all(type(x) is int for x in v):
            raise Unreadable("$range_index: three integers")
        return pd.RangeIndex(*v, name=_label(sub(node.get("name"))))
    if kind == "$index":
        return pd.Index(_pandas_values(pd, _decode_column(node["$index"], arrays)), name=_label(sub(node.get("name"))))
    index = sub(node.get("index"))
    if not isinstance(index, pd.Index):
        raise Unreadable(f"{kind}: no index")
    if kind == "$series":
        values = _pandas_values(pd, _decode_column(node["$series"], arrays))
        if len(values) != len(index):
            raise Unreadable("$series: as many values as labels")
        values.index, values.name = index, _label(sub(node.get("name")))
        return values
    columns = sub(node.get("columns"))
    data = node["$dataframe"]
    if not isinstance(columns, pd.Index) or type(data) is not list or len(data) != len(columns):
        raise Unreadable("$dataframe: columns and their labels")
    values = [_pandas_values(pd, _decode_column(c, arrays)) for c in data]
    if any(len(v) != len(index) for v in values):
        raise Unreadable("$dataframe: columns as long as the index")
    frame = pd.concat(values, axis=1, ignore_index=True) if values else pd.DataFrame(index=range(len(index)))
    frame.index, frame.columns = index, columns
    return frame


def _label(value):
    try:
        hash(value)
    except TypeError:
        raise Unreadable("a pandas name that is not hashable") from None
    return value


_GENERIC: dict = {}


def _namedtuple_class(path: str, fields: list[str]):
    """The package's own named-tuple class at ``module:qualname`` (only under ``prunebook``), else a plain one."""
    module, _, qualname = path.partition(":")
    if module == "prunebook" or module.startswith("prunebook."):
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            obj = None
        if isinstance(obj, type) and issubclass(obj, tuple) and list(getattr(obj, "_fields", ())) == fields:
            return obj
    key = tuple(fields)
    if key not in _GENERIC:
        import collections

        _GENERIC[key] = collections.namedtuple("Record", fields, rename=True)
    return _GENERIC[key]


def save(stem: str, tree) -> None:
    """Write ``tree`` (JSON) and ``arrays`` to ``stem.json`` and ``stem.npz``: ``tree`` is (json_tree, arrays)."""
    import numpy as np

    doc, arrays = tree
    with open(stem + ".npz", "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if k != "__seen__"})
    with open(stem + ".json", "w") as f:
        json.dump(doc, f)


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of a regular file, never following a link, at most ``limit`` bytes (else Unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise FileNotFoundError(path) if isinstance(e, FileNotFoundError) else Unreadable(f"cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable("not a regular file")
        if st.st_size > limit:
            raise Unreadable(f"larger than {limit} bytes")
        chunks, size = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            size += len(b)
            if size > limit:
                raise Unreadable(f"larger than {limit} bytes")
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load(stem: str):
    """(json_tree, arrays) from ``stem.json`` and ``stem.npz``, checked against the size limits."""
    import numpy as np

    doc = json.loads(read_regular(stem + ".json", MAX_JSON_BYTES).decode("utf-8"))
    raw = read_regular(stem + ".npz", MAX_ARRAY_BYTES + MAX_JSON_BYTES)
    arrays = {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            if sum(i.file_size for i in infos) > MAX_ARRAY_BYTES + 2**20 * len(infos):
                raise Unreadable("arrays too large")
            for info in infos:
                if not info.filename.endswith(".npy") or "/" in info.filename:
                    raise Unreadable("not an array file")
                with z.open(info) as f:
                    arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(f, allow_pickle=False)
    except Unreadable:
        raise
    except Exception as e:  # noqa: BLE001 - a broken, encrypted or exotic zip, a bad array header
        raise Unreadable(f"not an npz file ({type(e).__name__})") from None
    return doc, arrays


# ----------------------------------------------------------------------------- the runner


def _null_output():
    """Send everything the submission prints to /dev/null (the grader reads only ``out/``)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.InteractiveShell.colors = "nocolor"
    return InteractiveShell.instance(config=cfg)


class _Deadline:
    """SIGALRM at the deadline raises GradingTimeLimit in whatever is running."""

    def __init__(self, deadline: float):
        self.deadline = deadline

        def stop(signum, frame):
            raise GradingTimeLimit("interrupted: the submission ran past its grading time limit")

        signal.signal(signal.SIGALRM, stop)

    def passed(self) -> bool:
        return time.time() >= self.deadline

    def arm(self):
        signal.setitimer(signal.ITIMER_REAL, max(self.deadline - time.time(), 0.001))

    def disarm(self):
        signal.setitimer(signal.ITIMER_REAL, 0)


def _probe(shell, spec: dict, arrays: dict) -> dict:
    """Call the student's functions as the question's tests did; their answers as plain data."""
    ns = shell.user_ns
    results, values = [], []

    def ref(k):
        if not (0 <= k < len(values)) or values[k] is _FAILED:
            raise Unreadable("depends on an earlier call that failed")
        return values[k]

    for call in spec.get("calls", []):
        try:
            args = decode(call["args"], arrays, ref)
            kwargs = decode(call["kwargs"], arrays, ref)
            if call["name"] not in ns:
                raise NameError(call["name"])
            value = ns[call["name"]](*args, **kwargs)
        except GradingTimeLimit:
            raise
        except BaseException as e:  # noqa: BLE001 - the student's code may raise anything
            values.append(_FAILED)
            results.append({"ok": False, "error": error_name(e)})
            continue
        values.append(value)
        results.append({"ok": True, "value": value})
    variables = {}
    for name in spec.get("vars", []):
        variables[name] = {"ok": True, "value": ns[name]} if name in ns else {"ok": False, "error": "NameError"}
    return {"calls": results, "vars": variables}


_FAILED = object()


def _write_answers(stem: str, answers: dict) -> None:
    arrays: dict = {}
    budget = _Budget()

    def enc(entry):
        if not entry["ok"]:
            return entry
        try:
            return {"ok": True, "value": encode(entry["value"], arrays, None, budget)}
        except GradingTimeLimit:
            raise
        except Unreadable as e:
            return {"ok": False, "error": "TypeError", "unreadable": str(e)[:200]}
        except BaseException as e:  # noqa: BLE001 - a value whose methods raise
            return {"ok": False, "error": error_name(e), "unreadable": "the value could not be read"}

    doc = {"calls": [enc(c) for c in answers["calls"]], "vars": {k: enc(v) for k, v in answers["vars"].items()}}
    save(stem + ".part", (doc, arrays))
    os.replace(stem + ".part.npz", stem + ".npz")
    os.replace(stem + ".part.json", stem + ".json")


def run(job_path: str) -> int:
    with open(job_path) as f:
        job = json.load(f)
    out = job["out"]
    os.makedirs(os.path.join(out, "answers"), exist_ok=True)
    probes, arrays = load(job["probes"])
    deadline = _Deadline(float(job["deadline"]))
    shell = _shell()
    _null_output()
    errors = []
    for pos, cell in enumerate(job["cells"]):
        if cell["kind"] == "code":
            if deadline.passed():
                errors.append({"pos": pos, "error": "GradingTimeLimit", "late": True})
            else:
                try:
                    deadline.arm()
                    result = shell.run_cell(cell["source"], store_history=False)
                    deadline.disarm()
                except GradingTimeLimit:  # the alarm between cells
                    result = None
                deadline.disarm()
                err = None if result is None else (result.error_before_exec or result.error_in_exec)
                if result is None or err is not None:
                    errors.append({"pos": pos, "error": "GradingTimeLimit" if result is None else error_name(err),
                                   "late": False})
        for qid in cell.get("probe", []):
            if deadline.passed():
                continue  # not run: the question scores zero
            try:
                deadline.arm()
                answers = _probe(shell, probes.get(qid, {}), arrays)
                _write_answers(os.path.join(out, "answers", qid), answers)
            except GradingTimeLimit:
                pass
            finally:
                deadline.disarm()
    with open(os.path.join(out, "done.json.part"), "w") as f:
        json.dump({"errors": errors}, f)
    os.replace(os.path.join(out, "done.json.part"), os.path.join(out, "done.json"))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and len(argv) == 2:
        code = run(argv[1])
        sys.stdout.flush()
        os._exit(code)  # no interpreter shutdown: nothing of the submission's runs after this
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
