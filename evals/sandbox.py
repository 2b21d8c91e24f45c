"""Run model-written programs in isolation: bubblewrap namespaces plus rlimits.

Model-written code is hostile input. ``make_executor()`` gives a ``BwrapExecutor``:
each program runs under `bubblewrap <https://github.com/containers/bubblewrap>`_ with

* **no network** (a new network namespace with only a loopback device), and private
  PID, IPC, UTS and mount namespaces: host processes are invisible and ``kill(-1, 9)``
  reaches only the program's own processes;
* **a read-only view of the system**: ``/usr`` (and the ``/bin``, ``/lib*`` links or
  directories), ``/etc/ld.so.cache``, ``/etc/alternatives`` and the directories of the
  current Python (its installation and its virtual environment, wherever they live), a
  fresh ``/proc`` and a minimal ``/dev``. Nothing else of the host exists inside: not the
  repository, not ``/root``, not ``$HOME`` (only the path down to the interpreter, if
  the interpreter lives in a home directory);
* **one writable place**, ``/tmp``: a fresh tmpfs of ``Limits.disk_mb`` that is the
  working directory and ``$HOME``; the ``files`` are copied into it before the program
  starts and it vanishes with the sandbox, so no host directory is written or removed.
  ``/dev/shm`` is a second tmpfs of the same size;
* **an empty environment**: only ``PATH``, ``LANG=C.UTF-8``, ``HOME=/tmp``,
  ``TMPDIR=/tmp``, ``PYTHONDONTWRITEBYTECODE=1``, ``PYTHONHASHSEED=0`` and
  ``PYTHONNOUSERSITE=1``. API keys of the harness are never visible;
* **rlimits** set by ``prlimit`` inside the sandbox, so they bind the program and not
  bubblewrap: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` (soft ``ceil(cpu_s)``, hard one second
  later), ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_NPROC`` and ``RLIMIT_CORE=0``;
* **a wall limit**: at ``wall_s`` the PID namespace's init process is killed, which makes
  the kernel kill every process in the namespace. When the program's main process exits,
  the namespace is torn down the same way, so double-forked daemons die with it. If the
  harness itself dies, ``--die-with-parent`` (a parent-death signal on bubblewrap and on
  the namespace's init) takes the sandbox down with it.

The process cap (``Limits.processes``) needs a user namespace per program; how the
command line achieves that, as an ordinary user and as root, is explained in
``evals._bwrap``, the module that builds it.

Start-up cost is about 10-15 ms above a plain subprocess on a 2-core VM
(``bench/sandbox.py``): bubblewrap's namespaces take most (the network namespace alone
about 3 ms), the wrappers about 1.5 ms. Nothing is copied on the host, the layout
arguments are computed once, the input files travel as ``memfd``s and the program is
spawned without ``preexec_fn`` (which would force a full ``fork`` of the harness).

``UnsafeExecutor`` (``--unsafe-no-sandbox``) has the same interface with a plain
subprocess: a new session, the same rlimits except the process cap (``RLIMIT_NPROC`` is
per user on the host, so a per-program cap cannot be expressed), an empty environment
and a private temporary working directory that is removed afterwards. It has no network,
file-system or process isolation at all; a program that calls ``setsid`` escapes its
process group and outlives the wall limit.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import json
import os
import posixpath
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from evals._bwrap import (
    SANDBOX_HOME,
    bwrap_command,
    environment,
    find_bwrap,
    probe,
    rlimits,
)
from evals.errors import ConfigError

__all__ = [
    "BwrapExecutor",
    "ExecResult",
    "Executor",
    "Limits",
    "SandboxUnavailable",
    "UnsafeExecutor",
    "make_executor",
]

_READ_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one program.

    Attributes:
        wall_s: wall time; at this point every process of the program is killed and the
            result has ``timed_out=True``, ``killed="wall"`` and ``returncode=None``.
        cpu_s: CPU seconds per process (``RLIMIT_CPU``; rounded up to a whole second).
            The kernel sends ``SIGXCPU`` at the limit (``killed="cpu"``) and ``SIGKILL``
            one second later.
        memory_mb: address space per process (``RLIMIT_AS``), not resident memory: a
            Python program needs about 30 MB, a thread stack reserves 8 MB.
        processes: tasks (processes and threads) the program may have at once, counting
            its main process. Enforced only by ``BwrapExecutor`` (see
            ``evals._bwrap``); ``UnsafeExecutor`` ignores it.
        file_size_mb: largest file the program may write (``RLIMIT_FSIZE``).
        open_files: file descriptors per process (``RLIMIT_NOFILE``), including the
            three standard ones.
        output_bytes: cap of stdout and of stderr, each. The program is killed as soon
            as either exceeds it (``killed="output"``); what fits is kept.
        disk_mb: size of the sandbox's writable tmpfs ``/tmp`` (and of ``/dev/shm``);
            beyond it writes fail with ``ENOSPC``. ``UnsafeExecutor`` ignores it.
    """

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 1024
    processes: int = 32
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 1 << 20
    disk_mb: int = 64


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What one program did.

    Attributes:
        returncode: exit status; a negative number ``-N`` when signal ``N`` ended it;
            ``None`` when the executor killed it (wall limit, output cap, ``aclose``).
            Under bubblewrap an exit status of ``128 + N`` is indistinguishable from
            death by signal ``N`` and is reported as ``-N``.
        stdout: standard output, at most ``Limits.output_bytes``.
        stderr: standard error, at most ``Limits.output_bytes``.
        wall_s: seconds from spawning to the end of the program.
        timed_out: the wall limit was hit.
        killed: best guess of why the program died, or ``None`` for a normal exit (an
            exit status of 1 included): ``"wall"``, ``"output"``, ``"closed"`` (the
            executor was closed), ``"cpu"`` (``SIGXCPU``), ``"file_size"``
            (``SIGXFSZ`` or ``EFBIG``), ``"memory"``, ``"open_files"``, ``"processes"``
            (the last three read from the final line of stderr, such as
            ``MemoryError``), ``"signal N"``, or ``"worker lost"`` (``RayExecutor``: the
            Ray worker running it died on every retry; nothing of the program is known).
        output_truncated: stdout or stderr exceeded the cap and was cut.
    """

    returncode: int | None
    stdout: bytes
    stderr: bytes
    wall_s: float
    timed_out: bool
    killed: str | None
    output_truncated: bool


class SandboxUnavailable(ConfigError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


class Executor(Protocol):
    """Runs one program with limits; ``BwrapExecutor`` and ``UnsafeExecutor`` are two, and
    ``evals.grading.ray_executor.RayExecutor`` runs one of them on a Ray worker."""

    async def run(self, argv: Sequence[str], *, files: Mapping[str, bytes] = {},
                  stdin: bytes = b"", limits: Limits = Limits()) -> ExecResult:
        """Run ``argv`` with ``files`` in a fresh working directory; see ``BwrapExecutor``."""
        ...

    async def aclose(self) -> None:
        """Kill the programs still running; later calls to ``run`` raise ``RuntimeError``."""
        ...


def make_executor(unsafe: bool = False, *, max_parallel: int | None = None) -> Executor:
    """The executor for model-written code on this machine.

    Args:
        unsafe: return an ``UnsafeExecutor`` (no isolation) instead of checking for
            bubblewrap; the user asked for it with ``--unsafe-no-sandbox``.
        max_parallel: programs running at once (``None``: the number of cores).

    Returns:
        A ``BwrapExecutor`` once a probe program has run under bubblewrap (the probe runs
        once per process and takes a few milliseconds).

    Raises:
        SandboxUnavailable: ``bwrap`` is not on ``PATH`` (or ``$EVALS_BWRAP`` names no
            executable), is older than 0.8, or cannot create namespaces here (user
            namespaces disabled); the message names the fix.
    """
    if unsafe:
        return UnsafeExecutor(max_parallel)
    bwrap, problem = find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable(problem)
    problem = probe(bwrap, os.geteuid() == 0, Limits())
    if problem:
        raise SandboxUnavailable(problem)
    return BwrapExecutor(max_parallel, bwrap=bwrap)


class _Base(abc.ABC):
    """What both executors share: the semaphore, input checks, I/O and bookkeeping."""

    def __init__(self, max_parallel: int | None = None) -> None:
        if max_parallel is not None and max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[_Run] = set()
        self._closed = False

    async def run(self, argv: Sequence[str], *, files: Mapping[str, bytes] = {},
                  stdin: bytes = b"", limits: Limits = Limits()) -> ExecResult:
        """Run one program and wait for it within ``limits``.

        Args:
            argv: the command; ``argv[0] == "python"`` means the interpreter running the
                harness (``sys.executable``), otherwise it is looked up on the sandbox's
                ``PATH`` (the interpreter's directory, ``/usr/local/bin``, ``/usr/bin``,
                ``/bin``) or is an absolute path that must exist inside.
            files: relative POSIX paths and contents to place in the working directory,
                e.g. ``{"main.py": b"print(1)", "data/in.txt": b"..."}``. Parents are
                created. Absolute paths and ``..`` are rejected.
            stdin: bytes fed to standard input, then closed; a program that does not
                read them does not block the harness.
            limits: the resource limits.

        Returns:
            The result; limits hit are reported in it, never raised.

        Raises:
            ValueError: ``argv`` is empty or a file path is unsafe.
            TypeError: a file's content is not ``bytes``.
            RuntimeError: the executor is closed.
        """
        if self._closed:
            raise RuntimeError("this executor is closed; make a new one with make_executor()")
        if not argv:
            raise ValueError("argv is empty: give the program to run, e.g. ['python', 'main.py']")
        checked = _check_files(files)
        command = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        async with self._get_semaphore():
            if self._closed:
                raise RuntimeError("this executor was closed while the program waited to run")
            return await self._run_one(command, checked, stdin, limits)

    async def aclose(self) -> None:
        """Kill the programs still running; later calls to ``run`` raise ``RuntimeError``."""
        self._closed = True
        for running in list(self._running):
            running.kill("closed")

    @abc.abstractmethod
    async def _run_one(self, argv: list[str], files: list[tuple[str, bytes]], stdin: bytes,
                       limits: Limits) -> ExecResult:
        """Start the program (isolated as the subclass does it) and supervise it."""

    def _get_semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to the loop it first waited in; tests and notebooks may
        # drive one executor from several asyncio.run calls.
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.max_parallel), loop
        return self._semaphore

    async def _supervise(self, proc: asyncio.subprocess.Process, stdin: bytes, limits: Limits,
                         kill: Callable[[], None], started: float) -> ExecResult:
        """Feed stdin, collect capped output, enforce the wall limit, classify the end."""
        running = _Run(kill)
        self._running.add(running)
        out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
        io = [asyncio.create_task(_drain(proc.stdout, out, running)),
              asyncio.create_task(_drain(proc.stderr, err, running))]
        if proc.stdin is not None:
            io.append(asyncio.create_task(_feed(proc.stdin, stdin)))
        waiter = asyncio.create_task(proc.wait())
        stopper = asyncio.create_task(running.stopped.wait())
        try:
            done, _ = await asyncio.wait({waiter, stopper}, timeout=limits.wall_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                running.kill("wall")  # keeps "output" or "closed" if that came first
                await waiter
            wall = time.perf_counter() - started
            # The namespace (or the process group) is gone, so the pipes reach EOF at
            # once; the bound only matters for an UnsafeExecutor daemon holding them.
            await asyncio.wait(io, timeout=1.0)
            return _result(waiter.result(), out, err, wall, running.reason, self._signal_base)
        finally:
            for task in (*io, stopper):
                task.cancel()
            self._running.discard(running)
            if not waiter.done():  # cancelled by the caller: the program must not outlive it
                running.kill("cancelled")
                await asyncio.wait({waiter}, timeout=5.0)

    #: Exit statuses above this value mean "killed by signal (status - base)"; ``None``
    #: when the executor reports signals as negative return codes already.
    _signal_base: int | None = None


class UnsafeExecutor(_Base):
    """Plain subprocesses: rlimits, a new session and an empty environment, no isolation.

    Only for ``--unsafe-no-sandbox``: the program sees the whole file system and network
    with the harness's user rights. See the module docstring for what is still enforced.

    Args:
        max_parallel: programs running at once (``None``: the number of cores).
    """

    async def _run_one(self, argv: list[str], files: list[tuple[str, bytes]], stdin: bytes,
                       limits: Limits) -> ExecResult:
        workdir = tempfile.mkdtemp(prefix="evals-unsafe-")
        try:
            _write_tree(workdir, files)
            env = environment(workdir)
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=workdir, env=env, start_new_session=True,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                preexec_fn=functools.partial(_set_rlimits, limits),
            )

            def kill() -> None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

            try:
                return await self._supervise(proc, stdin, limits, kill, started)
            finally:
                kill()  # children left in the group die with the program
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


class BwrapExecutor(_Base):
    """Each program in a bubblewrap sandbox; see the module docstring for what it sees.

    Constructing does no I/O; ``make_executor`` checks that bubblewrap works first.

    Args:
        max_parallel: programs running at once (``None``: the number of cores).
        bwrap: path of the ``bwrap`` binary (``None``: ``$EVALS_BWRAP``, else looked up on
            ``PATH``, at each run).
    """

    _signal_base = 128

    def __init__(self, max_parallel: int | None = None, *, bwrap: str | None = None) -> None:
        super().__init__(max_parallel)
        self._bwrap = bwrap

    async def _run_one(self, argv: list[str], files: list[tuple[str, bytes]], stdin: bytes,
                       limits: Limits) -> ExecResult:
        bwrap = self._bwrap or find_bwrap().path or "bwrap"
        fds: list[int] = []
        try:
            info_r, info_w = os.pipe()
            fds += [info_r, info_w]
            os.set_blocking(info_r, False)
            file_args: list[str] = []
            for directory in _parents(path for path, _ in files):
                file_args += ["--perms", "0777", "--dir", posixpath.join(SANDBOX_HOME, directory)]
            for path, content in files:
                fd = os.memfd_create("evals-input")
                fds.append(fd)
                _write_all(fd, content)
                os.lseek(fd, 0, os.SEEK_SET)
                file_args += ["--perms", "0666", "--file", str(fd),
                              posixpath.join(SANDBOX_HOME, path)]
            command = bwrap_command(bwrap, os.geteuid() == 0, limits, info_w, file_args, argv)
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *command, env={}, start_new_session=True, pass_fds=fds[1:],
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            for fd in fds[1:]:
                os.close(fd)
            del fds[1:]
            init = _NamespaceInit(info_r)
            loop = asyncio.get_running_loop()

            def on_info() -> None:
                # Once read, the pipe stays readable (end of file): stop watching it, or
                # the loop would spin on it for the program's whole life.
                if init.learn():
                    loop.remove_reader(info_r)

            loop.add_reader(info_r, on_info)

            def kill() -> None:
                # Killing the namespace's init (bubblewrap's reaper) makes the kernel kill
                # everything inside. Before bubblewrap has said which process that is,
                # killing bubblewrap itself does it through --die-with-parent.
                if not init.kill():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)

            try:
                result = await self._supervise(proc, stdin, limits, kill, started)
            finally:
                loop.remove_reader(info_r)
                # bubblewrap exits as soon as the program's status is known, while its
                # init may still be killing what the program left (a daemon): end it now
                # and wait until the kernel has reaped the whole namespace.
                await init.end()
            return result
        finally:
            for fd in fds:
                os.close(fd)


class _NamespaceInit:
    """bubblewrap's init process of one sandbox (PID 1 inside), held by a pidfd.

    Its host pid comes from ``--info-fd`` right after bubblewrap creates it; the pidfd is
    taken at once, while bubblewrap (its parent, the only one that reaps it) is running,
    so it cannot name a recycled pid later. The init exits only once every other process
    of its namespace is dead and reaped, so its exit means nothing is left.
    """

    def __init__(self, info_fd: int) -> None:
        self._info_fd = info_fd
        self._pidfd: int | None = None
        self._learned = False

    def learn(self) -> bool:
        """Read bubblewrap's info (once it is there) and open a pidfd on the init it names.

        Returns:
            True once the info has been read (or will never come); False while bubblewrap
            has not written it yet.
        """
        if self._learned:
            return True
        try:
            data = os.read(self._info_fd, 4096)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        self._learned = True
        pid = _child_pid(data)
        if pid is not None:
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(pid)
        return True

    def kill(self) -> bool:
        """SIGKILL the init (and so the namespace); False if its pid is not known yet."""
        self.learn()
        if self._pidfd is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        return True

    async def end(self, timeout: float = 5.0) -> None:
        """Kill the init if it still runs and wait (bounded) until it has exited."""
        if not self.kill():
            return
        assert self._pidfd is not None
        pidfd, self._pidfd = self._pidfd, None
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()

        def exited() -> None:
            if not gone.done():
                gone.set_result(None)

        loop.add_reader(pidfd, exited)
        try:
            await asyncio.wait_for(gone, timeout)
        except TimeoutError:
            pass  # a kernel that never reports the exit; the kill is sent regardless
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)


class _Run:
    """One running program: why it was killed, and a way to kill it."""

    def __init__(self, kill: Callable[[], None]) -> None:
        self._kill = kill
        self.reason: str | None = None
        self.stopped = asyncio.Event()

    def kill(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stopped.set()
        self._kill()


class _Capture:
    """Up to ``cap`` bytes of one stream, and whether more came."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: bytes) -> bool:
        """Keep what fits; return False once the cap is exceeded."""
        room = self.cap - self.size
        if len(chunk) > room:
            self.chunks.append(chunk[:room])
            self.size = self.cap
            self.truncated = True
            return False
        self.chunks.append(chunk)
        self.size += len(chunk)
        return True

    def value(self) -> bytes:
        return b"".join(self.chunks)


async def _drain(stream: asyncio.StreamReader | None, capture: _Capture, running: _Run) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_READ_CHUNK):
        if not capture.truncated and not capture.add(chunk):
            running.kill("output")


async def _feed(stream: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stream.write(data)
        await stream.drain()
        stream.close()


def _result(returncode: int, out: _Capture, err: _Capture, wall: float, reason: str | None,
            signal_base: int | None) -> ExecResult:
    stderr = err.value()
    truncated = out.truncated or err.truncated
    if reason is not None:
        return ExecResult(None, out.value(), stderr, wall, reason == "wall", reason, truncated)
    if signal_base is not None and signal_base < returncode <= signal_base + 64:
        returncode = signal_base - returncode
    return ExecResult(returncode, out.value(), stderr, wall, False,
                      _classify(returncode, stderr), truncated)


_LAST_LINE_CAUSES = (
    ("memory", (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"out of memory")),
    ("file_size", (b"[Errno 27]", b"File too large")),
    ("open_files", (b"[Errno 24]", b"Too many open files")),
    ("processes", (b"[Errno 11] Resource temporarily unavailable",)),
)


def _classify(returncode: int, stderr: bytes) -> str | None:
    """Why a program the executor did not kill died, from its status and last words."""
    if returncode < 0:
        signum = -returncode
        if signum == signal.SIGXCPU:
            return "cpu"
        if signum == signal.SIGXFSZ:
            return "file_size"
        return f"signal {signum}"
    if returncode == 0:
        return None
    lines = stderr.rstrip().rsplit(b"\n", 1)
    last = lines[-1] if lines else b""
    for cause, needles in _LAST_LINE_CAUSES:
        if any(needle in last for needle in needles):
            return cause
    return None


def _check_files(files: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    checked = []
    for path, content in files.items():
        norm = posixpath.normpath(path)
        if (not path or posixpath.isabs(path) or norm == "." or norm.startswith("../")
                or norm == ".." or "\0" in path):
            raise ValueError(f"File path {path!r} must be relative and stay inside the working "
                             "directory, e.g. 'main.py' or 'data/input.txt'")
        if not isinstance(content, bytes):
            raise TypeError(f"Content of {path!r} must be bytes, not {type(content).__name__}; "
                             "encode text first, e.g. source.encode()")
        checked.append((norm, content))
    return checked


def _parents(paths: Iterable[str]) -> list[str]:
    """Every parent directory of the relative ``paths``, outermost first."""
    found: set[str] = set()
    for path in paths:
        parent = posixpath.dirname(path)
        while parent and parent not in found:
            found.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(found, key=lambda p: (p.count("/"), p))


def _write_tree(root: str, files: list[tuple[str, bytes]]) -> None:
    for path, content in files:
        target = os.path.join(root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(content)


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]


def _child_pid(data: bytes) -> int | None:
    """The host pid of the namespace's init, from what bubblewrap wrote to ``--info-fd``
    (one small JSON object, written at once)."""
    try:
        pid = json.loads(data)["child-pid"]
    except (ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) and pid > 1 else None


def _set_rlimits(limits: Limits) -> None:
    """``preexec_fn`` of ``UnsafeExecutor`` (no process cap: see the module docstring)."""
    for which, soft, hard in rlimits(limits):
        resource.setrlimit(which, (soft, hard))
