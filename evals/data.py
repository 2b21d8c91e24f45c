"""Loading a task's rows through ``datasets``, from the hub or a local file.

Both paths go through ``datasets.load_dataset``: a hub id (config, split, revision, the
user's token for gated sets) or a local jsonl/json/parquet/csv file (``--data PATH``).
Once a source has been loaded, its rows are kept in a small cache keyed by what identifies
the source exactly (hub id + config + split + revision, or the file's sha256), so reruns and
offline machines do not pay ``datasets``' import and preparation again. The fingerprint of
every load is recorded in the run manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from evals.errors import DataError
from evals.records import Sample
from evals.registry import Task

__all__ = ["LoadedData", "cache_dir", "load_task_data"]

_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_MAX_REPORTED = 5


@dataclass(frozen=True, slots=True)
class LoadedData:
    """A task's samples and where they came from.

    Attributes:
        samples: the problems, in dataset order (after ``limit``).
        source: ``"hub:ID (config C, split S, revision R)"`` or the local file's path.
        fingerprint: sha256 of the file, or of the hub rows as loaded.
        rows: rows in the source (before ``limit``).
        skipped: rows left out with ``skip_bad_rows``: (1-based row, the problem).
    """

    samples: list[Sample]
    source: str
    fingerprint: str
    rows: int
    skipped: tuple[tuple[int, str], ...] = ()


def cache_dir() -> Path:
    """``$EVALS_CACHE_DIR``, else ``~/.cache/evals``."""
    root = os.environ.get("EVALS_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "evals"


def _builder(name: str) -> str | None:
    """The ``datasets`` packaged builder for a file name (``.gz`` allowed), or None."""
    return _FORMATS.get(PurePosixPath(name.lower().removesuffix(".gz")).suffix)


def _format_of(path: Path) -> str:
    fmt = _builder(path.name)
    if fmt is None or (path.name.lower().endswith(".gz") and fmt == "parquet"):
        raise DataError(
            f"--data {path}: unsupported file type {path.suffix!r}. "
            "Use a .jsonl, .json, .parquet or .csv file (optionally .gz)."
        )
    return fmt


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    try:
        with path.open("rb") as fh:
            return [orjson.loads(line) for line in fh if line.strip()]
    except (OSError, orjson.JSONDecodeError):
        return None


def _write_cache(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as fh:
            for row in rows:
                fh.write(orjson.dumps(row, default=str) + b"\n")
        tmp.replace(path)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _check_json_lines(path: Path) -> None:
    """A JSON-lines file's first undecodable line, by its 1-based number, before
    ``datasets`` reports it as a byte position."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if number == 1 and line.lstrip().startswith(b"["):
                return  # a JSON array, not JSON lines: datasets reads it whole
            if not line.strip():
                continue
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DataError(
                    f"--data {path}: line {number} is not valid JSON ({exc.msg}). Fix or remove "
                    "that line: a JSON-lines file holds one JSON object per line."
                ) from None


def _load_local(path: Path) -> list[dict[str, Any]]:
    fmt = _format_of(path)
    if fmt == "json":
        _check_json_lines(path)
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many types for a bad file
        raise DataError(
            f"--data {path}: could not read it as {fmt}: {type(exc).__name__}: {exc}. "
            "Check that the file is valid (one JSON object per line for jsonl)."
        ) from exc
    return [dict(row) for row in ds]


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached, or None. Checked before ``datasets`` is called, which
    would otherwise retry for half a minute and print each retry."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return None  # offline mode: datasets reads its own cache, let it try
    from urllib.parse import urlsplit

    from evals.providers import proxy_for

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if proxy_for(endpoint) is not None:
        return None  # only the proxy can tell; datasets goes through it
    parts = urlsplit(endpoint)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    import socket

    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc})"


def _load_hub(task: Task) -> list[dict[str, Any]]:
    spec = task.dataset
    unreachable = _hub_unreachable()
    if unreachable is not None:
        raise DataError(
            f"Could not load the dataset of task {task.name!r} ({spec.describe()}): the "
            f"Hugging Face Hub is unreachable, {unreachable}. Pass a local copy instead: "
            f"--data {task.name}=PATH (jsonl, parquet or csv)."
        )
    import datasets

    datasets.disable_progress_bars()
    token = os.environ.get("HF_TOKEN") or None
    try:
        if spec.data_files:
            at = f"@{spec.revision}" if spec.revision else ""
            files = [f"hf://datasets/{spec.hub_id}{at}/{name}" for name in spec.data_files]
            ds = datasets.load_dataset(_builder_for(spec.data_files[0]), data_files=files,
                                       split="train", token=token)
        else:
            ds = datasets.load_dataset(
                spec.hub_id, spec.config, split=spec.split, revision=spec.revision,
                token=token,
            )
    except Exception as exc:  # offline, gated, renamed: all end here
        text = f"{type(exc).__name__}: {str(exc).strip().rstrip('.')}"
        lowered = text.lower()
        refused = any(word in lowered for word in (
            "gated", "401", "403", "unauthorized", "forbidden", "authenticated",
            "restricted", "access to dataset"))
        local = (f"If you have your own copy, pass it instead: --data {task.name}=PATH "
                 "(jsonl, parquet or csv).")
        if refused or spec.gated:
            # One message with the two steps that fix it, whatever datasets said.
            page = f"https://huggingface.co/datasets/{spec.hub_id}"
            token_state = (
                "HF_TOKEN is set, so the hub refused that token: check that its account "
                "has been granted access on that page"
                if token else "HF_TOKEN is not set"
            )
            lead = ("the Hugging Face Hub refused access" if refused
                    else "it failed to load, and it is gated")
            raise DataError(
                f"Could not load the dataset of task {task.name!r} ({spec.describe()}): "
                f"{lead} ({text[:200]}). {spec.hub_id} is a gated dataset: open {page}, log "
                "in and accept its terms to request access; then create a read token at "
                "https://huggingface.co/settings/tokens and set it in the environment "
                f"variable HF_TOKEN ({token_state}). {local}"
            ) from exc
        raise DataError(
            f"Could not load the dataset of task {task.name!r} from the Hugging Face Hub "
            f"({spec.describe()}): {text[:300]}. If you are offline or have your own "
            f"copy, pass a local file: --data {task.name}=PATH (jsonl, parquet or csv)."
        ) from exc
    return [dict(row) for row in ds]


def _builder_for(name: str) -> str:
    """The ``datasets`` packaged builder for a hub data file, by its extension."""
    builder = _builder(name)
    if builder is None:
        raise DataError(f"Cannot tell how to read the hub data file {name!r}: expected .jsonl, "
                        ".json, .parquet or .csv.")
    return builder


def _rows_for(task: Task, data: Path | None) -> tuple[list[dict[str, Any]], str, str]:
    path = data if data is not None else task.default_data
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(
                f"Data file for task {task.name!r} not found: {path}. "
                f"Pass an existing file with --data {task.name}=PATH."
            )
        fingerprint = _sha256(path)
        cached = cache_dir() / "data" / f"{fingerprint}.jsonl"
        rows = _read_cache(cached)
        if rows is None:
            rows = _load_local(path)
            _write_cache(cached, rows)
        return rows, str(path.resolve()), fingerprint
    spec = task.dataset
    key = hashlib.sha256(
        orjson.dumps([spec.hub_id, spec.config, spec.split, spec.revision,
                      list(spec.data_files)])
    ).hexdigest()
    cached = cache_dir() / "hub" / f"{key}.jsonl"
    rows = _read_cache(cached)
    if rows is None:
        rows = _load_hub(task)
        _write_cache(cached, rows)
    fingerprint = hashlib.sha256(
        b"".join(orjson.dumps(r, default=str, option=orjson.OPT_SORT_KEYS) for r in rows)
    ).hexdigest()
    return rows, f"hub:{spec.describe()}", fingerprint


def _row_list(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:_MAX_REPORTED])
    more = f" and {len(numbers) - _MAX_REPORTED} more" if len(numbers) > _MAX_REPORTED else ""
    return f"row{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _samples(task: Task, rows: list[dict[str, Any]], source: str, skip_bad_rows: bool
             ) -> tuple[list[Sample], list[tuple[int, str]]]:
    """The rows as samples, and the rows that could not be read (1-based, problem).

    Raises:
        DataError: some rows are malformed and ``skip_bad_rows`` is off: one line per
            distinct problem, with how many rows have it and which.
    """
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    samples: list[Sample] = []
    for index, row in enumerate(rows):
        try:
            sample = task.to_sample(row, index)
        except (KeyError, ValueError, TypeError, DataError) as exc:  # one bad row, listed
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            problems.append((index + 1, f"{type(exc).__name__}: {message}"))
            continue
        if sample.id in seen:
            problems.append((index + 1, f"id {sample.id!r} repeats row {seen[sample.id] + 1}"))
            continue
        seen[sample.id] = index
        samples.append(sample)
    if problems and not skip_bad_rows:
        by_problem: dict[str, list[int]] = {}
        for number, problem in problems:
            by_problem.setdefault(problem, []).append(number)
        lines = [f"  {len(numbers)} x {problem} ({_row_list(numbers)})"
                 for problem, numbers in by_problem.items()]
        raise DataError(
            f"{len(problems)} of {len(rows)} row(s) in {source} cannot be read by task "
            f"{task.name!r}. Fix those rows, check that the file has the fields this task "
            "expects, or leave them out with --skip-bad-rows:\n" + "\n".join(lines)
        )
    return samples, problems


def load_task_data(task: Task, data: Path | None = None, limit: int | None = None,
                   skip_bad_rows: bool = False) -> LoadedData:
    """Load a task's samples.

    Args:
        task: the task.
        data: a local file replacing the task's hub source (``--data``).
        limit: keep only the first ``limit`` problems (``--limit``); ``None`` keeps all.
        skip_bad_rows: leave out rows the task cannot read (listed in ``skipped``)
            instead of refusing the file.

    Raises:
        DataError: the source cannot be read (offline without ``--data``, gated without a
            token, a bad file), or a row lacks a field the task needs (every bad row is
            listed by position, nothing is half-loaded).
    """
    rows, source, fingerprint = _rows_for(task, data)
    samples, skipped = _samples(task, rows, source, skip_bad_rows)
    if task.keep is not None:
        samples = [s for s in samples if task.keep(s)]
    if limit is not None:
        samples = samples[:limit]
    return LoadedData(samples=samples, source=source, fingerprint=fingerprint, rows=len(rows),
                      skipped=tuple(skipped))
