"""Summary tables: ``summary.csv`` (every number) and ``summary.md`` (for people)."""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def render_summary_md(summary: list[dict[str, Any]], manifest: dict[str, Any],
                      comparisons: Sequence[dict[str, Any]] = ()) -> str:
    """The Markdown summary of a run (summary: the rows from ``metrics.summarize``;
    comparisons: the records of ``verdicts.PublishedContext.attach``)."""
    cfg = manifest.get("config", {})
    simulated = bool(manifest.get("simulated"))
    title = f"# Run summary: {cfg.get('model', '?')}" + (" (SIMULATED)" if simulated else "")
    parts = [title, ""]
    if simulated:
        parts += [SIMULATED_BANNER, ""]
    endpoint = manifest.get("endpoint") or {}
    main = [r for r in summary if not r["subset"]]
    repeats = ", ".join(sorted({_repeats_text(r) for r in main})) or "-"
    if manifest.get("kind") == "grade":
        parts.append(f"Recorded responses: {cfg.get('responses', '-')} (graded with no model "
                     f"call); repeats per problem {repeats}; graded "
                     f"{manifest.get('started', '-')}.")
    else:
        parts.append(
            f"Endpoint: {endpoint.get('provider', '-')} {endpoint.get('base_url', '')}; "
            f"seed {cfg.get('seed', '-')}; repeats per problem {repeats}; "
            f"started {manifest.get('started', '-')}."
        )
    parts.append("")
    parts += _status_md(main, manifest)
    header = ["task", "score", "SE", "95% CI", "problems", "repeats", "scored", "errors",
              "truncated", "mean tokens"]
    rows = [
        [r["task"] + (" (simulated)" if simulated else ""), r["score"], r["se"],
         f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", r["problems"], r["repeats"],
         r["scored"], r["error"], r["truncated"], _fmt(r["mean_completion_tokens"], 0)]
        for r in main
    ]
    parts += [markdown_table(header, rows), ""]
    parts += _published_md(main, comparisons, simulated)
    parts += _usage_md(main, manifest)
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


def _repeats_text(row: dict[str, Any]) -> str:
    """The repeats per problem of a task: one number, or the range when they differ (a
    rerun that could not finish, recorded responses with uneven repeats)."""
    low, high = row.get("min_repeats", row["repeats"]), row["repeats"]
    return f"{row['task']}: {low}" if low == high else f"{row['task']}: {low}-{high}"


def status_lines(main: list[dict[str, Any]], manifest: dict[str, Any]
                 ) -> list[tuple[str, str]]:
    """What a reader must know about how complete a run is, as (headline, explanation)
    pairs (an empty headline: a plain line); shared by summary.md and the terminal."""
    lines: list[tuple[str, str]] = []
    errors = sum(int(r["error"]) for r in main)
    unscored = sum(int(r["grading_failed"]) for r in main)
    if errors:
        lines.append((f"{errors} attempt(s) not scored", (": their requests failed after all "
                      "retries. Rerunning the same command retries exactly those.")))
    if unscored:
        lines.append((f"{unscored} answer(s) not scored", (": the grader could not decide "
                      "(`grading_failed`; the reason is in the per-attempt table).")))
    budget = manifest.get("budget") or {}
    if budget.get("not_asked"):
        lines.append(("Stopped at the budget", (f" (--max-cost {budget.get('max_cost')}): "
                      f"{budget['not_asked']} attempt(s) not asked; rerun to continue.")))
    if "attempts_resumed" in manifest:
        lines.append(("", (f"Attempts: {manifest['attempts_asked']} asked, "
                      f"{manifest['attempts_resumed']} resumed from the store.")))
    return lines


def _status_md(main: list[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    lines = [f"**{head}**{rest}" if head else rest for head, rest in status_lines(main, manifest)]
    skipped = {name: d.get("skipped_rows") for name, d in (manifest.get("datasets") or {}).items()
               if d.get("skipped_rows")}
    for name, rows in skipped.items():
        shown = "; ".join(f"row {r['row']}: {r['problem']}" for r in rows[:10])
        more = f" (and {len(rows) - 10} more)" if len(rows) > 10 else ""
        lines.append(f"**{len(rows)} data row(s) of {name} skipped** (--skip-bad-rows): "
                     f"{shown}{more}.")
    return [*(f"{line}\n" for line in lines)] if lines else []


def _published_md(main: list[dict[str, Any]], comparisons: Sequence[dict[str, Any]],
                  simulated: bool) -> list[str]:
    if not main or "verdict" not in main[0]:
        return []
    parts = ["## Published scores", ""]
    if simulated:
        parts += ["(The answers are simulated: these verdicts test the harness, not a model.)",
                  ""]
    if not comparisons:
        return [*parts, ("No published score for this model and these benchmarks "
                         "(add your own with `--published PATH`)."), ""]
    header = ["task", "metric", "published", "measured", "95% CI", "delta (points)",
              "verdict", "settings that differ", "source"]
    rows = [[c["task"], c["metric"], _fmt(float(c["published"]), 2),
             "-" if c["measured"] is None else _fmt(float(c["measured"]), 2),
             "-" if c["ci_low"] is None else f"[{c['ci_low']:.2f}, {c['ci_high']:.2f}]",
             "-" if c["delta"] is None else f"{c['delta']:+.2f}", c["verdict"],
             "; ".join(c["settings_differ"]) or "none",
             f"{c['source']} ({c['source_date']}; {c['notes']})".replace("|", "/")]
            for c in comparisons]
    parts += [markdown_table(header, rows), "",
              ("Verdict: `consistent` when the published score lies in the run's 95% "
               "interval, `below`/`above` when the whole interval is below/above it. A "
               "difference in the settings listed can explain a gap."), ""]
    return parts


def _usage_md(main: list[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    header = ["task", "prompt tok", "completion tok", "reasoning tok", "tok/attempt",
              "truncated", "latency p50/p90 (s)", "TTFT p50 (s)", "output tok/s p50",
              "retries", "resumed", "cost (USD)"]
    rows = [[r["task"], r.get("total_prompt_tokens", 0), r.get("total_completion_tokens", 0),
             r.get("total_reasoning_tokens", 0), _fmt(r.get("mean_completion_tokens", _NAN), 0),
             f"{_fmt(100 * r.get('truncation_rate', _NAN), 1)}%",
             f"{_fmt(r.get('latency_s_p50', _NAN), 2)} / {_fmt(r.get('latency_s_p90', _NAN), 2)}",
             _fmt(r.get("ttft_s_p50", _NAN), 2), _fmt(r.get("output_tps_p50", _NAN), 1),
             r.get("retries", 0), r.get("resumed", 0), _fmt(r.get("cost", _NAN), 4)]
            for r in main]
    return ["## Usage and speed", "", markdown_table(header, rows), "",
            ("Tokens as the server reported them (completion includes reasoning). TTFT and "
            "output speed are measured on streamed runs only (`--stream`). Resumed: attempts "
            "taken from the store instead of asked again."), ""]


def write_summary(out_dir: Path, summary: list[dict[str, Any]], manifest: dict[str, Any],
                  comparisons: Sequence[dict[str, Any]] = ()) -> None:
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
    (out_dir / "summary.md").write_text(render_summary_md(summary, manifest, comparisons))
