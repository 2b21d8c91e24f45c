"""The run folder: the per-attempt table as it is produced, then its final forms.

Rows are appended to ``attempts.partial.jsonl`` as attempts finish (nothing is held in
memory), then ``finalize`` turns it into ``samples.parquet`` and ``samples.jsonl`` in
bounded batches, computes ``summary.csv``/``summary.md`` from the stored table (its slim
columns, read back a batch at a time: no response text is held) and completes
``manifest.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from evals.records import OUTCOMES

if TYPE_CHECKING:
    from evals.verdicts import PublishedContext

__all__ = ["COLUMNS", "JSON_COLUMNS", "AttemptWriter", "finalize", "read_attempts", "write_manifest"]

#: The per-attempt table's columns, in order, with their Arrow types.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("task", "string"),
    ("sample_id", "string"),
    ("repeat", "int64"),
    ("seed", "int64"),
    ("model", "string"),
    ("outcome", "string"),
    ("correct", "bool"),
    ("extracted", "string"),
    ("reason", "string"),
    ("details", "string"),
    ("target", "string"),
    ("response", "string"),
    ("reasoning", "string"),
    ("finish_reason", "string"),
    ("prompt_tokens", "int64"),
    ("completion_tokens", "int64"),
    ("reasoning_tokens", "int64"),
    ("cost", "float64"),
    ("latency_s", "float64"),
    ("ttft_s", "float64"),
    ("retries", "int64"),
    ("cached", "bool"),
    ("error", "string"),
    ("simulated", "bool"),
    ("endpoint", "string"),
    ("metadata", "string"),
    ("messages", "string"),
)

#: Columns holding JSON text in the Parquet table, written as JSON values (not strings of
#: JSON) in ``samples.jsonl``.
JSON_COLUMNS = ("details", "metadata", "messages")


class AttemptWriter:
    """Appends per-attempt rows (dicts with the ``COLUMNS`` keys) to a jsonl file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] = path.open("wb")
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(row) + b"\n")
        self.rows += 1

    def close(self) -> None:
        self._fh.close()


def _schema() -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
             "bool": pa.bool_()}
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS])


_SUMMARY_FIELDS = ("task", "sample_id", "repeat", "outcome", "correct", "extracted",
                   "prompt_tokens", "completion_tokens", "reasoning_tokens", "latency_s",
                   "ttft_s", "cost", "retries", "cached", "metadata", "simulated")


#: Bytes of partial rows converted at a time (whole rows: a chunk ends at a line's end).
_CHUNK_BYTES = 8 << 20


def _chunks(path: Path, size: int = _CHUNK_BYTES) -> Iterator[bytes]:
    """``path`` in chunks of about ``size`` bytes, each ending at the end of a line."""
    with path.open("rb") as fh:
        while block := fh.read(size):
            if not block.endswith(b"\n"):
                block += fh.readline()
            yield block


def _write_table(partial: Path, out_dir: Path) -> None:
    """Write samples.parquet and samples.jsonl from the partial rows, then remove them.

    The jsonl is converted by Arrow's C++ JSON parser (fast, and without the pandas
    import that Arrow's Python-object path triggers) one chunk of whole rows at a time, so
    memory stays bounded: Arrow's own streaming reader over the whole file reads ahead and
    grew with the file (about 1 MB per MB of rows).
    """
    import pyarrow as pa
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    schema = _schema()
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    tmp = out_dir / "samples.parquet.tmp"
    jsonl = out_dir / "samples.jsonl"
    jsonl_tmp = jsonl.with_suffix(".jsonl.tmp")
    with pq.ParquetWriter(tmp, schema) as writer, jsonl_tmp.open("wb") as nested:
        written = False
        for chunk in _chunks(partial):
            if not chunk.strip():
                continue
            _write_nested(chunk, nested)
            table = pajson.read_json(
                pa.BufferReader(chunk),
                read_options=pajson.ReadOptions(block_size=len(chunk) + 1, use_threads=False),
                parse_options=parse,
            ).select(schema.names)
            del chunk
            if not table.schema.equals(schema):  # (cast imports pyarrow.compute: 0.15 s)
                table = table.cast(schema)
            writer.write_table(table)
            written = True
        if not written:
            writer.write_table(schema.empty_table())
    os.replace(tmp, out_dir / "samples.parquet")
    os.replace(jsonl_tmp, jsonl)
    partial.unlink()


class _Tally:
    """What the manifest counts, taken from the rows as the summary reads them."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.rows = 0
        self.simulated = False

    def watch(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.rows += 1
            if row["outcome"] in self.counts:
                self.counts[row["outcome"]] += 1
            self.simulated = self.simulated or bool(row["simulated"])
            yield row


def _stored_rows(table: Path, batch_rows: int = 8192) -> Iterator[dict[str, Any]]:
    """The slim columns the summary needs (no response texts), from the stored table,
    ``batch_rows`` at a time."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(table) as stored:
        for batch in stored.iter_batches(batch_size=batch_rows, columns=list(_SUMMARY_FIELDS)):
            yield from batch.to_pylist()


def _write_nested(chunk: bytes, dst: IO[bytes]) -> None:
    """One chunk of partial rows as ``samples.jsonl`` lines: the JSON columns as nested
    values, not strings of JSON (written in the pass that writes the Parquet table)."""
    for line in chunk.splitlines():
        if not line.strip():
            continue
        row = orjson.loads(line)
        for column in JSON_COLUMNS:
            if isinstance(row.get(column), str):
                row[column] = orjson.loads(row[column])
        dst.write(orjson.dumps(row) + b"\n")


def read_attempts(run_dir: Path, columns: list[str] | None = None) -> Any:
    """The per-attempt table of a finished run as a pandas DataFrame."""
    import pandas as pd

    return pd.read_parquet(run_dir / "samples.parquet", columns=columns)


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, out_dir / "manifest.json")


def finalize(
    out_dir: Path,
    partial: Path,
    manifest: dict[str, Any],
    subsets: dict[str, tuple[str, ...]],
    pass_k: frozenset[str] = frozenset(),
    published: PublishedContext | None = None,
) -> list[dict[str, Any]]:
    """Write the table, the summary and the manifest; return the summary rows.

    ``pass_k`` names the tasks whose summary also reports pass@k; ``published`` puts the
    published scores of the run's model beside each task's (``evals.verdicts``).
    """
    from evals.metrics import summarize
    from evals.report import write_summary

    _write_table(partial, out_dir)
    tally = _Tally()
    summary = summarize(tally.watch(_stored_rows(out_dir / "samples.parquet")), subsets,
                        pass_k, published.wanted() if published else None)
    comparisons = published.attach(summary) if published else []
    for row in summary:
        row.pop("measured", None)
    manifest["published_comparison"] = comparisons
    manifest["simulated"] = tally.simulated or bool(manifest.get("simulated"))
    manifest["counts"] = tally.counts
    manifest["attempts"] = tally.rows
    write_summary(out_dir, summary, manifest, comparisons)
    write_manifest(out_dir, manifest)
    return summary
