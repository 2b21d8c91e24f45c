"""What graders share during a run: the sympy worker pool, the code sandbox, the limits.

A grader is one async callable ``(answer, sample) -> Grade``; the heavy parts it needs
(worker processes with hard time limits, the sandboxed executor) are made once per run,
on first use, and closed when the run ends. The runner opens a context with the run's
options::

    async with GradingContext(GradingOptions(timeout_s=5)) as ctx:
        grade = await task.grader(text, sample)   # graders call current_context()

Outside a run (a notebook grading by hand) ``current_context()`` gives a process-wide
default context, closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextvars
import os
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

if TYPE_CHECKING:
    from evals.grading.pool import GradingPool
    from evals.sandbox import Executor

__all__ = ["ExecutorKind", "GradingContext", "GradingOptions", "current_context"]

#: Where sandboxed programs run: this machine's processes, or a Ray cluster.
ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True, slots=True)
class GradingOptions:
    """Limits and choices of the graders of one run.

    Attributes:
        timeout_s: wall limit per answer in the math worker pool; an answer that takes
            longer is graded wrong with reason "timeout".
        processes: math worker processes and parallel sandboxed programs (``None``: the
            number of cores).
        unsafe_no_sandbox: run model-written code without bubblewrap (``--unsafe-no-sandbox``).
        executor: where sandboxed programs run (``--executor``): ``"local"`` (processes of
            this machine, the default) or ``"ray"`` (Ray tasks on a cluster's workers, each
            under the worker's own sandbox; see ``evals.grading.ray_executor``). Math
            grading stays in the local pool either way.
        ray_address: the Ray cluster to connect to (``--ray-address``, e.g.
            ``"ray://head:10001"`` or ``"10.0.0.5:6379"``); ``None``: ``$RAY_ADDRESS`` if
            set, else a local Ray instance started for the run. Only with ``"ray"``.

    Raises:
        ConfigError: ``executor`` is unknown, or ``ray_address`` is given without ``"ray"``.
    """

    timeout_s: float = 5.0
    processes: int | None = None
    unsafe_no_sandbox: bool = False
    executor: ExecutorKind = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        from evals.errors import ConfigError

        if self.executor not in ("local", "ray"):
            raise ConfigError(f"Unknown executor {self.executor!r}: use 'local' (this "
                              "machine's processes) or 'ray' (a Ray cluster).")
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError(f"--ray-address {self.ray_address} goes with --executor ray; add "
                              "--executor ray or drop the address.")

    def workers(self) -> int:
        return self.processes or os.cpu_count() or 1


class GradingContext:
    """The pool and the executor of one run, made on first use."""

    def __init__(self, options: GradingOptions | None = None) -> None:
        self.options = options or GradingOptions()
        self._pool: GradingPool | None = None
        self._executor: Executor | None = None
        self._token: contextvars.Token[GradingContext | None] | None = None

    def pool(self) -> GradingPool:
        """The worker pool for CPU-bound grading with a hard per-call limit."""
        if self._pool is None:
            from evals.grading.pool import GradingPool

            # Imported before the first call, so no answer pays for sympy's import inside
            # its time limit.
            self._pool = GradingPool(
                self.options.workers(), timeout_s=self.options.timeout_s,
                preimport=("sympy", "latex2sympy2_extended", "evals.grading.math_compare"),
            )
        return self._pool

    def executor(self) -> Executor:
        """The sandboxed executor for model-written code.

        With ``executor="ray"`` the first call connects to Ray (or starts a local
        instance, a few seconds) and checks bubblewrap on every node of the cluster.

        Raises:
            SandboxUnavailable: bubblewrap is missing or cannot run here (on a Ray node,
                for ``"ray"``), and ``unsafe_no_sandbox`` is off.
            ConfigError: ``"ray"`` was asked for and Ray is not installed or not reachable.
        """
        if self._executor is None:
            if self.options.executor == "ray":
                from evals.grading.ray_executor import make_ray_executor

                self._executor = make_ray_executor(
                    self.options.ray_address, unsafe=self.options.unsafe_no_sandbox,
                    max_parallel=self.options.processes)
            else:
                from evals.sandbox import make_executor

                self._executor = make_executor(unsafe=self.options.unsafe_no_sandbox,
                                               max_parallel=self.options.workers())
        return self._executor

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        executor, self._executor = self._executor, None
        if pool is not None:
            pool.close()
        if executor is not None:
            await executor.aclose()

    async def __aenter__(self) -> Self:
        self._token = _CURRENT.set(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
        await self.aclose()


_CURRENT: contextvars.ContextVar[GradingContext | None] = contextvars.ContextVar(
    "evals_grading_context", default=None
)
_DEFAULT: GradingContext | None = None


def current_context() -> GradingContext:
    """The context of the run in progress, or the process-wide default one."""
    global _DEFAULT
    found = _CURRENT.get()
    if found is not None:
        return found
    if _DEFAULT is None:
        _DEFAULT = GradingContext()
        atexit.register(_close_default)
    return _DEFAULT


def _close_default() -> None:
    if _DEFAULT is not None and _DEFAULT._pool is not None:
        _DEFAULT._pool.close()
