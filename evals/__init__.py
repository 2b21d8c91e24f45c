"""An evaluation harness for reasoning benchmarks behind OpenAI-compatible endpoints.

The public API is small: build a ``RunConfig`` and ``await run(cfg)``, or grade recorded
responses with ``grade_responses``; read finished runs with ``load_run`` (or the bare table
with ``read_attempts``), summarise, ``compare`` two runs, draw them with the ``plot_*``
functions and write an HTML report with ``write_report``. Task plugins
use ``task``, ``Task``, ``DatasetSpec``, ``Sample`` and ``Grade``. Importing this package
is cheap; heavy libraries load when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evals.errors import (
    AuthError,
    ConfigError,
    DataError,
    EndpointError,
    EvalsError,
    RequestFailed,
    UnknownModelError,
)
from evals.records import Grade, Response, Sample, Usage
from evals.registry import DatasetSpec, Task, task

if TYPE_CHECKING:
    from evals.api import Run, compare, load_run, summarize
    from evals.comparison import RunComparison
    from evals.html_report import write_report
    from evals.output import read_attempts
    from evals.plots import (
        plot_pass_at_k,
        plot_published,
        plot_score_history,
        plot_score_vs_length,
        plot_usage,
        plot_verdict_grid,
    )
    from evals.regrade import GradeConfig, grade_responses
    from evals.runner import RunConfig, RunResult, Sampling, run
    from evals.runs import list_runs

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "DataError",
    "DatasetSpec",
    "EndpointError",
    "EvalsError",
    "Grade",
    "GradeConfig",
    "RequestFailed",
    "Response",
    "Run",
    "RunComparison",
    "RunConfig",
    "RunResult",
    "Sample",
    "Sampling",
    "Task",
    "UnknownModelError",
    "Usage",
    "compare",
    "grade_responses",
    "list_runs",
    "load_run",
    "plot_pass_at_k",
    "plot_published",
    "plot_score_history",
    "plot_score_vs_length",
    "plot_usage",
    "plot_verdict_grid",
    "read_attempts",
    "run",
    "summarize",
    "task",
    "write_report",
]

_LAZY = {
    "GradeConfig": "evals.regrade",
    "RunConfig": "evals.runner",
    "RunResult": "evals.runner",
    "Sampling": "evals.runner",
    "grade_responses": "evals.regrade",
    "run": "evals.runner",
    "read_attempts": "evals.output",
    "Run": "evals.api",
    "compare": "evals.api",
    "load_run": "evals.api",
    "summarize": "evals.api",
    "RunComparison": "evals.comparison",
    "write_report": "evals.html_report",
    "list_runs": "evals.runs",
    "plot_pass_at_k": "evals.plots",
    "plot_published": "evals.plots",
    "plot_score_history": "evals.plots",
    "plot_score_vs_length": "evals.plots",
    "plot_usage": "evals.plots",
    "plot_verdict_grid": "evals.plots",
}


def __dir__() -> list[str]:
    """The public names (lazily imported ones included), for ``dir(evals)`` and completion."""
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evals' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
