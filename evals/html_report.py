"""``report.html``: one self-contained page per run (or per set of runs compared).

The page opens from disk with no server and makes no network request: the styles are
inline, the figures are PNG data URIs (their PNG and SVG files sit beside the page), and
there is no script. It holds the summary tables, the published comparison, the paired
comparison when two runs are given, the figures, and a drill-down per problem (prompt,
each repeat's answer, extracted answer, verdict and reason, the reasoning folded away in a
``<details>``). Every text from a model or a dataset is escaped with ``html.escape``.

Long texts are cut for the page (the full texts stay in ``samples.parquet``): an answer
keeps its last ``ANSWER_CHARS`` characters (where the final answer is), a reasoning its
first and last ``REASONING_CHARS // 2``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.api import Run
    from evals.comparison import RunComparison
    from evals.plots import FigureFile

__all__ = ["default_report_dir", "render_report", "write_report"]

ANSWER_CHARS = 4000
REASONING_CHARS = 4000
PROMPT_CHARS = 6000

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;
max-width:1200px;padding:0 1rem;color:#1a1a1a;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem;display:block;
overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff3cd;border:1px solid #e0c36a;padding:.6rem;margin:1rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
details{margin:.2rem 0}details.problem>summary{cursor:pointer;padding:.2rem;
background:#f7f7f7}details.problem[open]>summary{background:#e8f0fe}
pre{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #eee;
padding:.5rem;max-height:30rem;overflow:auto;font-size:.8rem}
.ok{color:#007a4d;font-weight:600}.bad{color:#b00020;font-weight:600}
.muted{color:#666}.cut{color:#999;font-style:italic}
"""


def _num(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-" if value is None else escape(str(value))
    if math.isnan(number):
        return "-"
    return f"{scale * number:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str = "",
           numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are already-escaped HTML."""
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _clip_tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return escape(text)
    return (f'<span class="cut">[{len(text) - limit:,} earlier characters not shown; the '
            f"full text is in samples.parquet]</span>\n" + escape(text[-limit:]))


def _clip_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return escape(text)
    half = limit // 2
    return (escape(text[:half]) + f'\n<span class="cut">[{len(text) - limit:,} characters '
            "not shown; the full text is in samples.parquet]</span>\n" + escape(text[-half:]))


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _runs_section(runs: Sequence[Run]) -> str:
    rows = []
    for run in runs:
        m = run.manifest
        cfg = m.get("config") or {}
        endpoint = m.get("endpoint") or {}
        rows.append([escape(run.name), escape(run.model),
                     escape(f"{endpoint.get('provider') or '-'} {endpoint.get('base_url') or ''}"),
                     escape(str(m.get("started", "-"))), escape(str(m.get("status", "-"))),
                     escape(str(cfg.get("seed", "-"))), escape(", ".join(run.tasks)),
                     "yes" if run.simulated else "no", escape(str(run.path))])
    return "<h2>Runs</h2>" + _table(
        ["run", "model", "endpoint", "started", "status", "seed", "tasks", "simulated",
         "folder"], rows, "runs")


def _summary_section(runs: Sequence[Run]) -> str:
    header = ["run", "task", "subset", "score (points)", "95% interval", "problems",
              "repeats", "scored", "errors", "truncated", "published", "verdict",
              "mean tokens", "cost (USD)"]
    rows = []
    for run in runs:
        summary = run.summary
        if summary.empty:
            continue
        for r in summary.to_dict("records"):
            subset = f"{r.get('subset')}={r.get('value')}" if r.get("subset") else ""
            verdict = _text(r.get("verdict"))
            css = {"consistent": "ok", "below": "bad", "above": "bad"}.get(verdict, "muted")
            rows.append([
                escape(run.name), escape(str(r["task"])), escape(subset),
                _num(r.get("score"), 1, 100),
                f"[{_num(r.get('ci_low'), 1, 100)}, {_num(r.get('ci_high'), 1, 100)}]",
                _num(r.get("problems"), 0), _num(r.get("repeats"), 0),
                _num(r.get("scored"), 0), _num(r.get("error"), 0),
                _num(r.get("truncated"), 0), _num(r.get("published"), 2),
                f'<span class="{css}">{escape(verdict)}</span>' if verdict else "",
                _num(r.get("mean_completion_tokens"), 0), _num(r.get("cost"), 4)])
    note = ("<p class='muted'>Score: mean over problems of each problem's fraction of "
            "correct attempts (pass@1 averaged over the repeats); interval: 95%, standard "
            "error clustered by problem. Verdict: <em>consistent</em> when the published "
            "score lies in the interval, <em>below</em>/<em>above</em> otherwise.</p>")
    return "<h2>Summary</h2>" + _table(header, rows, "summary", numeric=range(3, 14)) + note


def _published_section(runs: Sequence[Run]) -> str:
    rows = []
    for run in runs:
        for c in run.manifest.get("published_comparison") or []:
            verdict = str(c.get("verdict", ""))
            css = {"consistent": "ok", "below": "bad", "above": "bad"}.get(verdict, "muted")
            rows.append([
                escape(run.name), escape(str(c.get("task"))), escape(str(c.get("metric"))),
                _num(c.get("published")), _num(c.get("measured")),
                f"[{_num(c.get('ci_low'))}, {_num(c.get('ci_high'))}]",
                "-" if c.get("delta") is None else f"{float(c['delta']):+.2f}",
                f'<span class="{css}">{escape(verdict)}</span>',
                escape("; ".join(c.get("settings_differ") or []) or "none"),
                escape(f"{c.get('source')} ({c.get('source_date')}; {c.get('notes')})")])
    if not rows:
        return ("<h2>Published scores</h2><p class='muted'>No published score for these "
                "models and benchmarks (add rows with <code>evals run --published PATH"
                "</code>).</p>")
    return "<h2>Published scores</h2>" + _table(
        ["run", "task", "metric", "published", "measured", "95% interval", "delta (points)",
         "verdict", "settings that differ", "source"], rows, "published", numeric=(3, 4, 6))


def _change_html(change: str) -> str:
    css = {"worse": "bad", "better": "ok"}.get(change, "muted")
    return f'<span class="{css}">{escape(change)}</span>'


def _comparison_section(result: RunComparison) -> str:
    rows = [[escape(r.task), str(r.problems), _num(r.base_score), _num(r.new_score),
             f"{r.delta:+.2f}", f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]",
             _change_html(r.change), str(r.worse), str(r.better)]
            for r in result.tasks.itertuples()]
    parts = [f"<h2>Paired comparison: {escape(result.base)} &rarr; {escape(result.new)}</h2>",
             _table(["task", "problems", "base", "new", "delta (points)", "95% paired interval",
                     "change", "worse", "better"], rows, "comparison", numeric=(1, 2, 3, 4)),
             (f"<p class='muted'>Paired by problem and repeat; bootstrap over problems "
             f"({result.resamples} resamples, seed {result.seed}).</p>")]
    if not result.flipped.empty:
        frows = [[escape(f.task), (f'<a href="#{_anchor(f.task, f.sample_id)}">'
                  f"{escape(f.sample_id)}</a>"), f"{f.base_correct}/{f.base_n}",
                  f"{f.new_correct}/{f.new_n}", str(f.lost), str(f.gained),
                  escape(f.direction)] for f in result.flipped.itertuples()]
        parts.append("<h3>Flipped problems</h3>" + _table(
            ["task", "problem", "base correct", "new correct", "attempts lost",
             "attempts gained", "direction"], frows, "flipped"))
    if not result.settings.empty:
        srows = [[escape(s.setting), escape(s.base), escape(s.new)]
                 for s in result.settings.itertuples()]
        parts.append("<h3>Settings that differ</h3>" + _table(["setting", "base", "new"],
                                                              srows, "settings"))
    return "".join(parts)


def _figures_section(figures: Sequence[FigureFile]) -> str:
    parts = ["<h2>Figures</h2>"]
    for f in figures:
        data = base64.b64encode(f.png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure id="fig-{escape(f.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(f.title)}"><figcaption>{escape(f.title)} (files: '
            f"{escape(f.png.name)}, {escape(f.svg.name)})</figcaption></figure>")
    return "".join(parts)


def _anchor(task: str, sample_id: str) -> str:
    return "p-" + hashlib.sha1(f"{task}|{sample_id}".encode()).hexdigest()[:10]


def _messages_html(messages: list[dict[str, Any]] | None) -> str:
    if not messages:
        return ("<p class='muted'>Prompt not recorded (no messages column and no run "
                "store).</p>")
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep their text
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"<p class='muted'>{escape(str(message.get('role', '?')))}:</p>"
                     f"<pre>{_clip_middle(_text(content), PROMPT_CHARS)}</pre>")
    return "".join(parts)


def _verdict(outcome: str, correct: Any) -> str:
    if outcome in ("error", "grading_failed"):
        return f'<span class="muted">not scored ({escape(outcome)})</span>'
    right = correct is not None and not (isinstance(correct, float) and math.isnan(correct))
    if right and bool(correct):
        return '<span class="ok">correct</span>'
    return '<span class="bad">wrong</span>'


def _drilldown_section(runs: Sequence[Run]) -> str:
    from evals.api import prompts_from_store

    prompts = [prompts_from_store(run) for run in runs]
    tasks = sorted({t for run in runs for t in run.tasks})
    parts = [("<h2>Problems</h2><p class='muted'>One entry per problem: open it for the "
             "prompt and every attempt; each reasoning is folded away again.</p>"
             "<div id='drilldown'>")]
    for task in tasks:
        frames = [run.attempts[run.attempts["task"] == task].sort_values(["sample_id",
                                                                          "repeat"])
                  for run in runs]
        ids = sorted({str(s) for f in frames for s in f["sample_id"]})
        groups = [{str(k): g for k, g in f.groupby("sample_id", sort=False)} for f in frames]
        parts.append(f"<h3>{escape(task)} ({len(ids)} problems)</h3>")
        for sid in ids:
            tallies, target = [], ""
            for run, group in zip(runs, groups, strict=True):
                g = group.get(sid)
                if g is None:
                    continue
                target = target or _text(g["target"].iloc[0])
                scored = g[~g["outcome"].isin(["error", "grading_failed"])]
                label = f"{run.name}: " if len(runs) > 1 else ""
                right = int(scored["correct"].eq(True).sum())
                tallies.append(f"{label}{right}/{len(scored)} correct")
            summary = (f"<strong>{escape(sid)}</strong> &mdash; {escape('; '.join(tallies))}"
                       f" &mdash; target <code>{escape(target)}</code>")
            body = []
            prompt = next((p[(task, sid)] for p in prompts if (task, sid) in p), None)
            body.append("<h4>Prompt</h4>" + _messages_html(prompt))
            for run, group in zip(runs, groups, strict=True):
                g = group.get(sid)
                if g is None:
                    continue
                body.append(_attempts_html(run, g, len(runs) > 1))
            parts.append(f'<details class="problem" id="{_anchor(task, sid)}">'
                         f"<summary>{summary}</summary>{''.join(body)}</details>")
    parts.append("</div>")
    return "".join(parts)


def _attempts_html(run: Run, group: Any, label: bool) -> str:
    rows, texts = [], []
    for a in group.to_dict("records"):
        reason = _text(a.get("reason")) or _text(a.get("error"))
        rows.append([str(a["repeat"]), escape(_text(a["outcome"])),
                     _verdict(str(a["outcome"]), a.get("correct")),
                     f"<code>{escape(_text(a.get('extracted')))}</code>", escape(reason),
                     _num(a.get("completion_tokens"), 0), escape(_text(a.get("finish_reason")))])
        reasoning = _text(a.get("reasoning"))
        fold = (f"<details class='reasoning'><summary>reasoning of repeat {a['repeat']} "
                f"({len(reasoning):,} characters)</summary><pre>"
                f"{_clip_middle(reasoning, REASONING_CHARS)}</pre></details>"
                if reasoning else "")
        texts.append(f"<p class='muted'>repeat {a['repeat']} answer:</p><pre>"
                     f"{_clip_tail(_text(a.get('response')), ANSWER_CHARS)}</pre>{fold}")
    head = f"<h4>Attempts{' of ' + escape(run.name) if label else ''}</h4>"
    return head + _table(["repeat", "outcome", "verdict", "extracted", "reason", "tokens",
                          "finish"], rows, numeric=(5,)) + "".join(texts)


def render_report(runs: Sequence[Run], figures: Sequence[FigureFile] = (),
                  comparison: RunComparison | None = None) -> str:
    """The report page as one HTML string (see the module docstring)."""
    from evals.report import SIMULATED_BANNER

    if len(runs) == 1:
        title = f"Run report: {runs[0].name} ({runs[0].model})"
    else:
        title = "Comparison of runs: " + ", ".join(run.name for run in runs)
    banner = ""
    if any(run.simulated for run in runs):
        text = SIMULATED_BANNER.replace("**", "").replace("`", "")
        banner = f'<div class="banner">{escape(text)}</div>'
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [_runs_section(runs), _summary_section(runs), _published_section(runs)]
    if comparison is not None:
        sections.append(_comparison_section(comparison))
    sections += [_figures_section(figures), _drilldown_section(runs)]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1>{banner}<p class='muted'>Generated {generated} by "
            "evals report.</p>" + "".join(sections) + "</body></html>\n")


def default_report_dir(runs: Sequence[Run]) -> Path:
    """Where ``evals report`` writes without ``--out``: the run folder for one run; for
    several, ``report-<hash of their paths>`` in their common parent folder (the same
    runs always land in the same place)."""
    if len(runs) == 1:
        return runs[0].path
    paths = [str(run.path.resolve()) for run in runs]
    parent = Path(os.path.commonpath(paths))
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:8]
    return parent / f"report-{digest}"


def write_report(runs: Sequence[Run | str | os.PathLike[str]], out: Path | None = None
                 ) -> Path:
    """Write ``report.html`` and its figures (PNG and SVG under ``figures/``).

    Args:
        runs: one run or several (folders or loaded runs); several give one page
            comparing them, with the paired comparison when there are exactly two that
            share a task (the first is the base).
        out: the folder to write to (default: ``default_report_dir``).

    Returns:
        The path of ``report.html``.

    Raises:
        DataError: a folder is not a finished run.
    """
    from evals.api import load_run
    from evals.errors import DataError
    from evals.plots import write_figures

    loaded = [load_run(r) for r in runs]
    if not loaded:
        raise DataError("no run to report on: give at least one run folder.")
    folder = out if out is not None else default_report_dir(loaded)
    folder.mkdir(parents=True, exist_ok=True)
    figures = write_figures(loaded, folder / "figures")
    comparison = None
    if len(loaded) == 2 and set(loaded[0].tasks) & set(loaded[1].tasks):
        from evals.comparison import compare_runs

        try:
            comparison = compare_runs(loaded[0], loaded[1])
        except DataError:
            comparison = None  # nothing to pair: the page still shows both runs
    page = folder / "report.html"
    tmp = folder / "report.html.tmp"
    tmp.write_text(render_report(loaded, figures, comparison), encoding="utf-8")
    os.replace(tmp, page)
    return page
