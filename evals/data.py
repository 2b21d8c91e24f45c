"""Loading a task's rows through ``datasets``, from the hub or a local file.

Both paths go through ``datasets.load_dataset``: a hub id (config, split, revision, the
user's token for gated sets) or a local jsonl/json/parquet/csv file (``--data PATH``).
Once a source has been loaded, its rows are kept in a cache file (JSON lines) keyed by what
identifies the source exactly (hub id + config + split + revision, or the file's sha256), so
reruns and offline machines do not pay ``datasets``' import and preparation again. The
fingerprint of every load is recorded in the run manifest.

Memory stays bounded whatever the size of the source: the cache is written from
``datasets``' Arrow files batch by batch and read back row by row, and a task's bulky fields
(``Task.lazy_fields``, e.g. LiveCodeBench's private tests, gigabytes for a release) are not
kept: ``to_sample`` gets a ``LazyField`` for each, a reference to the row in the cache file
whose ``load()`` reads the value back when it is needed (when a problem is graded).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from evals.errors import DataError
from evals.records import Sample
from evals.registry import Task

__all__ = ["LAZY_MIN_BYTES", "LazyField", "LoadedData", "cache_dir", "load_task_data"]

_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_MAX_REPORTED = 5
#: Version of the row cache's layout (part of its file names: older caches are ignored).
_CACHE_FORMAT = 2
#: A lazy field whose value is smaller than this stays in the row (it costs nothing to keep).
LAZY_MIN_BYTES = 4096


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


@dataclass(frozen=True, slots=True)
class LazyField:
    """A bulky field of a dataset row, left on disk: ``load()`` reads it back.

    The loader gives one to ``Task.to_sample`` in place of each of the task's
    ``lazy_fields`` whose value is at least ``LAZY_MIN_BYTES`` long (smaller values stay in
    the row as they are), so a task can keep the reference and read the value when it
    needs it, e.g. LiveCodeBench's private tests when a problem is graded.

    Attributes:
        path: the row cache file (JSON lines) the row is in.
        offset: where the row's line starts in ``path``.
        length: the line's length in bytes.
        name: the field.
        size: the value's length in bytes (UTF-8 for a string, else its JSON).
        digest: sha256 (hex) of those bytes: identifies the value without reading it.

    Example:
        >>> field.load()  # doctest: +SKIP
        'eJxrYJnKxgABPUzRsVP0ABkLAyg='
    """

    path: Path
    offset: int
    length: int
    name: str
    size: int
    digest: str

    def load(self) -> Any:
        """The field's value, read from the row cache (the whole row is read and parsed;
        nothing is kept).

        Raises:
            DataError: the cache file was removed or changed since the data loaded.
        """
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                line = fh.read(self.length)
            return orjson.loads(line)[self.name]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"Cannot read field {self.name!r} back from the row cache {self.path} "
                f"(offset {self.offset}): {type(exc).__name__}: {exc}. The cache was removed "
                "or changed while the run was using it; rerun the command to reload the data."
            ) from None


def _lazy(path: Path, offset: int, length: int, name: str, value: Any) -> LazyField:
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else orjson.dumps(
        value, default=str)
    return LazyField(path, offset, length, name, len(raw), hashlib.sha256(raw).hexdigest())


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


@dataclass(frozen=True, slots=True)
class _RowFile:
    """A source's rows in the cache: one JSON object per line, read back lazily."""

    path: Path
    rows: int
    fingerprint: str

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.read()

    def read(self, lazy: frozenset[str] = frozenset()) -> Iterator[dict[str, Any]]:
        """The rows in order; each field named in ``lazy`` whose value has at least
        ``LAZY_MIN_BYTES`` bytes is a ``LazyField`` instead of its value."""
        offset = 0
        with self.path.open("rb") as fh:
            for line in fh:
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                row = orjson.loads(line)
                if lazy and len(line) >= LAZY_MIN_BYTES:
                    for name in lazy.intersection(row):
                        value = row[name]
                        small = isinstance(value, str) and len(value) < LAZY_MIN_BYTES
                        if value is not None and not small:
                            row[name] = _lazy(self.path, start, len(line), name, value)
                yield row


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".meta.json")


def _open_cache(path: Path) -> _RowFile | None:
    """The cache at ``path`` if it is complete (its meta file is written last)."""
    try:
        meta = orjson.loads(_meta_path(path).read_bytes())
        if meta.get("format") != _CACHE_FORMAT or path.stat().st_size != meta["bytes"]:
            return None
        return _RowFile(path, int(meta["rows"]), str(meta["fingerprint"]))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


_TEMPORARY: list[Path] = []


def _remove_temporary() -> None:
    for path in _TEMPORARY:
        for item in (path, _meta_path(path)):
            item.unlink(missing_ok=True)


def _write_cache(path: Path, batches: Iterator[list[dict[str, Any]]],
                 fingerprint: str | None) -> _RowFile:
    """Write the rows to the cache at ``path`` batch by batch, and return it.

    Rows are written with sorted keys; ``fingerprint`` ``None`` means the sha256 of the rows
    so written (without newlines), which is how hub sources are fingerprinted. When the cache
    folder cannot be written, a temporary file (removed at exit) stands in for it: the rows
    are read back from a file either way.

    Raises:
        DataError: neither the cache folder nor the temporary folder can be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = path
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        handle = tmp.open("wb")
    except OSError as exc:
        try:
            fd, name = tempfile.mkstemp(prefix="evals-rows-", suffix=".jsonl")
        except OSError:
            raise DataError(
                f"Cannot write the dataset row cache in {path.parent} ({exc.strerror or exc}) "
                "nor in the temporary folder. Set EVALS_CACHE_DIR to a folder you can "
                "write to."
            ) from None
        target = tmp = Path(name)
        if not _TEMPORARY:
            atexit.register(_remove_temporary)
        _TEMPORARY.append(target)
        handle = os.fdopen(fd, "wb")
    digest = hashlib.sha256()
    rows = 0
    with handle as fh:
        for batch in batches:
            for row in batch:
                line = orjson.dumps(row, default=str, option=orjson.OPT_SORT_KEYS)
                digest.update(line)
                fh.write(line + b"\n")
                rows += 1
    if tmp != target:
        tmp.replace(target)
    cache = _RowFile(target, rows, fingerprint or digest.hexdigest())
    meta = {"format": _CACHE_FORMAT, "rows": rows, "fingerprint": cache.fingerprint,
            "bytes": target.stat().st_size}
    meta_tmp = _meta_path(target).with_suffix(f".tmp{os.getpid()}")
    try:
        meta_tmp.write_bytes(orjson.dumps(meta))
        meta_tmp.replace(_meta_path(target))
    except OSError:
        pass  # without its meta file the cache is rebuilt next time: it only costs time
    return cache


def _batches(ds: Any) -> Iterator[list[dict[str, Any]]]:
    """A ``datasets.Dataset``'s rows, a record batch at a time.

    Read from its Arrow files with ordinary reads rather than through the memory map
    ``datasets`` iterates over (every page of which would stay resident: a release's
    gigabytes would count in the process's memory); a dataset without cache files (in
    memory) is iterated by ``datasets`` itself.
    """
    import pyarrow as pa

    files = [f["filename"] for f in (ds.cache_files or [])]
    if getattr(ds, "_indices", None) is not None:
        files = []  # a selection of the rows: only datasets knows which
    try:
        if files:
            with pa.OSFile(files[0], "rb") as source:
                pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError):
        files = []  # not the stream format datasets writes: let datasets read it
    if files:
        for name in files:
            with pa.OSFile(name, "rb") as source:
                for batch in pa.ipc.open_stream(source):
                    yield batch.to_pylist()
        return
    for batch in ds.iter(batch_size=64):
        names = list(batch)
        yield [dict(zip(names, values, strict=True))
               for values in zip(*(batch[n] for n in names), strict=True)]


def _check_json_lines(path: Path) -> None:
    """A JSON-lines file's first undecodable line, by its 1-based number (``datasets``
    reports only a byte position). Called once ``datasets`` has failed on the file, so a
    good file is read once."""
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


def _load_local(path: Path) -> Any:
    fmt = _format_of(path)
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many types for a bad file
        if fmt == "json":
            _check_json_lines(path)  # names the line, when a line is the problem
        raise DataError(
            f"--data {path}: could not read it as {fmt}: {type(exc).__name__}: {exc}. "
            "Check that the file is valid (one JSON object per line for jsonl)."
        ) from exc
    return ds


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


def _load_hub(task: Task) -> Any:
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
    return ds


def _builder_for(name: str) -> str:
    """The ``datasets`` packaged builder for a hub data file, by its extension."""
    builder = _builder(name)
    if builder is None:
        raise DataError(f"Cannot tell how to read the hub data file {name!r}: expected .jsonl, "
                        ".json, .parquet or .csv.")
    return builder


def _rows_for(task: Task, data: Path | None) -> tuple[_RowFile, str, str]:
    """The source's rows (in the cache, loading them first if they are not there yet), its
    description and its fingerprint."""
    path = data if data is not None else task.default_data
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(
                f"Data file for task {task.name!r} not found: {path}. "
                f"Pass an existing file with --data {task.name}=PATH."
            )
        fingerprint = _sha256(path)
        cached = cache_dir() / "data" / f"{fingerprint}.v{_CACHE_FORMAT}.jsonl"
        rows = _open_cache(cached)
        if rows is None:
            rows = _write_cache(cached, _batches(_load_local(path)), fingerprint)
        return rows, str(path.resolve()), fingerprint
    spec = task.dataset
    key = hashlib.sha256(
        orjson.dumps([spec.hub_id, spec.config, spec.split, spec.revision,
                      list(spec.data_files)])
    ).hexdigest()
    cached = cache_dir() / "hub" / f"{key}.v{_CACHE_FORMAT}.jsonl"
    rows = _open_cache(cached)
    if rows is None:
        rows = _write_cache(cached, _batches(_load_hub(task)), None)
    return rows, f"hub:{spec.describe()}", rows.fingerprint


def _row_list(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:_MAX_REPORTED])
    more = f" and {len(numbers) - _MAX_REPORTED} more" if len(numbers) > _MAX_REPORTED else ""
    return f"row{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _samples(task: Task, rows: _RowFile, source: str, skip_bad_rows: bool
             ) -> tuple[list[Sample], list[tuple[int, str]]]:
    """The rows as samples, and the rows that could not be read (1-based, problem).

    Rows are read one at a time and dropped once their sample is made; the task's
    ``lazy_fields`` reach ``to_sample`` as ``LazyField`` references.

    Raises:
        DataError: some rows are malformed and ``skip_bad_rows`` is off: one line per
            distinct problem, with how many rows have it and which.
    """
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    samples: list[Sample] = []
    for index, row in enumerate(rows.read(frozenset(task.lazy_fields))):
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
            f"{len(problems)} of {rows.rows} row(s) in {source} cannot be read by task "
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
    return LoadedData(samples=samples, source=source, fingerprint=fingerprint, rows=rows.rows,
                      skipped=tuple(skipped))
