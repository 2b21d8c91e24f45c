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
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from evals.grading.pool import GradingPool
    from evals.sandbox import Executor

__all__ = ["GradingContext", "GradingOptions", "current_context"]


@dataclass(frozen=True, slots=True)
class GradingOptions:
    """Limits and choices of the graders of one run.

    Attributes:
        timeout_s: wall limit per answer in the math worker pool; an answer that takes
            longer is graded wrong with reason "timeout".
        processes: math worker processes and parallel sandboxed programs (``None``: the
            number of cores).
        unsafe_no_sandbox: run model-written code without bubblewrap (``--unsafe-no-sandbox``).
    """

    timeout_s: float = 5.0
    processes: int | None = None
    unsafe_no_sandbox: bool = False

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

        Raises:
            SandboxUnavailable: bubblewrap is missing or cannot run here, and
                ``unsafe_no_sandbox`` is off.
        """
        if self._executor is None:
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
