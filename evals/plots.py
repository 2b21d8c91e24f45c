"""Figures of runs (matplotlib), each readable on its own: title, axis labels, legend.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` built without pyplot (no
global figure registry, no GUI backend: safe in threads, in CI and in notebooks, where a
figure displays as the cell's value). ``save_figure`` writes one as PNG and SVG;
``write_figures`` writes the set ``evals report`` puts in a run folder.

* ``plot_published``: measured score with its 95% interval per benchmark, beside the
  published scores (model cards, leaderboards);
* ``plot_verdict_grid``: problem x repeat, each attempt coloured by its verdict;
* ``plot_score_vs_length``: score against response length, truncated answers marked;
* ``plot_usage``: distributions of completion tokens and latency;
* ``plot_pass_at_k``: pass@k curves (code tasks);
* ``plot_score_history``: score over time per model and task (``evals runs --plot``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from evals.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evals.api import Run

__all__ = ["FigureFile", "plot_pass_at_k", "plot_published", "plot_score_history",
           "plot_score_vs_length", "plot_usage", "plot_verdict_grid", "save_figure",
           "write_figures"]

#: Verdict colours of the grid (colour-blind safe: Okabe-Ito), in legend order.
VERDICT_COLOURS = (("correct", "#009E73"), ("wrong", "#D55E00"),
                   ("truncated (wrong)", "#E69F00"), ("not scored", "#999999"),
                   ("no attempt", "#FFFFFF"))
_RUN_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


class FigureFile(NamedTuple):
    """One figure written to disk: its file stem, title and the two files."""

    name: str
    title: str
    png: Path
    svg: Path


def _runs(runs: Run | Sequence[Run]) -> list[Run]:
    from evals.api import Run

    return [runs] if isinstance(runs, Run) else list(runs)


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _label(run: Run) -> str:
    return f"{run.name} ({run.model}{', simulated' if run.simulated else ''})"


def _task(run: Run, task: str | None) -> str:
    tasks = run.tasks
    if not tasks:
        raise DataError(f"{run.path}: the run has no attempts to plot.")
    if task is None:
        return tasks[0]
    if task not in tasks:
        raise DataError(f"{run.path} has no task {task!r} (it has {', '.join(tasks)}).")
    return task


def plot_published(runs: Run | Sequence[Run]) -> Figure:
    """Measured score (pass@1, points) with its 95% interval per benchmark and run,
    beside every published score of the run's model for that benchmark.

    A benchmark with no published score shows the measured score alone. The published
    markers are labelled by their source kind (``card``, ``leaderboard``, ...) and metric.
    """
    items = _runs(runs)
    tasks = sorted({t for run in items for t in run.tasks})
    fig, (ax,) = _figure(max(5.0, 1.6 * len(tasks) * max(1, len(items)) + 2.5), 4.2)
    width = 0.7 / max(1, len(items))
    published_seen: set[str] = set()
    for i, run in enumerate(items):
        summary = run.summary
        main = (summary[summary["subset"] == ""] if "subset" in summary.columns
                else summary.iloc[0:0])
        for j, task in enumerate(tasks):
            row = main[main["task"] == task]
            x = j + (i - (len(items) - 1) / 2) * width
            if not row.empty:
                score, low, high = (100 * float(row.iloc[0][c])
                                    for c in ("score", "ci_low", "ci_high"))
                ax.errorbar([x], [score], yerr=[[score - low], [high - score]], fmt="o",
                            color=_RUN_COLOURS[i % len(_RUN_COLOURS)], capsize=4,
                            label=f"measured, {_label(run)}" if j == 0 else None)
            for record in run.manifest.get("published_comparison") or []:
                if record.get("task") != task:
                    continue
                kind = str(record.get("notes") or "").partition(":")[0] or "published"
                key = f"published ({kind}, {record.get('metric')})"
                ax.scatter([x + width * 0.25], [float(record["published"])], marker="D",
                           s=36, color="black" if kind == "card" else "#777777", zorder=3,
                           label=key if key not in published_seen else None)
                published_seen.add(key)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_xlim(-0.7, len(tasks) - 0.3)
    ax.set_ylim(0, 100)
    ax.set_xlabel("benchmark")
    ax.set_ylabel("score (points, pass@1 mean over repeats)")
    ax.set_title("Measured score (95% interval) vs published score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def _verdict_code(outcome: str, correct: Any) -> int:
    if outcome not in ("answered", "truncated", "reasoning_unclosed", "empty"):
        return 3
    if outcome == "truncated" and not correct:
        return 2
    return 0 if bool(correct) else 1


def plot_verdict_grid(run: Run, task: str | None = None) -> Figure:
    """Problem x repeat grid of one task's verdicts: correct, wrong, truncated (wrong),
    not scored (request error, grading failed).

    Args:
        run: the run.
        task: the task (default: the run's first).

    Problems are sorted by their score, hardest at the top, so easy and hard problems
    stand out; the problem ids label the rows when there are at most 60.
    """
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    task = _task(run, task)
    df = run.attempts[run.attempts["task"] == task]
    codes = [_verdict_code(str(o), c) for o, c in zip(df["outcome"], df["correct"],
                                                        strict=True)]
    frame = df[["sample_id", "repeat"]].assign(code=codes)
    grid = frame.pivot_table(index="sample_id", columns="repeat", values="code",
                             aggfunc="first").fillna(4)
    order = grid.apply(lambda r: (r == 0).mean(), axis=1).sort_values(kind="stable")
    grid = grid.loc[order.index]
    rows, cols = grid.shape
    fig, (ax,) = _figure(min(14.0, 3.5 + 0.3 * cols), min(16.0, 2.2 + 0.18 * rows))
    cmap = ListedColormap([c for _, c in VERDICT_COLOURS])
    ax.imshow(grid.to_numpy(dtype=float), cmap=cmap, vmin=-0.5, vmax=4.5, aspect="auto",
              interpolation="nearest")
    ax.set_xticks(range(cols), [str(int(c)) for c in grid.columns])
    if rows <= 60:
        ax.set_yticks(range(rows), [str(s) for s in grid.index], fontsize="small")
    else:
        ax.set_yticks(np.linspace(0, rows - 1, 6).round().astype(int))
    ax.set_xlabel("repeat (index)")
    ax.set_ylabel("problem (hardest at the top)" if rows <= 60
                  else "problem (rank by score; hardest at the top)")
    ax.set_title(f"{task}: verdict of each attempt\n{_label(run)}", fontsize="medium")
    used = {int(v) for v in np.unique(grid.to_numpy())}
    ax.legend(handles=[Patch(facecolor=c, edgecolor="#333333", label=name)
                       for k, (name, c) in enumerate(VERDICT_COLOURS) if k in used],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def plot_score_vs_length(runs: Run | Sequence[Run], task: str | None = None,
                         bins: int = 8) -> Figure:
    """Score against response length: each attempt's verdict (jittered dots at 0 and 1)
    and the mean score per length bin, with truncated answers marked by a red x.

    Args:
        runs: one run, or several (one binned curve each; dots for the first only).
        task: the task (default: every task of the runs together).
        bins: length bins (quantiles of the completion tokens).
    """
    import numpy as np

    items = _runs(runs)
    fig, (ax,) = _figure(7.5, 4.5)
    for i, run in enumerate(items):
        df = run.attempts
        if task is not None:
            df = df[df["task"] == _task(run, task)]
        df = df[df["outcome"].isin(["answered", "truncated", "reasoning_unclosed", "empty"])]
        df = df[df["completion_tokens"].notna()]
        if df.empty:
            continue
        colour = _RUN_COLOURS[i % len(_RUN_COLOURS)]
        tokens = df["completion_tokens"].to_numpy(dtype=float)
        correct = df["correct"].eq(True).to_numpy(dtype=bool).astype(float)
        if i == 0:
            jitter = np.random.default_rng(0).uniform(-0.04, 0.04, len(tokens))
            ax.scatter(tokens, correct + jitter, s=8, alpha=0.35, color=colour,
                       label="attempt (1 = correct, 0 = wrong)")
            cut = (df["outcome"] == "truncated").to_numpy()
            if cut.any():
                ax.scatter(tokens[cut], correct[cut] + jitter[cut], marker="x", s=40,
                           color="red", label="truncated (hit max tokens)")
        edges = np.unique(np.quantile(tokens, np.linspace(0, 1, bins + 1)))
        if len(edges) >= 2:
            which = np.clip(np.searchsorted(edges, tokens, side="right") - 1, 0,
                            len(edges) - 2)
            centres = [tokens[which == b].mean() for b in range(len(edges) - 1)
                       if (which == b).any()]
            means = [correct[which == b].mean() for b in range(len(edges) - 1)
                     if (which == b).any()]
            ax.plot(centres, means, "-o", color=colour, lw=2,
                    label=f"mean score per length bin, {_label(run)}")
    ax.set_ylim(-0.1, 1.1)
    ax.set_xlabel("response length (completion tokens, reasoning included)")
    ax.set_ylabel("score (fraction correct)")
    ax.set_title("Score against response length" + (f" ({task})" if task else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def plot_usage(runs: Run | Sequence[Run]) -> Figure:
    """Distributions of completion tokens (per attempt) and latency (seconds per
    request), one histogram per run, with each median marked by a dashed line."""
    import numpy as np

    items = _runs(runs)
    fig, axes = _figure(11.0, 4.0, ncols=2)
    specs = (("completion_tokens", "completion tokens per attempt (tokens)",
              "Completion tokens"),
             ("latency_s", "latency per request (seconds)", "Latency"))
    for ax, (column, xlabel, title) in zip(axes, specs, strict=True):
        for i, run in enumerate(items):
            df = run.attempts
            values = df.loc[(df["outcome"] != "error") & df[column].notna(),
                            column].to_numpy(dtype=float)
            if values.size == 0:
                continue
            colour = _RUN_COLOURS[i % len(_RUN_COLOURS)]
            ax.hist(values, bins=30, alpha=0.5, color=colour, label=_label(run))
            ax.axvline(float(np.median(values)), color=colour, ls="--",
                       label=f"median {np.median(values):,.3g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("attempts (count)")
        ax.set_title(title)
        ax.legend(fontsize="small")
    fig.suptitle("Token and latency distributions (failed requests left out)")
    return fig


def _pass_curve(df: pd.DataFrame) -> tuple[list[int], list[float]]:
    from evals.metrics import pass_at_k
    from evals.records import SCORED_OUTCOMES

    scored = df[df["outcome"].isin(list(SCORED_OUTCOMES))]
    per = scored.groupby("sample_id")["correct"].agg(["sum", "count"])
    most = int(per["count"].max()) if len(per) else 0
    ks, values = [], []
    for k in range(1, most + 1):
        usable = per[per["count"] >= k]
        ks.append(k)
        values.append(100 * sum(pass_at_k(int(n), int(c), k)
                                for c, n in zip(usable["sum"], usable["count"],
                                                strict=True)) / len(usable))
    return ks, values


def plot_pass_at_k(runs: Run | Sequence[Run], tasks: Sequence[str] | None = None) -> Figure:
    """pass@k against k (unbiased estimator over each problem's repeats), a curve per
    task and run.

    Args:
        runs: one run or several.
        tasks: the tasks to draw (default: each run's code tasks, those whose summary
            reports pass@k).

    Raises:
        DataError: no task to draw (no code task in the runs and none named).
    """
    items = _runs(runs)
    fig, (ax,) = _figure(7.0, 4.5)
    drawn = 0
    for i, run in enumerate(items):
        for j, task in enumerate(sorted(tasks if tasks is not None else run.pass_k_tasks)):
            if task not in run.tasks:
                continue
            ks, values = _pass_curve(run.attempts[run.attempts["task"] == task])
            ax.plot(ks, values, "-o", color=_RUN_COLOURS[(i + j) % len(_RUN_COLOURS)],
                    label=f"{task}, {_label(run)}")
            drawn += 1
    if not drawn:
        raise DataError("no pass@k curve to draw: the runs have no code task (name the "
                        "tasks with tasks=[...]).")
    ax.set_xlabel("k (attempts per problem)")
    ax.set_ylabel("pass@k (points)")
    ax.set_ylim(0, 100)
    ax.set_title("pass@k: chance that at least one of k attempts passes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_score_history(table: pd.DataFrame) -> Figure:
    """Score over time with 95% intervals, a line per model and task.

    Args:
        table: the runs table of ``evals.runs.list_runs`` (columns date, model, task,
            score, ci_low, ci_high; scores as fractions).

    Raises:
        DataError: no scored run in the table.
    """
    import pandas as pd

    rows = table[table["score"].notna()].copy()
    if rows.empty:
        raise DataError("no finished run with a score to plot.")
    rows["when"] = pd.to_datetime(rows["date"], utc=True, errors="coerce")
    fig, (ax,) = _figure(9.0, 4.5)
    for i, ((model, task), group) in enumerate(rows.sort_values("when").groupby(
            ["model", "task"], sort=True)):
        y = 100 * group["score"].to_numpy(dtype=float)
        low = 100 * group["ci_low"].to_numpy(dtype=float)
        high = 100 * group["ci_high"].to_numpy(dtype=float)
        ax.errorbar(group["when"], y, yerr=[y - low, high - y], fmt="-o", capsize=3,
                    color=_RUN_COLOURS[i % len(_RUN_COLOURS)], label=f"{model} / {task}")
    ax.set_xlabel("run start (UTC)")
    ax.set_ylabel("score (points, 95% interval)")
    ax.set_ylim(0, 100)
    ax.set_title("Score over time per model and task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return fig


def save_figure(fig: Figure, folder: Path, name: str, dpi: int = 110) -> tuple[Path, Path]:
    """Write ``fig`` as ``folder/name.png`` and ``folder/name.svg``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    # No timestamp in the SVG, so two reports of one run are byte-identical.
    fig.savefig(png, dpi=dpi, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None})
    return png, svg


def write_figures(runs: Run | Sequence[Run], folder: Path) -> list[FigureFile]:
    """Draw and write the report's figures for one run or several (PNG and SVG).

    One run: measured vs published, a verdict grid per task, score vs length, usage
    distributions, pass@k for its code tasks. Several runs: the same overlaid run by run,
    and a verdict grid per run and task.
    """
    items = _runs(runs)
    out: list[FigureFile] = []

    def add(name: str, fig: Figure) -> None:
        title = fig.get_suptitle() or (fig.axes[0].get_title() if fig.axes else name)
        out.append(FigureFile(name, title or name, *save_figure(fig, folder, name)))

    add("published", plot_published(items))
    for k, run in enumerate(items):
        for task in run.tasks:
            prefix = f"run{k + 1}_" if len(items) > 1 else ""
            add(f"{prefix}grid_{_safe(task)}", plot_verdict_grid(run, task))
    add("score_vs_length", plot_score_vs_length(items))
    add("usage", plot_usage(items))
    if any(run.pass_k_tasks for run in items):
        add("pass_at_k", plot_pass_at_k(items))
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
