"""Small helpers for the tests (not fixtures)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def run_sync(coro: Any) -> Any:
    return asyncio.run(coro)
