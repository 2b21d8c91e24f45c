"""Summary tables: ``summary.csv`` (every number) and ``summary.md`` (for people)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "render_summary_md", "write_summary"]

SIMULATED_BANNER = (
    "**SIMULATED**: these answers came from the built-in simulated model server "
    "(`evals simulate`), not from a model. The scores measure the harness, not a model."
)


_NAN = float("nan")


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_summary_md(summary: list[dict[str, Any]], manifest: dict[str, Any]) -> str:
    """The Markdown summary of a run (summary: the rows from ``metrics.summarize``)."""
    cfg = manifest.get("config", {})
    simulated = bool(manifest.get("simulated"))
    title = f"# Run summary: {cfg.get('model', '?')}" + (" (SIMULATED)" if simulated else "")
    parts = [title, ""]
    if simulated:
        parts += [SIMULATED_BANNER, ""]
    endpoint = manifest.get("endpoint") or {}
    parts.append(
        f"Endpoint: {endpoint.get('provider', '-')} {endpoint.get('base_url', '')}; "
        f"seed {cfg.get('seed', '-')}; repeats {cfg.get('n') or 'task default'}; "
        f"started {manifest.get('started', '-')}."
    )
    parts.append("")
    main = [r for r in summary if not r["subset"]]
    header = ["task", "score", "SE", "95% CI", "problems", "repeats", "scored", "errors",
              "truncated", "mean tokens"]
    rows = [
        [r["task"] + (" (simulated)" if simulated else ""), r["score"], r["se"],
         f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", r["problems"], r["repeats"],
         r["scored"], r["error"], r["truncated"], _fmt(r["mean_completion_tokens"], 0)]
        for r in main
    ]
    parts += [markdown_table(header, rows), ""]
    passk = [r for r in main if "pass@1" in r]
    if passk:
        ks = sorted({int(k[5:]) for r in passk for k in r if k.startswith("pass@")})
        parts += ["pass@k (unbiased estimator over the n repeats of each problem):", "",
                  markdown_table(["task", *[f"pass@{k}" for k in ks]],
                                 [[r["task"], *[r.get(f"pass@{k}", _NAN) for k in ks]]
                                  for r in passk]), ""]
    parts.append(
        "Score: mean over problems of the fraction of correct attempts (pass@1 averaged over "
        "the repeats). SE: clustered by problem. Scored attempts: answered, truncated, "
        "reasoning never closed, empty answer. Not scored: requests that failed after their "
        "retries (`error`, retried by rerunning the same command) and answers the grader "
        "could not decide (`grading_failed`)."
    )
    parts.append("")
    outcome_cols = ["answered", "truncated", "reasoning_unclosed", "empty", "error",
                    "grading_failed"]
    parts += ["## Outcomes", "",
              markdown_table(["task", *outcome_cols],
                             [[r["task"], *[r[c] for c in outcome_cols]] for r in main]), ""]
    subs = [r for r in summary if r["subset"]]
    if subs:
        parts += ["## Breakdown", "",
                  markdown_table(["task", "by", "value", "score", "SE", "problems", "scored"],
                                 [[r["task"], r["subset"], r["value"], r["score"], r["se"],
                                   r["problems"], r["scored"]] for r in subs]), ""]
    return "\n".join(parts)


def write_summary(out_dir: Path, summary: list[dict[str, Any]], manifest: dict[str, Any]
                  ) -> None:
    """Write summary.csv (every number, one row per task and per subset value) and
    summary.md."""
    import csv

    model = manifest.get("config", {}).get("model")
    simulated = bool(manifest.get("simulated"))
    with (out_dir / "summary.csv").open("w", newline="") as fh:
        # Rows of different tasks may differ (pass@k columns): the union, in first-seen order.
        columns = dict.fromkeys(key for row in summary for key in row) or {"task": None}
        writer = csv.DictWriter(fh, fieldnames=["model", "simulated", *columns])
        writer.writeheader()
        for row in summary:
            writer.writerow({"model": model, "simulated": simulated, **row})
    (out_dir / "summary.md").write_text(render_summary_md(summary, manifest))
