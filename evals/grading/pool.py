"""A pool of worker processes with a hard wall limit per call.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one hung task: its workers are shared
and a call that never returns holds a worker for ever. Here each call owns one worker for
its duration; when the limit passes, that worker alone is killed (``SIGKILL``) and a fresh
one takes its place on the next call, so the pool stays usable::

    with GradingPool(processes=4, timeout_s=5) as pool:
        verdict = await pool.call(grade_math_answer, gold, text)   # from asyncio
        verdict = pool.call_sync(grade_math_answer, gold, text)    # from plain code

Nothing here knows what the functions compute; any module-level (picklable) function works.

Errors (all subclasses of ``evals.errors.EvalsError``)::

    PoolError
    ├── GradingTimeout   the call passed its limit; its worker was killed and is replaced
    ├── WorkerDied       the worker exited during the call (segfault, OOM kill, os._exit)
    ├── RemoteError      the function raised something that cannot be sent back as is
    └── PoolClosed       the pool was closed before or during the call

An exception raised by the function itself is re-raised in the caller unchanged.

Workers are started with the ``forkserver`` method (``spawn`` where it is missing), never by
forking the caller: forking a process that runs threads or an event loop can deadlock the
child. ``preimport`` modules are loaded by the fork server once, so a replacement worker
starts quickly with them already imported. As with any ``spawn``/``forkserver`` start, each
new worker imports the caller's ``__main__`` module (not in notebooks): scripts must guard
their entry point with ``if __name__ == "__main__":``, and a heavy main module makes worker
starts (and replacements after a timeout) slower.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast

from evals.errors import EvalsError

__all__ = ["GradingPool", "GradingTimeout", "PoolClosed", "PoolError", "RemoteError",
           "WorkerDied"]

T = TypeVar("T")

StartMethod = Literal["forkserver", "spawn"]


class PoolError(EvalsError):
    """Base class of the worker pool's errors."""


class GradingTimeout(PoolError, TimeoutError):
    """A call ran past the pool's limit; its worker was killed.

    Attributes:
        timeout_s: the limit that passed.
        elapsed_s: how long the call had run when its worker was killed.
    """

    def __init__(self, message: str, *, timeout_s: float, elapsed_s: float) -> None:
        super().__init__(message)
        self.timeout_s = timeout_s
        self.elapsed_s = elapsed_s


class WorkerDied(PoolError):
    """The worker process exited while running a call.

    Attributes:
        exitcode: the process's exit code (negative: killed by that signal), if known.
    """

    def __init__(self, message: str, *, exitcode: int | None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


class RemoteError(PoolError):
    """The function raised, or returned, something that could not be pickled back.

    Attributes:
        remote_traceback: the formatted traceback from the worker.
    """

    def __init__(self, message: str, *, remote_traceback: str) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


class PoolClosed(PoolError):
    """The pool was closed."""


# -- the worker process ------------------------------------------------------------------------

def _worker_main(conn: Connection, preimport: tuple[str, ...],
                 memory_limit_mb: int | None) -> None:
    """Run calls received on ``conn`` until a ``None`` message or the pipe closes."""
    # Ctrl-C in the terminal reaches the whole process group; the parent decides what dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_limit_mb is not None:
        import resource

        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for name in preimport:
        importlib.import_module(name)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply: tuple[Any, ...] = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("err", exc, traceback.format_exc())
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - the result or exception did not pickle
            detail = reply[2] if reply[0] == "err" else ""
            conn.send(("remote", f"{type(exc).__name__}: {exc}", detail))


class _Worker:
    """One worker process and the parent's end of its pipe."""

    __slots__ = ("conn", "process")

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the process, reap it, close the pipe."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        """Ask an idle worker to exit; kill it if it does not within a second."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=1)
        self.kill()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# -- waiting for a free worker -------------------------------------------------------------------

# A waiter receives either an idle worker or ``None``: permission to start a new worker
# (the pool's count already includes it).
_Handoff = _Worker | None


class _SyncWaiter:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.item: _Handoff = None
        self.closed = False

    def give(self, item: _Handoff, pool: GradingPool) -> bool:
        self.item = item
        self._event.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._event.set()

    def wait(self) -> _Handoff:
        self._event.wait()
        if self.closed:
            raise PoolClosed("the grading pool was closed while a call waited for a worker")
        return self.item


class _AsyncWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[_Handoff] = loop.create_future()

    def give(self, item: _Handoff, pool: GradingPool) -> bool:
        if self.future.done():
            return False
        try:
            self.loop.call_soon_threadsafe(self._deliver, item, pool)
        except RuntimeError:  # the waiter's loop is closed
            return False
        return True

    def _deliver(self, item: _Handoff, pool: GradingPool) -> None:
        if self.future.done():  # cancelled meanwhile: pass the worker on
            pool._release(item)
        else:
            self.future.set_result(item)

    def close(self) -> None:
        def fail() -> None:
            if not self.future.done():
                self.future.set_exception(PoolClosed("the grading pool was closed"))
        try:
            self.loop.call_soon_threadsafe(fail)
        except RuntimeError:
            pass


# -- the pool ------------------------------------------------------------------------------------

class GradingPool:
    """Worker processes that run module-level functions with a hard wall limit per call.

    At most ``processes`` calls run at once; further calls wait in order of arrival (the
    wait does not count against the limit). Workers start on first use, not in the
    constructor.

    Args:
        processes: number of worker processes (``None``: ``os.cpu_count()``).
        timeout_s: wall limit per call, counted from when the call reaches its worker.
        preimport: modules imported in every worker before its first call (default
            ``("sympy",)``: the CPU-bound graders use it and it takes ~0.5 s to import).
        start_method: ``"forkserver"`` (default; ``"spawn"`` where unavailable) or
            ``"spawn"``. Forking the caller itself is not offered.
        memory_limit_mb: address-space limit of each worker (``RLIMIT_AS``), so a runaway
            allocation raises ``MemoryError`` in the worker instead of waking the OOM
            killer; ``None`` (default) leaves the limit alone.
        startup_timeout_s: how long a new worker may take to import ``preimport``.

    Raises:
        ValueError: ``processes`` < 1 or ``timeout_s`` <= 0.

    Example:
        >>> with GradingPool(2, timeout_s=1.0, preimport=()) as pool:
        ...     pool.call_sync(divmod, 7, 2)
        (3, 1)
    """

    def __init__(self, processes: int | None = None, timeout_s: float = 5.0, *,
                 preimport: Sequence[str] = ("sympy",),
                 start_method: StartMethod = "forkserver",
                 memory_limit_mb: int | None = None,
                 startup_timeout_s: float = 60.0) -> None:
        size = processes if processes is not None else (os.cpu_count() or 1)
        if size < 1:
            raise ValueError(f"processes={processes!r}: a pool needs at least 1 process")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s!r}: the limit must be positive")
        self.processes = size
        self.timeout_s = float(timeout_s)
        self.preimport = tuple(preimport)
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout_s = startup_timeout_s
        if start_method == "forkserver" and "forkserver" not in multiprocessing.get_all_start_methods():
            start_method = "spawn"
        self.start_method: StartMethod = start_method
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._count = 0  # workers alive or being started
        self._waiters: deque[_SyncWaiter | _AsyncWaiter] = deque()
        self._closed = False
        #: Workers killed or lost so far (timeouts and deaths); for reports and tests.
        self.replaced = 0

    # -- public API -----------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker and return its result, from an asyncio loop.

        Many calls may be awaited at once; at most ``processes`` run at a time.

        Raises:
            GradingTimeout: the call passed ``timeout_s``; its worker was killed.
            WorkerDied: the worker exited during the call.
            RemoteError: the result or exception could not be pickled back.
            PoolClosed: the pool is closed.
            Exception: whatever ``fn`` raised, unchanged.
        """
        worker = await self._acquire_async()
        self._send(worker, fn, args)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        fd = worker.conn.fileno()
        loop.add_reader(fd, on_readable)  # Linux/Unix loops (asyncio, uvloop) all have it
        try:
            try:
                await asyncio.wait_for(ready, self.timeout_s)
            finally:
                loop.remove_reader(fd)  # before the worker (and its fd) may be closed
        except TimeoutError:
            raise self._timeout(worker, started) from None
        except BaseException:  # cancelled: the call is abandoned, so is its worker
            self._discard(worker)
            raise
        return cast(T, self._receive(worker))

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker, blocking this thread; same errors as ``call``."""
        worker = self._acquire_sync()
        self._send(worker, fn, args)
        started = time.monotonic()
        try:
            arrived = worker.conn.poll(self.timeout_s)
        except BaseException:
            self._discard(worker)
            raise
        if not arrived:
            raise self._timeout(worker, started)
        return cast(T, self._receive(worker))

    def map_sync(self, fn: Callable[..., T], arg_tuples: Iterable[Sequence[Any]]
                 ) -> list[T | PoolError | Exception]:
        """Run ``fn(*args)`` for every tuple of arguments, ``processes`` at a time.

        Results come back in input order. A failed call does not stop the others: its
        place holds the exception (``GradingTimeout``, ``WorkerDied``, or what ``fn``
        raised).
        """
        def one(args: Sequence[Any]) -> T | PoolError | Exception:
            try:
                return self.call_sync(fn, *args)
            except Exception as exc:  # noqa: BLE001 - collected per call by design
                return exc

        with ThreadPoolExecutor(max_workers=self.processes,
                                thread_name_prefix="grading-pool") as threads:
            return list(threads.map(one, list(arg_tuples)))

    def start(self) -> None:
        """Start all workers now (otherwise they start on first use), e.g. before timing."""
        workers = [self._acquire_sync() for _ in range(self.processes)]
        for worker in workers:
            self._release(worker)

    def close(self) -> None:
        """Stop every worker (running calls are killed) and refuse further calls."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            busy, self._busy = list(self._busy), set()
            waiters, self._waiters = list(self._waiters), deque()
        for waiter in waiters:
            waiter.close()
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.kill()

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (idle and busy)."""
        with self._lock:
            return [w.pid for w in (*self._idle, *self._busy) if w.pid is not None]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"GradingPool(processes={self.processes}, timeout_s={self.timeout_s}, "
                f"start_method={self.start_method!r}, closed={self._closed})")

    # -- acquiring and releasing workers -------------------------------------------------------

    def _take_locked(self) -> tuple[bool, _Handoff]:
        """(got, item) under the lock: an idle worker, or None = start one, or nothing."""
        if self._closed:
            raise PoolClosed("the grading pool is closed; make a new GradingPool")
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                self._busy.add(worker)
                return True, worker
            self._count -= 1  # died while idle
            self.replaced += 1
            worker.kill()
        if self._count < self.processes:
            self._count += 1
            return True, None
        return False, None

    def _acquire_sync(self) -> _Worker:
        with self._lock:
            got, item = self._take_locked()
            if not got:
                waiter = _SyncWaiter()
                self._waiters.append(waiter)
        if not got:
            item = waiter.wait()
        return item if item is not None else self._start_worker()

    async def _acquire_async(self) -> _Worker:
        with self._lock:
            got, item = self._take_locked()
            if not got:
                waiter = _AsyncWaiter(asyncio.get_running_loop())
                self._waiters.append(waiter)
        if not got:
            try:
                item = await waiter.future
            except asyncio.CancelledError:
                future = waiter.future  # handed over just as the cancellation landed:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._release(future.result())  # pass it on, or the slot is lost
                raise
        if item is not None:
            return item
        starting = asyncio.get_running_loop().run_in_executor(None, self._start_worker)
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The start cannot be interrupted; hand the worker on once it is up.
            starting.add_done_callback(self._release_started)
            raise

    def _release_started(self, starting: asyncio.Future[_Worker]) -> None:
        if not starting.cancelled() and starting.exception() is None:
            self._release(starting.result())

    def _start_worker(self) -> _Worker:
        """Start a worker for a slot already counted; give the slot back on failure."""
        try:
            ctx: ForkServerContext | SpawnContext = (
                multiprocessing.get_context("forkserver") if self.start_method == "forkserver"
                else multiprocessing.get_context("spawn"))
            if self.start_method == "forkserver" and self.preimport:
                ctx.set_forkserver_preload(list(self.preimport))
            parent, child = ctx.Pipe(duplex=True)
            process = ctx.Process(target=_worker_main, name="grading-worker", daemon=True,
                                  args=(child, self.preimport, self.memory_limit_mb))
            process.start()
            child.close()
            worker = _Worker(process, parent)
            if not parent.poll(self.startup_timeout_s):
                worker.kill()
                raise WorkerDied(f"a grading worker did not start within "
                                 f"{self.startup_timeout_s:g} s (importing {self.preimport})",
                                 exitcode=process.exitcode)
            try:
                parent.recv()
            except (EOFError, OSError):
                worker.kill()
                raise WorkerDied(f"a grading worker exited while starting "
                                 f"({_describe_exit(process.exitcode)}); check that "
                                 f"{self.preimport} import", exitcode=process.exitcode) from None
        except BaseException:
            self._release(None)
            raise
        with self._lock:
            if self._closed:
                worker.kill()
                raise PoolClosed("the grading pool was closed while a worker started")
            self._busy.add(worker)
        return worker

    def _release(self, item: _Handoff) -> None:
        """Give a worker (or, with ``None``, a free slot) to the next waiter or the pool."""
        with self._lock:
            if item is not None:
                self._busy.discard(item)
            if self._closed:
                if item is not None:
                    item.kill()
                return
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.give(item, self):
                    if item is not None:
                        self._busy.add(item)
                    return
            if item is not None:
                self._idle.append(item)
            else:
                self._count -= 1

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker whose call failed or was abandoned, and free its slot."""
        worker.kill()
        with self._lock:
            self.replaced += 1
            self._busy.discard(worker)
        # The slot passes on as "start a new worker" (the count stays), or is freed.
        self._release(None)

    # -- one call ---------------------------------------------------------------------------------

    def _send(self, worker: _Worker, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Hand the call to ``worker``; on failure the worker is given back (the call could
        not be pickled: nothing was written) or replaced (it was gone)."""
        try:
            worker.conn.send((fn, args))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._discard(worker)
            code = worker.process.exitcode
            raise WorkerDied(f"grading worker pid {worker.pid} was gone before the call "
                             f"({_describe_exit(code)})", exitcode=code) from None
        except BaseException:
            self._release(worker)
            raise

    def _timeout(self, worker: _Worker, started: float) -> GradingTimeout:
        elapsed = time.monotonic() - started
        pid = worker.pid
        self._discard(worker)
        return GradingTimeout(f"the call passed its {self.timeout_s:g} s limit; worker pid "
                              f"{pid} was killed and will be replaced (raise the limit, "
                              f"e.g. --grade-timeout, if answers are legitimately slow)",
                              timeout_s=self.timeout_s, elapsed_s=elapsed)

    def _receive(self, worker: _Worker) -> Any:
        try:
            reply = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            pid = worker.pid
            self._discard(worker)
            raise WorkerDied(f"grading worker pid {pid} died during the call "
                             f"({_describe_exit(code)}); it will be replaced",
                             exitcode=code) from None
        except BaseException:
            self._discard(worker)
            raise
        self._release(worker)
        if reply[0] == "ok":
            return reply[1]  # typed by the caller: call() and call_sync() cast it
        if reply[0] == "err":
            exc: BaseException = reply[1]
            if isinstance(exc, Exception):
                raise exc
            raise RemoteError(f"the function raised {type(exc).__name__} in the worker",
                              remote_traceback=reply[2])
        raise RemoteError(f"the worker could not send its reply back ({reply[1]})",
                          remote_traceback=reply[2])
