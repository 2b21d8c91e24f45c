"""The run store's group commit, its full-disk failure, and the run folder's lock.

A full disk is sqlite's own ``SQLITE_FULL``, reached with ``PRAGMA max_page_count`` (no
root, no small file system needed), and an ``OSError(ENOSPC)`` raised where the table is
written. ``tests/test_durability.py`` runs the same cases through ``evals run``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.errors import DiskFull, RunFolderBusy
from evals.records import Response, Usage
from evals.runlock import LOCK_NAME, hold_run_folder
from evals.store import Store, disk_full, request_key, stored_answers

BODY = {"model": "m", "messages": [{"role": "user", "content": "What is 6*7?"}], "seed": 0}
ANSWER = Response("42", None, "stop", Usage(1, 2))


def _commit(store: Store, seed: int, then: object = None, size: int = 0
            ) -> asyncio.Future[None]:
    body = {**BODY, "seed": seed, "pad": "x" * size}
    return store.commit_soon(request_key(body, 0), task="t", sample_id="s", repeat=0,
                             seed=seed, request=body, response=ANSWER,
                             then=then)  # type: ignore[arg-type]


def _seeds(path: Path) -> set[int]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT seed FROM responses")}


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def _limit_pages(store: Store, extra: int) -> None:
    """Let the store's database grow by ``extra`` pages only: the next commit beyond fails
    with SQLITE_FULL, as on a full disk."""
    db = store._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + extra}")


# -- group commit -------------------------------------------------------------------------


def test_answers_arriving_in_later_turns_form_the_next_transactions(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "s.sqlite")
        try:
            first = _commit(store, 0)
            await asyncio.sleep(0)  # one turn: committed, with no window to wait out
            assert first.done() and _seeds(store.path) == {0}
            second, third = _commit(store, 1), _commit(store, 2)
            assert second is third and second is not first
            await second
            assert _seeds(store.path) == {0, 1, 2} and len(store) == 3
        finally:
            store.close()

    asyncio.run(main())


def test_a_lone_answer_is_committed_within_a_millisecond_not_a_window(tmp_path: Path) -> None:
    async def main() -> float:
        store = Store(tmp_path / "s.sqlite")
        try:
            _commit(store, 0)
            await asyncio.sleep(0)
            started = time.perf_counter()
            await _commit(store, 1)
            return time.perf_counter() - started
        finally:
            store.close()

    assert asyncio.run(main()) < 0.02  # the design it replaced waited 50 ms


def test_close_commits_the_open_batch_and_runs_its_callbacks(tmp_path: Path) -> None:
    counted: list[int] = []

    async def main() -> None:
        store = Store(tmp_path / "s.sqlite")
        for seed in range(4):
            _commit(store, seed, then=lambda seed=seed: counted.append(seed))
        store.close()  # as a run cancelled mid-turn does
        store.close()  # and again, from its ``finally``: nothing

    asyncio.run(main())
    assert counted == [0, 1, 2, 3] and _seeds(tmp_path / "s.sqlite") == {0, 1, 2, 3}
    assert stored_answers(tmp_path / "s.sqlite") == 4


def test_checkpoints_run_off_the_loop_and_keep_the_wal_bounded(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "s.sqlite")
        try:
            for seed in range(80):  # 80 x 100 KB, over the 4 MB between checkpoints
                await _commit(store, seed, size=100_000)
            deadline = time.monotonic() + 10
            while store.path.stat().st_size < 4_000_000 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            # Copied into the database file while the store stays open: the checkpointer.
            assert store.path.stat().st_size >= 4_000_000
        finally:
            store.close()
        assert not Path(f"{store.path}-wal").exists()  # the last close checkpoints it all

    asyncio.run(main())
    assert len(_seeds(tmp_path / "s.sqlite")) == 80


def test_stored_answers_of_a_missing_or_unreadable_store(tmp_path: Path) -> None:
    assert stored_answers(tmp_path / "none.sqlite") == 0
    (tmp_path / "bad.sqlite").write_bytes(b"not a database" * 100)
    assert stored_answers(tmp_path / "bad.sqlite") is None


# -- a full disk ----------------------------------------------------------------------------


def test_a_full_disk_fails_the_commit_with_a_clear_error_and_corrupts_nothing(
        tmp_path: Path) -> None:
    path = tmp_path / "run" / "store.sqlite"

    async def main() -> None:
        store = Store(path)
        for seed in range(3):
            await _commit(store, seed)
        _limit_pages(store, 4)
        failed = None
        for seed in range(3, 200):
            try:
                await _commit(store, seed, size=4000)
            except DiskFull as exc:
                failed = exc
                break
        assert failed is not None, "the limit was never reached"
        message = str(failed)
        assert str(path.parent) in message and "rerun the same command" in message
        assert "No space left" in message and "nothing is corrupted" in message
        assert isinstance(failed.__cause__, sqlite3.OperationalError)
        with pytest.raises(DiskFull):  # the store refuses every later answer at once
            _commit(store, 500)
        with pytest.raises(DiskFull):  # and closing says so too
            store.close()

    asyncio.run(main())
    assert _integrity(path) == "ok"
    kept = _seeds(path)
    assert {0, 1, 2} <= kept and 500 not in kept

    async def resume() -> None:  # space is back: the same store takes answers again
        store = Store(path)
        try:
            assert len(store) == len(kept)
            await _commit(store, 500)
        finally:
            store.close()

    asyncio.run(resume())
    assert _seeds(path) == kept | {500} and _integrity(path) == "ok"


def test_enospc_where_the_table_is_written_stops_the_store_with_a_clear_error(
        tmp_path: Path) -> None:
    def table_row() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def main() -> None:
        store = Store(tmp_path / "s.sqlite")
        await _commit(store, 0, then=table_row)  # committed; counting it failed
        with pytest.raises(DiskFull, match="rerun the same command to resume"):
            _commit(store, 1)
        with pytest.raises(DiskFull):
            store.close()

    asyncio.run(main())
    assert _seeds(tmp_path / "s.sqlite") == {0}


def test_disk_full_tells_a_full_disk_from_other_errors(tmp_path: Path) -> None:
    assert disk_full(tmp_path, OSError(errno.EACCES, "denied")) is None
    assert disk_full(tmp_path, sqlite3.OperationalError("no such table")) is None
    full = disk_full(tmp_path, OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, DiskFull) and "0 answers are committed" in str(full)
    inside = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "samples.jsonl"))
    assert isinstance(disk_full(tmp_path, inside), DiskFull)
    elsewhere = OSError(errno.ENOSPC, "No space left on device", "/var/cache/datasets/x")
    assert disk_full(tmp_path, elsewhere) is None  # not the run folder's disk


# -- the run folder's lock ------------------------------------------------------------------


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    with hold_run_folder(tmp_path), pytest.raises(RunFolderBusy) as refused, \
            hold_run_folder(tmp_path):
        pass
    message = str(refused.value)
    assert "\n" not in message and str(tmp_path) in message
    assert f"pid {os.getpid()}" in message
    with hold_run_folder(tmp_path):  # released on leaving the block
        pass


_HOLDER = """
import sys, time
from pathlib import Path
from evals.runlock import hold_run_folder
with hold_run_folder(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RunFolderBusy, match=f"pid {holder.pid}"), \
                hold_run_folder(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()  # left behind, and harmless:
    with hold_run_folder(tmp_path):
        pass
