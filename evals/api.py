"""The Python API for notebooks: load finished runs, summarise them, compare two of them.

Everything returns pandas DataFrames (or small records holding them), and the command
line (``evals report``, ``evals compare``, ``evals runs``) is a thin layer over these same
functions::

    import evals
    base = evals.load_run("results/nightly-0101")
    new = evals.load_run("results/nightly-0102")
    evals.summarize(new)                      # one row per task and subset
    result = evals.compare(base, new)         # paired by problem and repeat
    result.tasks, result.flipped, result.settings

pandas is imported when a function runs, never when ``evals`` is imported.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from evals.comparison import RunComparison

__all__ = ["Run", "compare", "load_run", "prompts_from_store", "summarize"]

#: The per-attempt columns holding JSON text that ``load_run`` decodes into Python objects.
JSON_COLUMNS = ("details", "metadata", "messages")


@dataclass(frozen=True, slots=True)
class Run:
    """One finished run, read from its folder.

    Attributes:
        path: the run folder.
        manifest: ``manifest.json`` as a dict (config, endpoint, datasets, published
            comparison, counts...).
        attempts: the per-attempt table (``samples.parquet``), one row per problem and
            repeat. ``details``, ``metadata`` and (when the run recorded it) ``messages``
            are decoded from JSON into dicts/lists (``None`` where empty), and each
            metadata field is also a column of its own named ``meta_<field>`` (for
            slicing by difficulty, topic, contest date...).
        summary: ``summary.csv`` as written by the run (one row per task and subset; the
            task rows carry the published comparison columns where the run had them).
            Empty when the run did not finish.
    """

    path: Path
    manifest: dict[str, Any]
    attempts: pd.DataFrame
    summary: pd.DataFrame

    @property
    def name(self) -> str:
        """The folder's name: the label reports and comparisons use."""
        return self.path.name

    @property
    def model(self) -> str:
        """The model name the run sent to the endpoint (``"?"`` when not recorded)."""
        return str((self.manifest.get("config") or {}).get("model") or "?")

    @property
    def simulated(self) -> bool:
        """Whether the answers came from the simulated model server."""
        return bool(self.manifest.get("simulated"))

    @property
    def tasks(self) -> list[str]:
        """The tasks present in the per-attempt table, sorted."""
        return sorted(str(t) for t in self.attempts["task"].unique())

    @property
    def pass_k_tasks(self) -> frozenset[str]:
        """The tasks whose summary reports pass@k (code tasks)."""
        if self.summary.empty or "pass@1" not in self.summary.columns:
            return frozenset()
        rows = self.summary[self.summary["pass@1"].notna()]
        return frozenset(str(t) for t in rows["task"].unique())

    @property
    def subsets(self) -> dict[str, tuple[str, ...]]:
        """Per task, the metadata fields its summary breaks results down by."""
        if self.summary.empty or "subset" not in self.summary.columns:
            return {}
        rows = self.summary[self.summary["subset"].fillna("") != ""]
        out: dict[str, tuple[str, ...]] = {}
        for (task, subset), _ in rows.groupby(["task", "subset"], sort=True):
            out[str(task)] = (*out.get(str(task), ()), str(subset))
        return out


def _decode(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, str):
        return json.loads(value)
    return value


def load_run(path: str | os.PathLike[str] | Run) -> Run:
    """Read a finished run folder.

    Args:
        path: the run folder (holding ``manifest.json`` and ``samples.parquet``), or a
            ``Run`` already loaded (returned as is, so every function taking a run also
            takes a path).

    Returns:
        The run: manifest, decoded per-attempt table and summary (see ``Run``).

    Raises:
        DataError: the folder is not a run folder, or the run has no per-attempt table
            yet (it is still running or was interrupted: rerun its command to finish it).

    Example:
        >>> run = load_run("results/demo")  # doctest: +SKIP
        >>> run.attempts.groupby("sample_id")["correct"].mean()  # doctest: +SKIP
    """
    if isinstance(path, Run):
        return path
    import pandas as pd

    folder = Path(path)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{folder} is not a run folder: it has no manifest.json (give the "
                        "folder `evals run --out` wrote, e.g. results/<run>).")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise DataError(f"{manifest_path} is not valid JSON ({exc}).") from exc
    table = folder / "samples.parquet"
    if not table.is_file():
        raise DataError(f"{folder} has no samples.parquet: the run has not finished (status "
                        f"{manifest.get('status', 'unknown')!r}); rerun its command to resume.")
    attempts = pd.read_parquet(table)
    for column in JSON_COLUMNS:
        if column in attempts.columns:
            attempts[column] = [_decode(v) for v in attempts[column]]
    if "metadata" in attempts.columns:
        fields = sorted({k for m in attempts["metadata"] if isinstance(m, dict) for k in m})
        for name in fields:
            attempts[f"meta_{name}"] = [m.get(name) if isinstance(m, dict) else None
                                        for m in attempts["metadata"]]
    summary_path = folder / "summary.csv"
    summary = (pd.read_csv(summary_path, keep_default_na=True) if summary_path.is_file()
               else pd.DataFrame())
    if "subset" in summary.columns:
        summary["subset"] = summary["subset"].fillna("")
        summary["value"] = summary["value"].fillna("").astype(str)
    return Run(path=folder, manifest=manifest, attempts=attempts, summary=summary)


def _rows_for_metrics(df: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """The attempts as the dict rows ``evals.metrics.summarize`` reads (metadata as JSON
    text, missing values as None)."""
    wanted = ("task", "sample_id", "repeat", "outcome", "correct", "extracted",
              "prompt_tokens", "completion_tokens", "reasoning_tokens", "latency_s",
              "ttft_s", "cost", "retries", "cached", "metadata")
    columns = [c for c in wanted if c in df.columns]
    for record in df[columns].to_dict("records"):
        row = {k: (None if isinstance(v, float) and math.isnan(v) else v)
               for k, v in record.items()}
        meta = row.get("metadata")
        if isinstance(meta, Mapping):
            row["metadata"] = json.dumps(dict(meta))
        yield row


def summarize(
    data: Run | pd.DataFrame | str | os.PathLike[str],
    subsets: Mapping[str, Iterable[str]] | None = None,
    pass_k: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Score a per-attempt table: one row per task (``subset`` empty) and per subset value.

    The numbers are those of ``summary.csv`` (``evals.metrics.summarize``): mean score
    over repeats, standard error clustered by problem, 95% interval, outcome counts,
    maj@n, pass@k for code tasks, tokens, latency, cost. Give a filtered table to score a
    slice (``run.attempts[run.attempts.meta_level == "hard"]``).

    Args:
        data: a ``Run``, a run folder, or a per-attempt DataFrame (as in ``Run.attempts``
            or ``read_attempts``; ``metadata`` may be JSON text or dicts).
        subsets: per task, the metadata fields to break down by. ``None``: a run's own
            breakdown (from its summary); none for a bare DataFrame.
        pass_k: the tasks that also get pass@k for every k up to their repeats. ``None``:
            a run's own (its code tasks); none for a bare DataFrame.

    Returns:
        The summary as a DataFrame, sorted by task, subset and value; an empty table
        (with no columns) for an empty input.
    """
    import pandas as pd

    from evals.metrics import summarize as summarize_rows

    if isinstance(data, (str, os.PathLike)):
        data = load_run(data)
    if isinstance(data, Run):
        subsets = data.subsets if subsets is None else subsets
        pass_k = data.pass_k_tasks if pass_k is None else pass_k
        data = data.attempts
    by = {task: tuple(fields) for task, fields in (subsets or {}).items()}
    rows = summarize_rows(_rows_for_metrics(data), by, frozenset(pass_k or ()))
    for row in rows:
        row.pop("measured", None)
    return pd.DataFrame(rows)


def compare(
    base: Run | str | os.PathLike[str],
    new: Run | str | os.PathLike[str],
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> RunComparison:
    """Compare two runs of the same tasks, paired by problem (and repeat).

    Args:
        base: the reference run (a ``Run`` or its folder).
        new: the run under test.
        resamples: bootstrap resamples of the problems for the paired interval.
        seed: the bootstrap's seed (fixed, so the same two runs always give the same
            interval).

    Returns:
        A ``RunComparison``: ``tasks`` (per task: both scores, the difference in points
        and its paired 95% interval), ``flipped`` (the problems whose verdicts changed,
        each way), ``settings`` (what differs between the two manifests); render it with
        ``to_text()`` / ``to_markdown()``, gate CI with ``dropped(points)``.

    Raises:
        DataError: a folder is not a finished run, or the runs share no task with a
            problem in common (nothing to pair).
    """
    from evals.comparison import compare_runs

    return compare_runs(load_run(base), load_run(new), resamples=resamples, seed=seed)


def prompts_from_store(run: Run) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The prompt sent for each problem, ``(task, sample_id) -> messages``.

    Taken from the ``messages`` column when the run recorded it, else from the run's
    ``store.sqlite`` (the request of the problem's first repeat; every repeat of a problem
    is sent the same messages except multiple-choice tasks, whose choices are shuffled per
    repeat). Empty when neither exists (a run graded with ``evals grade``).
    """
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    df = run.attempts
    if "messages" in df.columns:
        first = df.sort_values("repeat").drop_duplicates(["task", "sample_id"])
        for task, sid, messages in zip(first["task"], first["sample_id"], first["messages"],
                                       strict=True):
            if isinstance(messages, list):
                out[(str(task), str(sid))] = messages
        if out:
            return out
    store = run.path / "store.sqlite"
    if not store.is_file():
        return out
    # A store closed cleanly has no -wal file: open it immutable, so reading leaves no
    # -shm/-wal files behind. Otherwise read-only, so the WAL's rows are seen too.
    wal = store.with_name(store.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    con = sqlite3.connect(f"file:{store}?{mode}", uri=True)
    try:
        rows = con.execute("SELECT task, sample_id, request FROM responses "
                           "ORDER BY repeat DESC, rowid").fetchall()
    except sqlite3.Error:
        return out
    finally:
        con.close()
    for task, sid, request in rows:  # the lowest repeat comes last and wins
        try:
            messages = json.loads(request).get("messages")
        except (ValueError, AttributeError):
            continue
        if isinstance(messages, list):
            out[(str(task), str(sid))] = messages
    return out
