"""The grading sandbox: bubblewrap, a private filesystem view, no network, killed whole at the limit.

Each submission runs ``tools/grading_runner.py`` under ``bwrap`` (Debian's ``bubblewrap``, installed
by ``make grade``, ``make assignments`` and ``make test`` when missing):

- new user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all --unshare-user``): uid
  and gid 65534 (nobody) inside, no capabilities, no further user namespaces (bubblewrap 0.8 and
  later), no network (only a loopback that is down), a new session (no access to the grader's
  terminal);
- a filesystem made of read-only binds only: the system directories (``/usr`` and the ``/bin``,
  ``/lib``... links or folders), a short list of ``/etc`` files (no ``shadow``, no ``sudoers``; a
  ``passwd`` and a ``group`` that name only nobody), the Python installation, the virtual
  environment at ``/opt/venv`` with the editable install of ``prunebook`` (which points into the
  repository) masked, a non-editable copy of ``prunebook`` installed from a wheel built once per
  grading run at ``/opt/prunebook``, the runner at ``/opt/grader`` and the chapter's probes at
  ``/opt/probes``; a private ``/proc`` and ``/dev``; a tmpfs at ``/tmp`` (home, caches; 1 GiB with
  bubblewrap 0.8 and later); and one writable folder, ``/work``, the submission's own temporary
  copy, where the runner leaves its answers. Nothing else exists inside: not the repository, not
  the submissions folder, not the grading bundle, not another submission;
- ``--die-with-parent``: the sandbox goes when the grader does. At the time limit the grader kills
  ``bwrap``; the sandbox's PID 1 dies with it and the kernel kills every process left in its PID
  namespace (a process that double-forks into a new session included). When the runner exits the
  same happens, so nothing the submission started outlives it;
- files it writes are capped at 1 GiB each (``RLIMIT_FSIZE``);
- the package's compiled kernels (numba's cache) come as a private copy in ``/work``, made from the
  cache that the chapter's referee (which runs the reference the same way, in its own sandbox,
  without any student code) filled: a submission does not compile them again, and what it does to
  its copy stays in its copy.

The referee of each chapter (``tools/grading_referee.py``) runs in the same kind of sandbox, seeing
the private copy of the bundle and the submissions' answers read-only (``RefereeProcess`` in
``tools/grading.py``). ``Sandbox.check`` starts one before any grading and says why when it cannot;
``tools/grading.py`` then refuses to grade unless the instructor passes ``UNSAFE=1``
(``unsafe=True``): the runner then runs as a plain process with the instructor's permissions (see
``UNSAFE_EXPOSES``).
"""

from __future__ import annotations

import os
import pathlib
import resource
import shutil
import signal
import site
import subprocess
import sys
import sysconfig

ROOT = pathlib.Path(__file__).resolve().parents[1]
HERE = pathlib.Path(__file__).resolve().parent
NOBODY = 65534
TMPFS_BYTES = 1 << 30
FILE_BYTES = 1 << 30
ETC = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "fonts", "ssl/certs",
       "mime.types", "nsswitch.conf", "host.conf", "hosts", "os-release", "debian_version", "lsb-release"]
HARNESS = ("grading_runner.py", "grading_referee.py", "assignments.py")  # what the sandboxes run, copied
SANDBOX_ENV_KEEP = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "NUMBA_DISABLE_JIT", "TORCH_NUM_THREADS")

UNSAFE_EXPOSES = (
    "UNSAFE=1 grades without a sandbox: every submission runs as a plain process with your "
    "permissions, so it can read your files (this repository's chapters, solutions and hidden "
    "tests, the grading bundle, the other submissions), write or delete anything you can (the "
    "repository, the submissions folder, the bundle, _build/grades.csv), use the network, and "
    "leave processes running after grading. Verdicts are still decided outside the submission's "
    "process (it cannot fake a pass), but a submission can copy the solutions."
)
NO_SANDBOX_HELP = (
    "\n\nGrading needs bubblewrap (bwrap) to isolate each submission. On Debian or Ubuntu, `make grade` "
    "installs it (apt-get install bubblewrap; sudo when not root); it needs user namespaces (run "
    "as root, or a kernel that allows unprivileged ones).\n\nWithout Linux (macOS): run `make grade` "
    "inside a Linux virtual machine, or a container where bwrap works (in Docker that usually "
    "takes --privileged), or grade with "
    "otter-grader's Docker mode on the bundle's autograder zip (`otter grade -a "
    "_build/assignments/grading/<chapter>.zip -p <folder>`; it isolates the machine, but its tests run "
    "inside the student's kernel, where a submission can tamper with them).\n\nTo grade here anyway, "
    "knowing what it exposes, pass UNSAFE=1 (unsafe=True). "
)


class SandboxUnavailable(RuntimeError):
    """No sandbox can be started here (the message says why and what to do)."""


def _site_dirs() -> list[pathlib.Path]:
    dirs = {pathlib.Path(p) for p in site.getsitepackages()} | {pathlib.Path(sysconfig.get_paths()["purelib"])}
    return sorted(d for d in dirs if d.is_dir())


def _editable_leftovers(site_dir: pathlib.Path) -> list[pathlib.Path]:
    """What, in an environment's site-packages, points at the repository's editable install of prunebook."""
    found = []
    for p in site_dir.iterdir():
        name = p.name.lower()
        if "prunebook" in name and (name.startswith("__editable__") or name.endswith((".dist-info", ".egg-link", ".egg-info"))):
            found.append(p)
        elif name.endswith(".pth") and p.is_file():
            try:
                text = p.read_text(errors="replace")
            except OSError:
                continue
            if str(ROOT) in text or "prunebook" in text.lower():
                found.append(p)
    return sorted(set(found))


class Sandbox:
    """The runtime shared by every submission of one grading run (in ``root``, private to the grader)."""

    def __init__(self, root: pathlib.Path, *, unsafe: bool = False, bwrap: str | None = None):
        self.root = pathlib.Path(root)
        self.unsafe = unsafe
        self.bwrap = bwrap if bwrap is not None else shutil.which("bwrap")
        self.site = self.root / "runtime" / "site"
        self.harness = self.root / "runtime" / "harness"
        self.etc = self.root / "runtime" / "etc"
        self.venv = pathlib.Path(sys.prefix) if sys.prefix != sys.base_prefix else None
        self.python_inside = "/opt/venv/bin/python" if self.venv else sys.executable

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        """Build the non-editable copy of prunebook and the runner folder; check that a sandbox starts."""
        if not self.unsafe:
            self.require()
        self._build_package()
        self.harness.mkdir(parents=True, exist_ok=True)
        for name in HARNESS:
            shutil.copy2(HERE / name, self.harness / name)
        self.etc.mkdir(parents=True, exist_ok=True)  # who nobody is, for code that asks (getpass.getuser)
        (self.etc / "passwd").write_text(f"nobody:x:{NOBODY}:{NOBODY}:nobody:/tmp/home:/usr/sbin/nologin\n")
        (self.etc / "group").write_text(f"nogroup:x:{NOBODY}:\n")
        if not self.unsafe:
            self.check()

    def require(self) -> None:
        """SandboxUnavailable when there is no bwrap to run."""
        if not self.bwrap or not os.access(self.bwrap, os.X_OK):
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed." + NO_SANDBOX_HELP + UNSAFE_EXPOSES)

    def _build_package(self) -> None:
        """prunebook from a wheel of the repository's source, installed into a folder of its own."""
        src = self.root / "runtime" / "package-source"
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".cache", "*.pyc")
        src.mkdir(parents=True, exist_ok=True)
        for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
            if (ROOT / name).exists():
                shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "--no-warn-script-location", "--target", str(self.site), str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if r.returncode != 0 or not (self.site / "prunebook" / "__init__.py").exists():
            raise SandboxUnavailable(f"could not build the package's wheel for the sandbox:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        shutil.rmtree(src, ignore_errors=True)

    def check(self) -> None:
        """Start a sandbox and check what it sees; SandboxUnavailable with the reason when it fails."""
        probe = (
            "import importlib.util, os, socket, sys\n"
            "import getpass\n"
            "assert os.getuid() == 65534 and getpass.getuser() == 'nobody', os.getuid()\n"
            "origin = importlib.util.find_spec('prunebook').origin\n"
            "assert origin.startswith('/opt/prunebook/'), origin\n"
            "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\nexcept OSError:\n    pass\n"
            "else:\n    sys.exit('the network is reachable')\n"
            f"assert not os.path.exists({str(ROOT)!r}), 'the repository is visible'\n"
            "print('sandbox ok')\n"
        )
        work = self.root / "check"
        work.mkdir(exist_ok=True)
        try:
            r = subprocess.run(self.command([(work, "/work", True)], ["-c", probe]), env=self.env(), capture_output=True,
                               text=True, timeout=120, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SandboxUnavailable(f"the sandbox did not start ({e})." + NO_SANDBOX_HELP + UNSAFE_EXPOSES) from None
        if r.returncode != 0 or "sandbox ok" not in r.stdout:
            why = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
            raise SandboxUnavailable(f"the sandbox did not start: {' / '.join(why)[:600]}." + NO_SANDBOX_HELP + UNSAFE_EXPOSES)

    # ------------------------------------------------------------------ one sandbox

    def env(self, numba_cache: str | None = None) -> dict[str, str]:
        """The environment inside: nothing of the grader's but the thread counts (and, unsafe, its HOME)."""
        inside = not self.unsafe
        env = {
            "PATH": ("/opt/venv/bin:" if inside and self.venv else f"{pathlib.Path(sys.executable).parent}:") + "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp/home" if inside else os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": "/opt/prunebook" if inside else str(self.site),
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "LANG": "C.UTF-8",
        }
        if inside:
            env.update({"MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython", "TMPDIR": "/tmp",
                        "XDG_CACHE_HOME": "/tmp/cache"})
        if numba_cache:
            env["NUMBA_CACHE_DIR"] = numba_cache
        env.update({k: os.environ[k] for k in SANDBOX_ENV_KEEP if k in os.environ})
        return env

    def inside(self, path: pathlib.Path, binds: list[tuple[pathlib.Path, str, bool]]) -> str:
        """Where ``path`` (under one of ``binds``) is seen from inside (its own path when unsafe)."""
        if self.unsafe:
            return str(path)
        for src, dst, _ in binds:
            if path == src or path.is_relative_to(src):
                return str(pathlib.PurePosixPath(dst) / path.relative_to(src))
        raise ValueError(f"{path} is not visible in the sandbox")

    def command(self, binds: list[tuple[pathlib.Path, str, bool]], python_args: list[str]) -> list[str]:
        """The command that runs ``python python_args`` in a sandbox seeing ``binds`` (source, target,
        writable) besides the runtime (or, unsafe, without a sandbox)."""
        if self.unsafe:
            return [sys.executable, "-s", *python_args]
        args = [self.bwrap, "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "grading"]
        if "--disable-userns" in self._options():  # bubblewrap 0.8 and later
            args.append("--disable-userns")
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            p = pathlib.Path(top)
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), top]
            elif p.is_dir():
                args += ["--ro-bind", top, top]
        for name in ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group"):
            args += ["--ro-bind", str(self.etc / name), f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--size", str(TMPFS_BYTES)] if "--size" in self._options() else []  # bubblewrap 0.8 and later
        args += ["--tmpfs", "/tmp", "--dir", "/tmp/home"]
        base = pathlib.Path(sys.base_prefix)
        if not base.is_relative_to("/usr"):
            args += ["--ro-bind", str(base), str(base)]
        if self.venv:
            args += ["--ro-bind", str(self.venv), "/opt/venv"]
        for site_dir in _site_dirs():
            inside = site_dir
            if self.venv and site_dir.is_relative_to(self.venv):
                inside = pathlib.Path("/opt/venv") / site_dir.relative_to(self.venv)
            elif not (site_dir.is_relative_to(base) or site_dir.is_relative_to("/usr")):
                continue
            for p in _editable_leftovers(site_dir):
                target = str(inside / p.name)
                if p.is_dir():
                    twin = self.site / p.name
                    args += ["--ro-bind", str(twin), target] if twin.is_dir() else ["--tmpfs", target, "--remount-ro", target]
                else:
                    args += ["--ro-bind", "/dev/null", target]
        args += ["--ro-bind", str(self.site), "/opt/prunebook", "--ro-bind", str(self.harness), "/opt/grader"]
        for src, dst, writable in binds:
            args += ["--bind" if writable else "--ro-bind", str(src), dst]
        return args + ["--chdir", "/work", "--", self.python_inside, "-s", *python_args]

    def _options(self) -> str:
        """``bwrap --help``: which options this bubblewrap knows."""
        if not hasattr(self, "_help"):
            try:
                r = subprocess.run([self.bwrap, "--help"], capture_output=True, text=True, timeout=30)
                self._help = r.stdout + r.stderr
            except (OSError, subprocess.TimeoutExpired):
                self._help = ""
        return self._help

    def script(self, name: str) -> str:
        """A file of the runner folder, as the sandbox sees it."""
        return f"{'/opt/grader' if not self.unsafe else self.harness}/{name}"

    def run(self, work: pathlib.Path, probes: pathlib.Path, limit: float, log: pathlib.Path,
            numba: pathlib.Path | None = None) -> bool:
        """Run the runner on ``work/job.json`` (probes in ``probes``); False when killed at ``limit`` seconds.

        ``numba``: compiled kernels (numba's cache, from the referee's run of the same package in
        its sandbox) that the submission gets a copy of, so that it does not compile them again.
        """
        binds = [(probes, "/opt/probes", False), (work, "/work", True)]
        cache = None
        if numba is not None and numba.is_dir():
            shutil.copytree(numba, work / "numba-cache", symlinks=True, dirs_exist_ok=True)
            cache = self.inside(work / "numba-cache", binds)
        job = self.inside(work / "job.json", binds)
        with open(log, "wb") as logf:
            proc = subprocess.Popen(self.command(binds, [self.script("grading_runner.py"), "run", job]), cwd=work,
                                    env=self.env(cache), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_limits)
            try:
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return False
            finally:
                if proc.poll() is None:
                    _kill(proc)
        return True


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill(proc: subprocess.Popen) -> None:
    """Kill the process group (bwrap, or the unsafe runner); the sandbox's PID namespace goes with bwrap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
