"""The runs under a folder as one table: a history of nightly runs is one command.

Every folder below the root holding a ``manifest.json`` of kind ``run`` counts (folders
named ``figures`` and hidden ones are not searched). A finished run gives a row per task
from its ``summary.csv``; a run that has not finished gives a row per configured task with
no score and its status (``running`` or whatever the manifest says).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "find_runs", "list_runs"]

#: The runs table's columns, in order.
COLUMNS = ("date", "model", "endpoint", "task", "n", "problems", "score", "ci_low",
           "ci_high", "status", "cost", "simulated", "tasks", "run", "path")

_SKIP = frozenset({"figures", "__pycache__", "node_modules"})


def find_runs(root: Path, max_depth: int = 4) -> Iterator[Path]:
    """The run folders under ``root`` (``root`` itself included), in path order."""

    def walk(folder: Path, depth: int) -> Iterator[Path]:
        if (folder / "manifest.json").is_file():
            yield folder
            return  # a run folder holds no other run
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(".") or child.name in _SKIP:
                continue
            yield from walk(child, depth + 1)

    yield from walk(root, 0)


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _rows(folder: Path) -> list[dict[str, Any]]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    if manifest.get("kind", "run") != "run":
        return []
    cfg = manifest.get("config") or {}
    endpoint = manifest.get("endpoint") or {}
    tasks = list(cfg.get("tasks") or [])
    common = {
        "date": manifest.get("started"), "model": cfg.get("model"),
        "endpoint": " ".join(str(v) for v in (endpoint.get("provider"),
                                              endpoint.get("base_url")) if v),
        "status": manifest.get("status", "unknown"),
        "simulated": bool(manifest.get("simulated")), "tasks": ",".join(tasks),
        "run": folder.name, "path": str(folder),
    }
    summary = folder / "summary.csv"
    rows: list[dict[str, Any]] = []
    if summary.is_file():
        with summary.open(newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("subset"):
                    continue
                rows.append({**common, "task": r.get("task"),
                             "n": int(_float(r.get("repeats")) or 0),
                             "problems": int(_float(r.get("problems")) or 0),
                             "score": _float(r.get("score")),
                             "ci_low": _float(r.get("ci_low")),
                             "ci_high": _float(r.get("ci_high")),
                             "cost": _float(r.get("cost"))})
    if not rows:
        repeats = manifest.get("repeats") or {}
        rows = [{**common, "task": task, "n": repeats.get(task) or cfg.get("n") or 0,
                 "problems": 0, "score": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                 "cost": math.nan} for task in tasks or ["?"]]
    return rows


def list_runs(root: str | Path = "results") -> pd.DataFrame:
    """A row per run and task under ``root``, newest first.

    Args:
        root: the folder to search (default ``results``), or one run folder.

    Returns:
        A DataFrame with the columns of ``COLUMNS``: date (the run's start, ISO 8601),
        model, endpoint, task, n (repeats), problems, score / ci_low / ci_high (fractions;
        NaN for a run without a summary), status, cost (USD; NaN when unpriced),
        simulated, tasks (all the run's tasks), run (folder name), path.

    Raises:
        DataError: ``root`` is not a folder.
    """
    import pandas as pd

    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder: give the folder holding run folders "
                        "(default: results).")
    rows = [row for run in find_runs(folder) for row in _rows(run)]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if table.empty:
        return table
    return table.sort_values(["date", "run", "task"], ascending=[False, False, True],
                             na_position="last", kind="stable").reset_index(drop=True)
