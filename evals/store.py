"""The run store: every answered request, in sqlite (WAL), for resume and re-grading.

A response is keyed by the canonical request (model, messages, sampling, seed; not the
transport details ``stream``/``stream_options``) and the repeat index. It is committed
before the runner counts it, so a run killed at any moment (Ctrl-C or SIGKILL) loses at most
the requests that were in flight, and rerunning the same command asks only for what is
missing. Failed requests are not stored: a rerun retries exactly those.

API keys never reach the store: they live only in the Authorization header.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from evals.records import Response, Usage

__all__ = ["Store", "request_key"]

_TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    created REAL NOT NULL
)
"""


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

    def get(self, key: str) -> Response | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return _decode(row[0]) if row else None

    def put(
        self,
        key: str,
        *,
        task: str,
        sample_id: str,
        repeat: int,
        seed: int,
        request: Mapping[str, Any],
        response: Response,
    ) -> None:
        """Store and commit one response (autocommit: durable when this returns)."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, task, sample_id, repeat, seed, request, "
            "response, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                task,
                sample_id,
                repeat,
                seed,
                orjson.dumps(request),
                _encode(response),
                time.time(),
            ),
        )

    def keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM responses")}

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()
