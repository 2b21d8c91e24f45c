"""The run store: every answered request, in sqlite (WAL), for resume and re-grading.

A response is keyed by the canonical request (model, messages, sampling, seed; not the
transport details ``stream``/``stream_options``) and the repeat index. It is committed
before the runner counts it, so a run killed at any moment (Ctrl-C or SIGKILL) loses at most
the requests that were in flight, and rerunning the same command asks only for what is
missing. Failed requests are not stored: a rerun retries exactly those.

API keys never reach the store: they live only in the Authorization header.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from evals.records import Response, Usage

__all__ = ["Store", "request_key"]

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


class Store:
    """A sqlite file of answered requests.

    Args:
        path: the database file; created with its folder if missing.
        window: seconds a queued response may wait for others to share its transaction.
        max_batch: queued responses that commit at once without waiting for the window.
    """

    def __init__(self, path: Path, window: float = 0.05, max_batch: int = 256) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.window = window
        self.max_batch = max_batch
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
        self._pending: list[tuple[Any, ...]] = []
        self._then: list[Callable[[], object]] = []
        self._committed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failure: Exception | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._rows

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

        Responses queued within ``window`` seconds share one transaction (a full batch
        commits at once): at hundreds of answers a second this turns hundreds of commits
        into a few. The caller need not wait: a runner passes ``then`` to count an attempt
        only once it is on disk and meanwhile sends its next request, so a kill at any
        moment loses only answers nobody has counted yet.

        Raises:
            sqlite3.Error: an earlier transaction failed (the run cannot keep its answers),
                or whatever an earlier ``then`` raised.
        """
        if self._failure is not None:
            raise self._failure
        self._pending.append((key, task, sample_id, repeat, seed, orjson.dumps(request),
                              _encode(response), time.time()))
        if then is not None:
            self._then.append(then)
        if self._committed is None:
            loop = asyncio.get_running_loop()
            self._committed = loop.create_future()
            self._timer = loop.call_later(self.window, self._flush)
        elif len(self._pending) >= self.max_batch:
            future = self._committed
            self._flush()
            return future
        return self._committed

    def _flush(self) -> None:
        rows, then, future = self._pending, self._then, self._committed
        self._pending, self._then, self._committed = [], [], None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert future is not None  # set with the first queued row; the timer dies with it
        try:
            self._db.execute("BEGIN")
            self._db.executemany(_INSERT, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._failure = exc
            if not future.done():
                future.set_exception(exc)
                future.exception()  # a runner that passed ``then`` never awaits it
            return
        self._rows.update(dict.fromkeys([row[0] for row in rows]))
        for callback in then:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 (a full disk under the table, say)
                # Not raised here (a timer called us): the next commit_soon or close does.
                self._failure = self._failure or exc
        if not future.done():  # its waiter may have been cancelled with the run
            future.set_result(None)

    def keys(self) -> set[str]:
        return set(self._rows)

    def close(self) -> None:
        """Commit what is still queued (a run stopped mid-turn keeps every answer it paid
        for, and its ``then`` callbacks run), then close the file.

        Raises:
            sqlite3.Error: a transaction failed (or what a ``then`` callback raised).
        """
        try:
            if self._pending:
                self._flush()
        finally:
            self._db.close()
        if self._failure is not None:
            raise self._failure
