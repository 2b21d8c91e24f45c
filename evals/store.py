"""The run store: every answered request, in sqlite (WAL), for resume and re-grading.

A response is keyed by the canonical request (model, messages, sampling, seed; not the
transport details ``stream``/``stream_options``) and the repeat index. It is committed
before the runner counts it, and committed as soon as the store is free (a group commit,
no timer): the answers of one turn of the event loop share a transaction, and the answers
that arrive while it commits form the next. A run killed at any moment (SIGKILL) loses only
the requests in flight and the answers of the commit in progress; Ctrl-C loses only the
requests in flight. Rerunning the same command asks only for what is missing. Failed
requests are not stored: a rerun retries exactly those.

API keys never reach the store: they live only in the Authorization header.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from evals.errors import DiskFull
from evals.records import Response, Usage

__all__ = ["Store", "disk_full", "request_key", "stored_answers"]

_TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})

# No index on ``key``: a unique index on random 64-character hashes doubled the cost of
# every insert (each one dirties a random index page; measured 32 -> 17 us of CPU per row
# at 16 rows a transaction). The store reads the (key, rowid) pairs once when it opens and
# looks answers up by rowid. Stores written with the earlier schema (``key TEXT PRIMARY
# KEY``) are read and extended the same way.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT NOT NULL,
    task TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    created REAL NOT NULL
)
"""


# OR REPLACE: a store of the earlier schema has a unique key; on the current one it is an
# insert, and the latest row of a key wins when the store is read.
_INSERT = (
    "INSERT OR REPLACE INTO responses (key, task, sample_id, repeat, seed, request, response, "
    "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

# The WAL is checkpointed (copied into the database file, with an fsync of each) by a thread
# of its own once this many bytes were committed since the last checkpoint: about sqlite's
# own threshold (1000 pages), without the 15 ms stall of the event loop each one was.
_CHECKPOINT_BYTES = 4 << 20


def request_key(body: Mapping[str, Any], repeat: int) -> str:
    """The store key of a request body and repeat index (sha256, hex).

    Transport-only fields (``stream``, ``stream_options``) do not change the key, so a run
    can switch streaming on without asking again.
    """
    canonical = {k: v for k, v in body.items() if k not in _TRANSPORT_FIELDS}
    blob = orjson.dumps([canonical, repeat], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


def _encode(response: Response) -> bytes:
    return orjson.dumps(response)


def _decode(blob: bytes) -> Response:
    data = orjson.loads(blob)
    data["usage"] = Usage(**data.get("usage") or {})
    return Response(**data)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS


def disk_full(folder: Path, exc: BaseException, kept: int | None = None) -> DiskFull | None:
    """``exc`` as a ``DiskFull`` naming the run folder, or ``None`` when it is not a full disk.

    A full disk is sqlite's ``SQLITE_FULL`` or an ``OSError`` with ``ENOSPC``/``EDQUOT``
    about a file in ``folder`` or about no file named (a write to an open file). ``kept``:
    the answers committed in the folder's store (``None``: counted from the file, or left
    out of the message when it cannot be read).
    """
    if not _is_disk_full(exc):
        return None
    named = getattr(exc, "filename", None)
    if named is not None and not Path(named).resolve().is_relative_to(folder.resolve()):
        return None  # another disk (a dataset cache, say): not the run folder's
    if kept is None:
        kept = stored_answers(folder / "store.sqlite")
    count = f"{kept} answers are committed in its store" if kept is not None else (
        "What was committed is in its store")
    return DiskFull(
        f"No space left on the disk that holds the run folder {folder} ({exc}). {count} and "
        "nothing is corrupted: free some space and rerun the same command to resume."
    )


def stored_answers(path: Path) -> int | None:
    """How many answers (distinct keys) the store at ``path`` holds: 0 when there is no
    store, ``None`` when it cannot be read."""
    if not path.is_file():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(DISTINCT key) FROM responses").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


@dataclass(slots=True)
class _Batch:
    """Answers that share one transaction; ``future`` resolves once it is committed."""

    future: asyncio.Future[None]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    then: list[Callable[[], object]] = field(default_factory=list)


class _Checkpointer:
    """Checkpoints the store's WAL in a thread, on request: the fsyncs of a checkpoint never
    stall the event loop, and a PASSIVE checkpoint never blocks the loop's commits or reads.
    A checkpoint that fails (a full disk) leaves the WAL as it is; the next one tries again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._asked = False
        self._thread = threading.Thread(target=self._serve, name="evals-store-checkpoint",
                                        daemon=True)
        self._thread.start()

    def request(self) -> None:
        if not self._asked:  # a request during a checkpoint: that one will do
            self._asked = True
            self._requests.put(True)

    def _serve(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA synchronous=NORMAL")
            while self._requests.get():
                try:  # one sqlite call: the GIL is released for the whole checkpoint
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass
                self._asked = False
        finally:
            db.close()

    def close(self) -> None:
        self._requests.put(False)
        self._thread.join()


class Store:
    """A sqlite file of answered requests.

    Group commit in the event loop's thread: the answers queued in one turn of the loop
    share a transaction, committed at the end of that turn; answers that arrive while it
    commits are read in the next turn and form the next transaction. There is no timer: at
    a few answers a second each commit holds one answer, at thousands tens. A commit only
    appends to the WAL (tens of microseconds: no fsync with ``synchronous=NORMAL``);
    checkpoints, which fsync, run in a thread of their own, so neither lookups nor the
    loop wait behind a long commit.

    Why not commit in a writer thread: measured with ``bench/store.py``'s feed, a writer
    thread cost about 15 us more CPU per answer (two thread hand-offs a transaction), and
    while the loop is busy the writer waits for the GIL at each sqlite call: its commits
    grew to 100 ms and 1,600 answers, all of which a SIGKILL would lose.

    Args:
        path: the database file; created with its folder if missing.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a killed process; only a power
        # loss can drop the last ones, and those are simply asked again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)
        # key -> rowid of its latest row (None: written by this process, rowid not known).
        self._rows: dict[str, int | None] = {
            key: rowid for key, rowid in self._db.execute(
                "SELECT key, rowid FROM responses ORDER BY rowid")}
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
        self._checkpointer = _Checkpointer(path)
        self._since_checkpoint = 0  # bytes committed
        self._open: _Batch | None = None  # collecting answers: the next transaction
        self._failure: Exception | None = None
        self._closed = False

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        """Answers committed (distinct keys), earlier runs' included."""
        return len(self._rows)

    def get(self, key: str) -> Response | None:
        if key not in self._rows:  # most lookups of a fresh run: no query at all
            return None
        rowid = self._rows[key]
        if rowid is not None:
            row = self._db.execute("SELECT response FROM responses WHERE rowid = ?",
                                   (rowid,)).fetchone()
        else:  # written by this run and asked again: rare enough for a scan
            row = self._db.execute("SELECT response FROM responses WHERE key = ? "
                                   "ORDER BY rowid DESC LIMIT 1", (key,)).fetchone()
        return _decode(row[0]) if row else None

    def commit_soon(
        self,
        key: str,
        *,
        task: str,
        sample_id: str,
        repeat: int,
        seed: int,
        request: Mapping[str, Any],
        response: Response,
        then: Callable[[], object] | None = None,
    ) -> asyncio.Future[None]:
        """Queue one response; the future resolves once it is committed, and ``then()`` is
        called right after its transaction commits (in the event loop's thread).

        The answer joins the open batch, committed at the end of this turn of the event loop
        with every answer the turn queued. The caller need not wait: a runner passes
        ``then`` to count an attempt only once it is on disk and meanwhile sends its next
        request, so a kill at any moment loses only answers nobody has counted yet.

        Raises:
            DiskFull: an earlier transaction failed for lack of space.
            sqlite3.Error: an earlier transaction failed otherwise (the run cannot keep its
                answers), or whatever an earlier ``then`` raised.
        """
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise RuntimeError(f"the store {self.path} is closed")
        batch = self._open
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self._open = _Batch(loop.create_future())
            loop.call_soon(self._commit_open)
        batch.rows.append((key, task, sample_id, repeat, seed, orjson.dumps(request),
                           _encode(response), time.time()))
        if then is not None:
            batch.then.append(then)
        return batch.future

    def _commit_open(self) -> None:
        batch, self._open = self._open, None
        if batch is None:  # ``close`` committed it already
            return
        try:
            self._write(batch.rows)
        except sqlite3.Error as exc:
            self._fail(exc)
            if not batch.future.done():
                assert self._failure is not None
                batch.future.set_exception(self._failure)
                batch.future.exception()  # a runner that passed ``then`` never awaits it
            return
        self._rows.update(dict.fromkeys([row[0] for row in batch.rows]))
        self._since_checkpoint += sum(len(row[5]) + len(row[6]) for row in batch.rows)
        if self._since_checkpoint >= _CHECKPOINT_BYTES:
            self._since_checkpoint = 0
            self._checkpointer.request()
        for callback in batch.then:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 (a full disk under the table, say)
                # Not raised here (the loop called us): the next commit_soon or close does.
                self._fail(exc)
        if not batch.future.done():  # its waiter may have been cancelled with the run
            batch.future.set_result(None)

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:  # the usual case at a few answers a second: its own transaction
            self._db.execute(_INSERT, rows[0])
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany(_INSERT, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            full = disk_full(self.path.parent, exc, len(self._rows))
            if full is not None:
                full.__cause__ = exc
            self._failure = full or exc

    def keys(self) -> set[str]:
        return set(self._rows)

    def close(self) -> None:
        """Commit what is still queued (a run stopped mid-turn keeps every answer it paid
        for, and its ``then`` callbacks run), then close the file. Closing again does
        nothing.

        Raises:
            DiskFull: a transaction failed for lack of space (what was committed before is
                intact).
            sqlite3.Error: a transaction failed otherwise (or what a ``then`` callback
                raised).
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._commit_open()
        finally:
            self._checkpointer.close()
            self._db.close()
        if self._failure is not None:
            raise self._failure
