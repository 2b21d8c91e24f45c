"""Published scores (model cards, leaderboards) and how a run compares with them.

File format. ``reference_data/published.csv`` ships with the package; ``--published PATH``
adds user rows. Read with :mod:`csv` (quote values holding commas); the header names the
columns, in any order; model, benchmark, score, metric and source are required::

    model,benchmark,score,metric,n,temperature,top_p,max_tokens,since,until,prompt,source,source_date,notes
    magistral-small-2509,aime2025,77.34,pass@1,,0.7,0.95,131072,,,,https://huggingface.co/...,2025-09,card: ...

``score`` is in points (0-100); ``metric`` is ``pass@K`` (pass@1 = mean over the n samples)
or ``maj@K`` (majority vote; DeepSeek's ``cons@64`` is written ``maj@64``). Settings the source
does not state stay empty and are never reported as differences. ``since``/``until`` are the
LiveCodeBench contest window (YYYY-MM-DD, both included). ``notes`` starts with the kind of
source: ``card:``, ``leaderboard:`` or ``secondary:``.

Alias rule. :func:`canonical_model` lowercases the name and looks it up in
``reference_data/aliases.csv`` (``alias,model``), then again after stripping a ``:thinking``
or ``:free`` suffix and then one leading ``org/``. Caveat: ``magistral-small-latest``,
``magistral-medium-latest`` and ``deepseek-reasoner`` move when the provider ships a new
version; the table maps them to the version current when it was written (2509, R1), so
record the dated name in run manifests.

Verdict rule. A run's interval ``[ci_low, ci_high]`` (fractions) is *consistent* with a
score when ``100*ci_low <= score <= 100*ci_high`` (edges included, 1e-9 point tolerance),
*below* when it lies wholly under the score, *above* when wholly over. A run lacking the
metric (``maj@64`` with n 8) is *not comparable*. Stated settings the run does not match are
listed beside the verdict: they make it approximate, not wrong.
"""

from __future__ import annotations

import csv
import datetime
import functools
import importlib.resources
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.errors import ConfigError, DataError

__all__ = ["Comparison", "PublishedScore", "PublishedTable", "RunSettings", "best_match",
           "canonical_model", "compare", "load_published", "verdict"]

COLUMNS = ("model", "benchmark", "score", "metric", "n", "temperature", "top_p", "max_tokens",
           "since", "until", "prompt", "source", "source_date", "notes")
_REQUIRED = ("model", "benchmark", "score", "metric", "source")
_METRIC = re.compile(r"(pass|maj)@([1-9][0-9]*)")
_DATES = (("since", "%Y-%m-%d", "YYYY-MM-DD, e.g. 2024-08-01"),
          ("until", "%Y-%m-%d", "YYYY-MM-DD, e.g. 2025-01-31"), ("source_date", "%Y-%m", "YYYY-MM"))
_EPS = 1e-9
_Fail = Callable[[str, str], DataError]  # builds the DataError for the current row


@dataclass(frozen=True, slots=True)
class PublishedScore:
    """One published number, with the settings its source states (None when not stated)."""

    model: str
    benchmark: str
    score: float
    metric: str
    n: int | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    since: str | None
    until: str | None
    prompt: str | None
    source: str
    source_date: str
    notes: str
    origin: str


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What a run used for one task; None means not set (server default, no window)."""

    n: int
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    prompt: str | None
    since: str | None
    until: str | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """A run's ``published.metric`` against the number: measured/CI as fractions, ``delta`` in
    points (``100*measured - published.score``); all four None when the run lacks the metric."""

    published: PublishedScore
    measured: float | None
    ci_low: float | None
    ci_high: float | None
    delta: float | None
    verdict: str
    settings_differ: tuple[str, ...]


@functools.cache
def _aliases() -> dict[str, str]:
    text = importlib.resources.files("evals").joinpath("reference_data/aliases.csv")
    rows = csv.DictReader(io.StringIO(text.read_text(encoding="utf-8"), newline=""))
    return {row["alias"].strip().lower(): row["model"].strip() for row in rows}


def canonical_model(name: str) -> str:
    """Return the canonical lowercase model name (see the module docstring).

    ``"mistralai/Magistral-Small-2509"`` and ``"magistral-small-latest"`` give
    ``"magistral-small-2509"``, ``"org/Foo-7B:free"`` gives ``"foo-7b"``; never raises.
    """
    aliases, key = _aliases(), name.strip().lower()
    bare = key.removesuffix(":thinking").removesuffix(":free")
    for candidate in (key, bare, bare.split("/", 1)[-1]):
        if candidate in aliases:
            return aliases[candidate]
    return bare.split("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class PublishedTable:
    """Published scores in file order: the shipped file first, then each ``--published`` file."""

    rows: tuple[PublishedScore, ...]

    def lookup(self, model: str, benchmark: str) -> list[PublishedScore]:
        """Rows for ``canonical_model(model)`` on ``benchmark`` (exact task name), in file order."""
        want = canonical_model(model)
        return [r for r in self.rows if r.model == want and r.benchmark == benchmark]


def load_published(extra: Sequence[Path] = ()) -> PublishedTable:
    """Load the shipped published scores, then each file in ``extra``.

    Args:
        extra: user CSV files (module docstring); their header needs at least model,
            benchmark, score, metric and source, and an unknown column fails (typos).

    Raises:
        ConfigError: a file in ``extra`` does not exist.
        DataError: a row is malformed; the message names the file, the 1-based line and the fix.
    """
    shipped = importlib.resources.files("evals").joinpath("reference_data/published.csv")
    rows = _parse(shipped.read_text(encoding="utf-8"), "evals/reference_data/published.csv")
    for path in extra:
        if not path.is_file():
            raise ConfigError(f"--published {path}: no such file. Check the path, or drop the "
                              "flag to compare with the shipped scores only.")
        rows.extend(_parse(path.read_text(encoding="utf-8-sig"), str(path)))
    return PublishedTable(tuple(rows))


def _parse(text: str, name: str) -> list[PublishedScore]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in _REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise DataError(f"{name}:1: bad header {','.join(header)!r} (missing {missing}, unknown "
                        f"{unknown}). Use the columns {','.join(COLUMNS)}; model, benchmark, "
                        "score, metric and source are required.")
    out = []
    for fields in reader:
        where = f"{name}:{reader.line_num}"
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise DataError(f"{where}: {len(fields)} fields but the header has {len(header)}. "
                            "Quote values that contain commas (\"a, b\").")
        row = {c: "" for c in COLUMNS} | {h: f.strip() for h, f in zip(header, fields, strict=True)}
        out.append(_row(row, where))
    return out


def _row(row: dict[str, str], where: str) -> PublishedScore:
    def fail(problem: str, fix: str) -> DataError:
        return DataError(f"{where}: {problem}. {fix}")

    if empty := [c for c in ("model", "benchmark", "source") if not row[c]]:
        raise fail(f"{', '.join(empty)} empty", "Fill it in (source: a URL or owner/repo:path).")
    score = _num(row["score"] or "empty", "score", float, 0, 100, fail, "points like 77.34")
    assert score is not None  # _num returns None only for empty text
    metric = row["metric"]
    m = _METRIC.fullmatch(metric)
    if m is None:
        raise fail(f"metric {metric!r} is not pass@K or maj@K",
                   "Use e.g. pass@1 or maj@64 (write cons@64 as maj@64).")
    n = _num(row["n"], "n", int, 1, math.inf, fail)
    max_tokens = _num(row["max_tokens"], "max_tokens", int, 1, math.inf, fail)
    if n is not None and n < int(m.group(2)):
        raise fail(f"n {n:g} is smaller than the k of {metric}", "Fix n or the metric.")
    for col, fmt, shape in _DATES:
        if row[col] and _date(row[col], fmt) != row[col]:
            raise fail(f"{col} {row[col]!r} is not a date", f"Write {shape}.")
    if row["since"] and row["until"] and row["since"] > row["until"]:
        raise fail(f"since {row['since']} is after until {row['until']}", "Swap them.")
    return PublishedScore(
        model=canonical_model(row["model"]), benchmark=row["benchmark"], score=score,
        metric=metric, n=None if n is None else int(n),
        temperature=_num(row["temperature"], "temperature", float, 0.0, 2.0, fail),
        top_p=_num(row["top_p"], "top_p", float, 0.0, 1.0, fail),
        max_tokens=None if max_tokens is None else int(max_tokens), since=row["since"] or None,
        until=row["until"] or None, prompt=row["prompt"] or None, source=row["source"],
        source_date=row["source_date"], notes=row["notes"], origin=where)


def _date(text: str, fmt: str) -> str | None:
    try:  # formatting back rejects unpadded forms such as 2024-8-1
        return datetime.datetime.strptime(text, fmt).strftime(fmt)
    except ValueError:
        return None


def _num(text: str, col: str, kind: type[float], lo: float, hi: float, fail: _Fail,
         like: str = "") -> float | None:
    """Parse an optional number; ``like`` (the fix) is given for required columns only."""
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = math.nan
    if not lo <= value <= hi:
        what = "a positive integer" if kind is int else f"a number in [{lo:g}, {hi:g}]"
        fix = like or f"{64 if kind is int else 0.6}, or leave it empty if the source omits it"
        raise fail(f"{col} {text!r} is not {what}", f"Write {col} as {fix}.")
    return value


def verdict(ci_low: float, ci_high: float, published_points: float) -> str:
    """``"consistent"``, ``"below"`` or ``"above"``: where the run's interval lies.

    ``ci_low``/``ci_high`` are fractions, ``published_points`` is in points. An edge exactly at
    the number (within 1e-9 points) counts as consistent: ``verdict(0.7734, 0.8, 77.34)`` is
    ``"consistent"``, ``verdict(0.7735, 0.8, 77.34)`` is ``"above"``.
    """
    if ci_high * 100 + _EPS < published_points:
        return "below"
    if ci_low * 100 - _EPS > published_points:
        return "above"
    return "consistent"


def compare(published: PublishedScore, measured: Mapping[str, tuple[float, float, float]],
            run: RunSettings | None) -> Comparison:
    """Compare a run with one published score.

    Args:
        published: the row to compare with.
        measured: metric name (``"pass@1"``, ``"maj@64"``...) to ``(value, ci_low, ci_high)``
            as fractions. Lacking ``published.metric`` gives ``"not comparable"``, and the
            first ``settings_differ`` entry says why.
        run: the run's settings; None lists no setting differences.
    """
    differ = _differences(published, run) if run is not None else []
    got, k = measured.get(published.metric), int(published.metric.split("@")[1])
    if got is None:
        why = (f"{published.metric} needs n >= {k} (run n {run.n})" if run is not None and run.n < k
               else f"run has no {published.metric} (has {', '.join(sorted(measured))})")
        return Comparison(published, None, None, None, None, "not comparable", (why, *differ))
    value, lo, hi = got
    return Comparison(published, value, lo, hi, 100 * value - published.score,
                      verdict(lo, hi, published.score), tuple(differ))


def _differences(pub: PublishedScore, run: RunSettings) -> list[str]:
    out = []
    if pub.n is not None and pub.n > run.n:
        out.append(f"n {run.n} (published {pub.n})")
    pairs = (("temperature", run.temperature, pub.temperature), ("top_p", run.top_p, pub.top_p),
             ("max_tokens", run.max_tokens, pub.max_tokens), ("prompt", run.prompt, pub.prompt))
    for name, mine, theirs in pairs:
        if theirs is not None and mine != theirs:
            shown = "not set" if mine is None else f"{mine:g}" if isinstance(mine, float) else mine
            want = f"{theirs:g}" if isinstance(theirs, float) else theirs
            out.append(f"{name} {shown} (published {want})")
    window = f"{run.since or 'start'}..{run.until or 'end'}"
    if pub.since is None and pub.until is None:
        if pub.benchmark == "livecodebench":
            out.append(f"window not stated by the source (run: {window})")
    elif (pub.since, pub.until) != (run.since, run.until):
        out.append(f"window {window} (published {pub.since or 'start'}..{pub.until or 'end'})")
    return out


def best_match(comparisons: Sequence[Comparison]) -> Comparison | None:
    """The comparison for a summary row: comparable first, then fewest setting differences,
    then ``card:`` rows, then file order. None when ``comparisons`` is empty."""
    ranked = sorted(enumerate(comparisons), key=lambda ic: (
        ic[1].verdict == "not comparable", len(ic[1].settings_differ),
        not ic[1].published.notes.startswith("card:"), ic[0]))
    return ranked[0][1] if ranked else None
