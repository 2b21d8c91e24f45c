"""Shared fixtures: benchmark data, the sandbox check and the simulated model server.

Benchmark files. A test that needs a real benchmark file asks ``benchmark_file`` (or the
plain function ``benchmark_path``) for it by its path under the data folder, e.g.
``benchmark_file("aime2025/aime2025.jsonl")``. It is looked for, in order:

1. under ``$EVALS_TEST_DATA`` (a folder laid out like ``../shared/data``);
2. under ``../shared/data`` beside the repository;
3. for files that are a hub dataset as published (``HUB_COPIES``), in the Hugging Face
   cache through the harness's own loader, offline (``HF_HUB_OFFLINE=1``, in a
   subprocess with a deadline, so a missing dataset never waits on the network);

else the test is skipped with a one-line reason naming the file and the fix. With
``EVALS_REQUIRE_DATA=1`` (CI) the skip is a failure instead.

Sandbox. A test that runs programs under bubblewrap requests ``needs_sandbox``; without
a working bubblewrap (the check ``evals.sandbox.make_executor`` makes) it is skipped
with the install command as the reason, or fails when ``EVALS_REQUIRE_SANDBOX=1`` (CI).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
AIME2025 = "aime2025/aime2025.jsonl"

#: Data files that are a hub dataset row for row, by the task whose hub spec loads it.
#: (The AIME files are not: the hub copies the tasks read have other ids and fields;
#: the LiveCodeBench and MMLU-Pro files are samples with derived rows.)
HUB_COPIES = {
    "math500/test.jsonl": "math500",
    "humaneval/HumanEval.jsonl": "humaneval",
}
HUB_DEADLINE_S = 120

# The environment as the user started pytest, before pytest_configure points the caches
# at temporary folders: the hub attempt reads the user's own Hugging Face cache.
_USER_ENV = dict(os.environ)


def pytest_configure(config: pytest.Config) -> None:
    # One dataset cache for the whole session, never the user's own.
    os.environ["EVALS_CACHE_DIR"] = tempfile.mkdtemp(prefix="evals-test-cache-")
    os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="evals-test-hf-"))


def _required(variable: str) -> bool:
    return os.environ.get(variable, "").strip() not in ("", "0")


def _missing(reason: str, variable: str) -> NoReturn:
    """Skip the current test, or fail it when ``variable`` says CI requires the resource."""
    if _required(variable):
        pytest.fail(f"{reason} ({variable} is set, so this is a failure, not a skip)",
                    pytrace=False)
    pytest.skip(reason)


@functools.cache
def _from_hub(relpath: str) -> Path | str:
    """The hub copy of ``relpath`` written as JSONL, or why it could not be loaded."""
    task = HUB_COPIES.get(relpath)
    if task is None:
        return "it has no hub copy"
    out = Path(tempfile.mkdtemp(prefix="evals-test-hub-")) / Path(relpath).name
    script = (
        "import sys, orjson\n"
        "from evals.data import _rows_for\n"
        "from evals.registry import Registry\n"
        "rows = _rows_for(Registry().get(sys.argv[1]), None)[0]\n"
        "with open(sys.argv[2], 'wb') as fh:\n"
        "    fh.writelines(orjson.dumps(r, default=str) + b'\\n' for r in rows)\n"
    )
    env = {**_USER_ENV, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       _USER_ENV.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-c", script, task, str(out)], env=env,
                              capture_output=True, text=True, timeout=HUB_DEADLINE_S,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"the {task} hub dataset did not load offline within {HUB_DEADLINE_S} s"
    if done.returncode != 0 or not out.is_file():
        return f"the {task} hub dataset is not in the Hugging Face cache"
    return out


@functools.cache
def find_benchmark_file(relpath: str) -> Path | str:
    """Where the benchmark file ``relpath`` is, or a one-line reason it is missing."""
    roots = [Path(os.environ["EVALS_TEST_DATA"])] if os.environ.get("EVALS_TEST_DATA") else []
    for root in (*roots, SHARED_DATA):
        if (root / relpath).is_file():
            return root / relpath
    hub = _from_hub(relpath)
    if isinstance(hub, Path):
        return hub
    where = "$EVALS_TEST_DATA, " if roots else ""
    return (f"benchmark file {relpath} not found in {where}../shared/data ({hub}): set "
            f"EVALS_TEST_DATA=/path/to/data, a folder holding {relpath}")


def benchmark_path(relpath: str) -> Path:
    """The benchmark file ``relpath`` (e.g. ``"math500/test.jsonl"``), or skip the test.

    Call it inside a test or fixture (it skips, or fails under ``EVALS_REQUIRE_DATA=1``).
    """
    found = find_benchmark_file(relpath)
    if isinstance(found, str):
        _missing(found, "EVALS_REQUIRE_DATA")
    return found


@pytest.fixture(scope="session")
def benchmark_file() -> Callable[[str], Path]:
    """``benchmark_file("aime2025/aime2025.jsonl")``: the file's path, or the test skips."""
    return benchmark_path


@pytest.fixture(scope="session")
def aime2025_path(benchmark_file: Callable[[str], Path]) -> Path:
    return benchmark_file(AIME2025)


@functools.cache
def sandbox_problem() -> str:
    """"" when bubblewrap works here (the check the harness makes), else a one-line reason."""
    from evals.sandbox import SandboxUnavailable, make_executor

    try:
        make_executor()
    except SandboxUnavailable as exc:
        cause = " ".join(str(exc).split()).split(". ")[0]
        return (f"needs a working bubblewrap, install it with `apt-get install -y bubblewrap` "
                f"(Debian/Ubuntu): {cause}")
    return ""


def require_sandbox(*pending: Awaitable[Any]) -> None:
    """Skip the current test (fail under ``EVALS_REQUIRE_SANDBOX=1``) without bubblewrap.

    For helpers that run programs; a test or fixture can request ``needs_sandbox`` instead.
    Coroutines in ``pending`` (made but never to be awaited) are closed first, so no
    "never awaited" warning outlives the skip.
    """
    problem = sandbox_problem()
    if problem:
        for coro in pending:
            if isinstance(coro, Coroutine):
                coro.close()
        _missing(problem, "EVALS_REQUIRE_SANDBOX")


@pytest.fixture
def needs_sandbox() -> None:
    """Skip (or fail under ``EVALS_REQUIRE_SANDBOX=1``) without a working bubblewrap."""
    require_sandbox()


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
