"""Shared fixtures: real data from ../shared/data and the simulated model server."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
AIME2025 = SHARED_DATA / "aime2025" / "aime2025.jsonl"


def pytest_configure(config: pytest.Config) -> None:
    # One dataset cache for the whole session, never the user's own.
    os.environ["EVALS_CACHE_DIR"] = tempfile.mkdtemp(prefix="evals-test-cache-")
    os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="evals-test-hf-"))


@pytest.fixture(scope="session")
def aime2025_path() -> Path:
    if not AIME2025.is_file():
        pytest.fail(f"{AIME2025} is missing: tests need ../shared/data beside the repository")
    return AIME2025


@pytest.fixture
def simulator(tmp_path: Path) -> Callable[..., Any]:
    """``with simulator({"aime2025": path}, accuracy=0.7) as sim: sim.base_url``.

    The request log of each simulator is ``sim.request_log``.
    """
    from evals.simulator import AnswerBook, SimConfig, SimulatorThread

    @contextmanager
    def make(tasks: dict[str, Path], **config: Any) -> Iterator[SimulatorThread]:
        book = AnswerBook.from_tasks(list(tasks), {k: v for k, v in tasks.items() if v})
        log = tmp_path / f"requests-{len(list(tmp_path.glob('requests-*')))}.jsonl"
        with SimulatorThread(SimConfig(**config), book, request_log=log) as sim:
            yield sim

    return make
