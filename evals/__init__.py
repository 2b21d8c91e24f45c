"""An evaluation harness for reasoning benchmarks behind OpenAI-compatible endpoints.

The public API is small: build a ``RunConfig`` and ``await run(cfg)``, or grade recorded
responses with ``grade_responses``; read finished runs with ``read_attempts``. Task plugins
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
    from evals.output import read_attempts
    from evals.runner import GradeConfig, RunConfig, RunResult, Sampling, grade_responses, run

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
    "RunConfig",
    "RunResult",
    "Sample",
    "Sampling",
    "Task",
    "UnknownModelError",
    "Usage",
    "grade_responses",
    "read_attempts",
    "run",
    "task",
]

_LAZY = {
    "GradeConfig": "evals.runner",
    "RunConfig": "evals.runner",
    "RunResult": "evals.runner",
    "Sampling": "evals.runner",
    "grade_responses": "evals.runner",
    "run": "evals.runner",
    "read_attempts": "evals.output",
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
