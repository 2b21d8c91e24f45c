"""Code grading on a Ray cluster: the local sandbox, run by Ray's workers.

``RayExecutor`` is one more ``evals.sandbox.Executor`` (``--executor ray``): the seam code
grading already uses, so ``grade_program`` and the task plugins do not know where a
program runs. Each ``run`` (one attempt: the test runner and every test of it) is one Ray
task. On the worker, the task runs the program with that worker's own
``make_executor()``: bubblewrap with the same layout and the same ``Limits`` as on this
machine, so the ``ExecResult`` (and the verdict read from it) is what the local pool
would give. A worker without a working bubblewrap refuses with ``SandboxUnavailable``
naming the node; ``make_ray_executor`` checks every node of the cluster that way before
the run asks the model anything.

Time limits are computed here, on the machine driving the run: ``grade_program`` applies
*this* machine's ``calibration_factor()`` and the calibrated CPU limit travels with the
program, so one run grades under one recorded limit (``details["time_limit_s"]``)
whichever node runs the attempt. Workers are not recalibrated: on a cluster whose nodes
run Python much slower than the driver, programs close to the limit can fail there by
time (the usual rerun of time-limit failures applies).

Lost workers. A task whose worker process or node dies (killed, out of memory, node
preempted) is retried by Ray on another worker, up to ``MAX_RETRIES`` times
(``max_retries``; ``retry_exceptions`` stays off, so an error of the harness is never
retried). The sandbox of a dead worker dies with it (bubblewrap's ``--die-with-parent``),
and the attempt is graded afresh elsewhere. Only when every retry is lost does the
attempt come back as "could not grade" (``ExecResult.killed == "worker lost"``, graded
``correct=None``), never as a wrong answer.

The cluster. ``--ray-address ADDR`` connects to a running cluster; without it,
``$RAY_ADDRESS`` if set, else a local Ray instance is started for the run and shut down at
its end (about 5 s to start on a 2-core VM). A process already connected to Ray (a
notebook, the tests) keeps its connection. The workers need the harness installed (the
same version, ``pip install -e ".[ray]"``) and bubblewrap; each task asks for one CPU.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from evals.errors import ConfigError
from evals.sandbox import (
    ExecResult,
    Executor,
    Limits,
    SandboxUnavailable,
    make_executor,
)

__all__ = ["MAX_RETRIES", "RAY_INSTALL", "RayExecutor", "import_ray", "make_ray_executor"]

#: The install command named when Ray is missing.
RAY_INSTALL = 'pip install -e ".[ray]"'
#: Times Ray reruns an attempt whose worker died, before it is "could not grade".
MAX_RETRIES = 3
#: Seconds to wait for the bubblewrap check on every node (includes starting workers).
PROBE_TIMEOUT_S = 120.0
#: Seconds to wait for a TCP connection to the cluster's address before giving up.
CONNECT_TIMEOUT_S = 5.0
_DEFAULT_LIMITS = Limits()


def import_ray() -> ModuleType:
    """The ``ray`` module, imported only when asked for.

    Raises:
        ConfigError: Ray is not installed; the message gives the install command.
    """
    import importlib

    # import_module: typed the same whether or not Ray is installed (mypy runs on both).
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
                          ) from None


def make_ray_executor(address: str | None = None, *, unsafe: bool = False,
                      max_parallel: int | None = None) -> RayExecutor:
    """Connect to Ray and check the sandbox on every node; the executor of a run.

    Args:
        address: the cluster (``--ray-address``); ``None``: ``$RAY_ADDRESS``, else a local
            instance started now (with ``max_parallel`` CPUs, if given) and shut down by
            ``aclose``. Ignored when this process is already connected to Ray.
        unsafe: run programs on the workers without bubblewrap (``--unsafe-no-sandbox``).
        max_parallel: attempts in flight at once (``None``: as many as the cluster
            schedules, one CPU each).

    Returns:
        A connected ``RayExecutor`` whose every node has run the bubblewrap probe.

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
        SandboxUnavailable: a node has no working bubblewrap (the message names it).
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        _check_reachable(address or os.environ.get("RAY_ADDRESS") or "")
        try:
            if address is None and not os.environ.get("RAY_ADDRESS"):
                ray.init(num_cpus=max_parallel, include_dashboard=False)
                started = True
            else:
                ray.init(address=address)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
            where = address or os.environ.get("RAY_ADDRESS") or "a local instance"
            raise ConfigError(f"Could not connect to Ray at {where}: {exc}. Check --ray-address "
                              "(e.g. ray://head:10001, or host:6379 on the cluster) or start "
                              "a cluster with `ray start --head`.") from None
    executor = RayExecutor(ray, unsafe=unsafe, max_parallel=max_parallel, owns_ray=started)
    try:
        executor.check_nodes()
    except BaseException:
        if started:
            ray.shutdown()
        raise
    return executor


def _check_reachable(address: str) -> None:
    """Fail in seconds when nothing listens at ``host:port`` (or ``ray://host:port``):
    ``ray.init`` itself keeps retrying an unreachable cluster for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # "auto", "local", or a form Ray itself will judge
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(f"Could not connect to Ray at {address}: {exc}. Check --ray-address "
                          "(e.g. ray://head:10001, or host:6379 on the cluster) or start a "
                          "cluster with `ray start --head`.") from None


class RayExecutor:
    """Runs each program as a Ray task, in the sandbox of the worker that takes it.

    Use ``make_ray_executor`` (it connects and checks the nodes); constructing does no I/O.

    Args:
        ray: the imported ``ray`` module, connected.
        unsafe: no bubblewrap on the workers (``--unsafe-no-sandbox``).
        max_parallel: attempts in flight at once (``None``: Ray's scheduling alone).
        owns_ray: this executor started Ray, so ``aclose`` shuts it down.
        max_retries: reruns of a task whose worker died (Ray's ``max_retries``).
    """

    def __init__(self, ray: ModuleType, *, unsafe: bool = False, max_parallel: int | None = None,
                 owns_ray: bool = False, max_retries: int = MAX_RETRIES) -> None:
        if max_parallel is not None and max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
        self._ray = ray
        self._unsafe = unsafe
        self.max_parallel = max_parallel
        self._owns_ray = owns_ray
        self._max_retries = max_retries
        self._pending: set[Any] = set()
        self._closed = False
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @functools.cached_property
    def _task(self) -> Any:
        # A task per attempt: one CPU; retried only when its worker dies.
        return self._ray.remote(num_cpus=1, max_retries=self._max_retries,
                                retry_exceptions=False)(_run_on_worker)

    def check_nodes(self) -> dict[str, str]:
        """Run the bubblewrap probe on every alive node that has CPUs (blocking).

        Returns:
            ``{node id: "host (ip)"}`` of the nodes checked.

        Raises:
            SandboxUnavailable: a node cannot run the sandbox (named in the message).
            ConfigError: the cluster has no node with a CPU, or the probe timed out.
        """
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n["NodeID"] for n in ray.nodes()
                 if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        if not nodes:
            raise ConfigError("The Ray cluster has no node with a CPU to run programs on; add "
                              "workers (`ray start --address HEAD:6379`).")
        probe = ray.remote(num_cpus=1, max_retries=self._max_retries)(_probe_worker)
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                .remote(self._unsafe) for node in nodes]
        try:
            found = ray.get(refs, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise ConfigError(f"The sandbox check on the {len(nodes)} Ray node(s) did not "
                              f"finish within {PROBE_TIMEOUT_S:.0f} s: are the workers busy "
                              "or unable to start?") from None
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        return dict(zip(nodes, found, strict=True))

    async def run(self, argv: Sequence[str], *, files: Mapping[str, bytes] = {},
                  stdin: bytes = b"", limits: Limits = _DEFAULT_LIMITS) -> ExecResult:
        """Run one program on a Ray worker, in its sandbox; see ``BwrapExecutor.run``.

        Returns:
            The worker's ``ExecResult``; when the task's worker died on every try, one with
            ``returncode=None`` and ``killed="worker lost"`` (stderr says what Ray said).

        Raises:
            ValueError, TypeError: as ``BwrapExecutor.run`` (raised on the worker).
            SandboxUnavailable: the worker cannot run bubblewrap.
            RuntimeError: the executor is closed.
        """
        if self._closed:
            raise RuntimeError("this executor is closed; make a new one with make_ray_executor()")
        semaphore = self._get_semaphore()
        if semaphore is None:
            return await self._submit(argv, files, stdin, limits)
        async with semaphore:
            return await self._submit(argv, files, stdin, limits)

    async def _submit(self, argv: Sequence[str], files: Mapping[str, bytes], stdin: bytes,
                      limits: Limits) -> ExecResult:
        ray = self._ray
        started = time.perf_counter()
        ref = self._task.remote(self._unsafe, list(argv), dict(files), stdin, limits)
        self._pending.add(ref)
        try:
            result: ExecResult = await asyncio.wrap_future(ref.future())
            return result
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OutOfMemoryError, ray.exceptions.ObjectLostError) as exc:
            why = (f"the Ray worker running this attempt was lost {self._max_retries + 1} "
                   f"times: {type(exc).__name__}: {exc}")
            return ExecResult(None, b"", why.encode(), time.perf_counter() - started,
                              False, "worker lost", False)
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)  # the worker dies, and its sandbox with it
            raise
        finally:
            self._pending.discard(ref)

    def _get_semaphore(self) -> asyncio.Semaphore | None:
        if self.max_parallel is None:
            return None
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.max_parallel), loop
        return self._semaphore

    async def aclose(self) -> None:
        """Cancel the attempts in flight; shut Ray down if this executor started it."""
        self._closed = True
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        if self._owns_ray:
            self._owns_ray = False
            await asyncio.to_thread(self._ray.shutdown)


def _cause(exc: Any) -> BaseException:
    """The exception a task raised on its worker (Ray wraps it in ``RayTaskError``)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


# -- on the worker ------------------------------------------------------------------------

_WORKER_EXECUTORS: dict[bool, Executor] = {}


def _where() -> str:
    host = socket.gethostname()
    try:
        return f"{host} ({import_ray().util.get_node_ip_address()})"
    except Exception:  # noqa: BLE001  only for the message
        return host


def _worker_executor(unsafe: bool) -> Executor:
    """This worker's sandbox, made (and bubblewrap probed) on its first task."""
    executor = _WORKER_EXECUTORS.get(unsafe)
    if executor is None:
        try:
            executor = make_executor(unsafe, max_parallel=1)
        except SandboxUnavailable as exc:
            raise SandboxUnavailable(f"On Ray node {_where()}: {exc}") from None
        _WORKER_EXECUTORS[unsafe] = executor
    return executor


def _run_on_worker(unsafe: bool, argv: list[str], files: dict[str, bytes], stdin: bytes,
                   limits: Limits) -> ExecResult:
    """The Ray task: one program in this worker's sandbox (a worker runs one task at a time)."""
    executor = _worker_executor(unsafe)
    return asyncio.run(executor.run(argv, files=files, stdin=stdin, limits=limits))


def _probe_worker(unsafe: bool) -> str:
    """The Ray task of ``check_nodes``: make this node's sandbox (probing bubblewrap)."""
    _worker_executor(unsafe)
    return _where()
