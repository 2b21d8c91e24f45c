"""The published comparison of a run: each task's measured score beside the published ones.

``evals.published`` holds the published scores and the verdict rule; this module puts
them on a run's summary. Every task row gets the columns ``published`` (points),
``published_source``, ``delta`` (points), ``verdict`` and ``settings_differ``, from the
published score that matches the run best; when there is none the columns say so
(``verdict`` "no published score"). The full list (a task may have a card's number and a
leaderboard's) goes to ``summary.md`` and the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evals.published import (
    Comparison,
    PublishedScore,
    PublishedTable,
    RunSettings,
    best_match,
    compare,
)

__all__ = ["NO_PUBLISHED", "PublishedContext", "comparison_record"]

#: The verdict column of a task no published score covers.
NO_PUBLISHED = "no published score"


def comparison_record(task: str, item: Comparison) -> dict[str, Any]:
    """One comparison as plain data (the manifest, summary.md, the terminal)."""
    pub = item.published
    return {
        "task": task, "model": pub.model, "metric": pub.metric, "published": pub.score,
        "measured": None if item.measured is None else round(100 * item.measured, 2),
        "ci_low": None if item.ci_low is None else round(100 * item.ci_low, 2),
        "ci_high": None if item.ci_high is None else round(100 * item.ci_high, 2),
        "delta": None if item.delta is None else round(item.delta, 2),
        "verdict": item.verdict, "settings_differ": list(item.settings_differ),
        "source": pub.source, "source_date": pub.source_date, "notes": pub.notes,
        "n": pub.n,
    }


@dataclass(frozen=True, slots=True)
class PublishedContext:
    """What a run's summary is compared with.

    Attributes:
        model: the model name the run used (any provider's spelling).
        table: the published scores (shipped and ``--published`` files).
        settings: per task, the settings the run used.
    """

    model: str
    table: PublishedTable
    settings: Mapping[str, RunSettings] = field(default_factory=dict)

    def rows_for(self, task: str) -> list[PublishedScore]:
        return self.table.lookup(self.model, task)

    def wanted(self) -> dict[str, tuple[str, ...]]:
        """Per task, the metrics its published scores are stated in (maj@64, pass@1...)."""
        return {task: tuple(sorted({p.metric for p in self.rows_for(task)}))
                for task in self.settings}

    def attach(self, summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the comparison columns to each task row of ``summary`` (rows from
        ``metrics.summarize`` with their ``measured`` metrics); return every comparison
        as a record."""
        records: list[dict[str, Any]] = []
        for row in summary:
            if row["subset"]:
                continue
            measured = row.get("measured") or {}
            comparisons = [compare(p, measured, self.settings.get(row["task"]))
                           for p in self.rows_for(row["task"])]
            records += [comparison_record(row["task"], c) for c in comparisons]
            best = best_match(comparisons)
            if best is None:
                row.update(published=math.nan, published_source=NO_PUBLISHED,
                           delta=math.nan, verdict=NO_PUBLISHED, settings_differ="")
                continue
            row.update(
                published=best.published.score,
                published_metric=best.published.metric,
                published_source=best.published.source,
                delta=math.nan if best.delta is None else round(best.delta, 2),
                verdict=best.verdict,
                settings_differ="; ".join(best.settings_differ),
            )
        return records
