"""Two runs of the same tasks compared, paired by problem: the CI regression gate.

(Not named ``compare.py``: a submodule ``evals.compare`` would shadow the function
``evals.compare`` once imported.)

Pairing. Only scored attempts count (``records.SCORED_OUTCOMES``: a failed request says
nothing about the model). A problem is paired when both runs scored at least one attempt of
it; its score in each run is its fraction of correct attempts, and the difference of a task
is the mean over paired problems of ``new - base``, in points (0-100). The two scores shown
are over the paired problems too, so the difference is exactly their gap.

Interval. A percentile bootstrap over problems (the problem is the unit that varies; its
repeats move with it): ``resamples`` draws of the paired problems with replacement, from
``numpy.random.default_rng(seed)``, so the same two runs always give the same interval. One
paired problem gives the point interval.

Flips. Attempts are also paired by repeat: an attempt *lost* is right in the base and wrong
in the new run, *gained* the reverse. A problem with any lost or gained attempt is listed as
flipped: ``worse`` when it lost more than it gained, ``better`` when it gained more,
``mixed`` when they cancel.

Gate. ``dropped(x)`` names the tasks whose score fell by more than ``x`` points *and* whose
interval lies wholly below zero; ``evals compare --fail-on-drop x`` exits 1 when there is
one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from evals.errors import DataError
from evals.records import SCORED_OUTCOMES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from evals.api import Run

__all__ = ["RunComparison", "SettingDiff", "bootstrap_mean_interval", "compare_runs",
           "settings_diff"]

#: Flipped problems listed per direction in the text and Markdown renderings (the
#: ``flipped`` table always holds them all).
MAX_LISTED = 40


class SettingDiff(NamedTuple):
    """One setting whose value differs between the two manifests (values as text)."""

    setting: str
    base: str
    new: str


def bootstrap_mean_interval(diffs: np.ndarray[Any, Any], resamples: int, seed: int,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (one value per problem).

    Resamples are drawn in chunks so memory stays near 16 MB however many problems there
    are. Fewer than two values give the point interval ``(mean, mean)``; none give NaNs.
    """
    import numpy as np

    k = len(diffs)
    if k == 0:
        return math.nan, math.nan
    if k == 1 or resamples < 1:
        mean = float(diffs.mean())
        return mean, mean
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // k)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, k, size=(stop - start, k))
        means[start:stop] = diffs[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _scored(df: pd.DataFrame) -> pd.DataFrame:
    scored = df[df["outcome"].isin(list(SCORED_OUTCOMES))].copy()
    scored["correct"] = scored["correct"].eq(True)
    scored["sample_id"] = scored["sample_id"].astype(str)
    return scored[["task", "sample_id", "repeat", "correct"]]


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = json.dumps(value, sort_keys=True, default=str)


def _settings(run: Run, tasks: Iterable[str]) -> dict[str, str]:
    """The settings that can change a score, flattened to ``name -> JSON text``."""
    from evals.api import prompts_from_store

    m = run.manifest
    cfg = m.get("config") or {}
    out: dict[str, str] = {}
    _flatten({"model": cfg.get("model"), "endpoint": m.get("endpoint"),
              "profile": m.get("profile"), "seed": cfg.get("seed"),
              "system_prompt": cfg.get("system_prompt"),
              "harness_version": m.get("harness_version"), "grading": cfg.get("grading")},
             "", out)
    prompts = prompts_from_store(run)
    for task in tasks:
        body = {k: v for k, v in ((m.get("request_body") or {}).get(task) or {}).items()
                if k not in ("stream", "stream_options", "messages", "model")}
        dataset = {k: v for k, v in ((m.get("datasets") or {}).get(task) or {}).items()
                   if k in ("source", "fingerprint", "revision", "rows", "problems_used")}
        texts = sorted(json.dumps(v, sort_keys=True) for (t, _), v in prompts.items()
                       if t == task)
        digest = (hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12] if texts
                  else None)
        _flatten({"request": body,
                  "sampling": (m.get("request_settings") or {}).get(task),
                  "prompt_protocol": (m.get("prompt_protocols") or {}).get(task),
                  "prompts_sha256": digest,
                  "repeats": (m.get("repeats") or {}).get(task),
                  "dataset": dataset}, task, out)
    for key in [k for k in out if k.endswith(".origin")]:
        del out[key]  # where a value came from, not the value sent
    return out


def settings_diff(base: Run, new: Run, tasks: Iterable[str]) -> list[SettingDiff]:
    """The settings that differ between two runs' manifests for ``tasks``: model,
    endpoint, profile, seed, system prompt, sampling as sent, prompt protocol, a digest of
    the prompts sent (from the messages column or the run store), repeats, dataset
    fingerprint and source, harness (grader) version and grading options.

    A setting absent from one manifest shows as ``null`` there. Where each value came
    from (``origin``: flag, profile, task default) is not compared, only the value.
    """
    tasks = list(tasks)
    a, b = _settings(base, tasks), _settings(new, tasks)
    return [SettingDiff(key, a.get(key, "null"), b.get(key, "null"))
            for key in sorted(set(a) | set(b)) if a.get(key, "null") != b.get(key, "null")]


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Two runs compared (see the module docstring for the rules).

    Attributes:
        base / new: the two run folders' names.
        tasks: per common task: ``problems`` (paired), ``base_score`` and ``new_score``
            (points, over the paired problems), ``delta`` (points, new - base), ``ci_low``
            and ``ci_high`` (its paired 95% bootstrap interval, points), ``worse`` /
            ``better`` / ``mixed`` (flipped problems), ``lost`` / ``gained`` (attempts),
            ``unpaired`` (problems scored in one run only) and ``change`` (``worse`` /
            ``better`` when the interval excludes zero, else ``no significant change``).
        flipped: one row per flipped problem: task, sample_id, base_correct, base_n,
            new_correct, new_n, lost, gained, direction.
        settings: one row per differing setting: setting, base, new.
        only_base / only_new: tasks found in one run only (not compared).
        resamples / seed: the bootstrap's.
    """

    base: str
    new: str
    tasks: pd.DataFrame
    flipped: pd.DataFrame
    settings: pd.DataFrame
    only_base: tuple[str, ...]
    only_new: tuple[str, ...]
    resamples: int
    seed: int

    def dropped(self, points: float) -> list[str]:
        """The tasks whose score fell by more than ``points`` and whose paired interval
        excludes zero (lies wholly below it); empty when none did."""
        bad = self.tasks[(self.tasks["delta"] < -points) & (self.tasks["ci_high"] < 0)]
        return [str(t) for t in bad["task"]]

    def to_text(self, fail_on_drop: float | None = None) -> str:
        """A plain-text report for a terminal or CI log."""
        return _render(self, "text", fail_on_drop)

    def to_markdown(self, fail_on_drop: float | None = None) -> str:
        """A Markdown report for a pull-request comment or a CI job summary."""
        return _render(self, "md", fail_on_drop)


def compare_runs(base: Run, new: Run, *, resamples: int = 10_000, seed: int = 0
                 ) -> RunComparison:
    """Compare two loaded runs (``evals.compare`` is the public entry point).

    Raises:
        DataError: the runs share no task, or no problem of their common tasks was
            scored in both (nothing to pair).
    """
    import numpy as np
    import pandas as pd

    common = sorted(set(base.tasks) & set(new.tasks))
    if not common:
        raise DataError(
            f"nothing to pair: {base.name} has tasks {', '.join(base.tasks) or 'none'} and "
            f"{new.name} has {', '.join(new.tasks) or 'none'}; compare two runs of the same "
            "task(s).")
    a, b = _scored(base.attempts), _scored(new.attempts)
    task_rows: list[dict[str, Any]] = []
    flip_frames: list[pd.DataFrame] = []
    for task in common:
        pa_ = a[a["task"] == task].groupby("sample_id")["correct"].agg(["sum", "count"])
        pb_ = b[b["task"] == task].groupby("sample_id")["correct"].agg(["sum", "count"])
        problems = pa_.merge(pb_, how="inner", left_index=True, right_index=True,
                              suffixes=("_base", "_new"))
        if problems.empty:
            continue
        base_frac = problems["sum_base"] / problems["count_base"]
        new_frac = problems["sum_new"] / problems["count_new"]
        diffs = (new_frac - base_frac).to_numpy(dtype=float)
        low, high = bootstrap_mean_interval(diffs, resamples, seed)
        pairs = a[a["task"] == task].merge(b[b["task"] == task],
                                           on=["task", "sample_id", "repeat"],
                                           suffixes=("_base", "_new"))
        pairs["lost"] = pairs["correct_base"] & ~pairs["correct_new"]
        pairs["gained"] = ~pairs["correct_base"] & pairs["correct_new"]
        per = pairs.groupby("sample_id")[["lost", "gained"]].sum()
        per = per[(per["lost"] > 0) | (per["gained"] > 0)]
        flips = pd.DataFrame({
            "task": task, "sample_id": per.index.astype(str),
            "base_correct": problems.loc[per.index, "sum_base"].astype(int).to_numpy(),
            "base_n": problems.loc[per.index, "count_base"].astype(int).to_numpy(),
            "new_correct": problems.loc[per.index, "sum_new"].astype(int).to_numpy(),
            "new_n": problems.loc[per.index, "count_new"].astype(int).to_numpy(),
            "lost": per["lost"].astype(int).to_numpy(),
            "gained": per["gained"].astype(int).to_numpy(),
        })
        flips["direction"] = np.select([flips["lost"] > flips["gained"],
                                        flips["gained"] > flips["lost"]],
                                       ["worse", "better"], "mixed")
        flip_frames.append(flips)
        delta, low_p, high_p = 100 * float(diffs.mean()), 100 * low, 100 * high
        change = ("worse" if high_p < 0 else "better" if low_p > 0
                  else "no significant change")
        unpaired = len(set(pa_.index) ^ set(pb_.index))
        task_rows.append({
            "task": task, "problems": len(problems),
            "base_score": 100 * float(base_frac.mean()),
            "new_score": 100 * float(new_frac.mean()), "delta": delta,
            "ci_low": low_p, "ci_high": high_p,
            "worse": int((flips["direction"] == "worse").sum()),
            "better": int((flips["direction"] == "better").sum()),
            "mixed": int((flips["direction"] == "mixed").sum()),
            "lost": int(pairs["lost"].sum()), "gained": int(pairs["gained"].sum()),
            "unpaired": unpaired, "change": change,
        })
    if not task_rows:
        raise DataError(f"nothing to pair: no problem of {', '.join(common)} was scored in "
                        f"both {base.name} and {new.name} (are they runs of the same "
                        "dataset, and did their requests succeed?).")
    flip_columns = ["task", "sample_id", "base_correct", "base_n", "new_correct", "new_n",
                    "lost", "gained", "direction"]
    flipped = (pd.concat(flip_frames, ignore_index=True) if flip_frames
               else pd.DataFrame(columns=flip_columns))
    diffs_rows = settings_diff(base, new, [r["task"] for r in task_rows])
    return RunComparison(
        base=base.name, new=new.name, tasks=pd.DataFrame(task_rows),
        flipped=flipped[flip_columns].reset_index(drop=True),
        settings=pd.DataFrame(diffs_rows, columns=["setting", "base", "new"]),
        only_base=tuple(sorted(set(base.tasks) - set(common))),
        only_new=tuple(sorted(set(new.tasks) - set(common))),
        resamples=resamples, seed=seed,
    )


def _table(header: list[str], rows: list[list[str]], fmt: Literal["text", "md"]) -> list[str]:
    if fmt == "md":
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in rows]]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def _flip_lines(result: RunComparison, direction: str, fmt: Literal["text", "md"]
                ) -> list[str]:
    rows = result.flipped[result.flipped["direction"] == direction]
    if rows.empty:
        return []
    label = {"worse": "right in base, wrong in new", "better": "wrong in base, right in new",
             "mixed": "lost and gained as many attempts"}[direction]
    code = "`" if fmt == "md" else ""
    items = [f"{code}{r.task}/{r.sample_id}{code} ({r.base_correct}/{r.base_n} -> "
             f"{r.new_correct}/{r.new_n})" for r in rows.head(MAX_LISTED).itertuples()]
    more = f" ... and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return [f"Flipped {direction} ({label}; {len(rows)}): " + ", ".join(items) + more, ""]


def _render(result: RunComparison, fmt: Literal["text", "md"],
            fail_on_drop: float | None) -> str:
    head = (f"## Run comparison: `{result.base}` -> `{result.new}`" if fmt == "md"
            else f"Run comparison: {result.base} -> {result.new}")
    lines = [head, ""]
    header = ["task", "problems", "base", "new", "delta (points)", "95% paired CI", "change",
              "worse", "better"]
    rows = [[r.task, str(r.problems), f"{r.base_score:.2f}", f"{r.new_score:.2f}",
             f"{r.delta:+.2f}", f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]", r.change,
             str(r.worse), str(r.better)] for r in result.tasks.itertuples()]
    lines += [*_table(header, rows, fmt), ""]
    lines.append(f"Scores in points over the problems scored in both runs; interval: "
                 f"bootstrap over problems ({result.resamples} resamples, seed "
                 f"{result.seed}).")
    lines.append("")
    for direction in ("worse", "better", "mixed"):
        lines += _flip_lines(result, direction, fmt)
    if result.settings.empty:
        lines += ["Settings that differ: none.", ""]
    else:
        lines += ["Settings that differ:", ""]
        cut = 60
        srows = [[s.setting, s.base[:cut], s.new[:cut]] for s in result.settings.itertuples()]
        lines += [*_table(["setting", "base", "new"], srows, fmt), ""]
    for name, tasks in (("base", result.only_base), ("new", result.only_new)):
        if tasks:
            lines += [f"Only in {name} (not compared): {', '.join(tasks)}.", ""]
    unpaired = int(result.tasks["unpaired"].sum())
    if unpaired:
        lines += [f"{unpaired} problem(s) scored in one run only are left out.", ""]
    if fail_on_drop is not None:
        bad = result.dropped(fail_on_drop)
        verdict = ("FAIL: " + ", ".join(
            f"{t} fell {-float(result.tasks.set_index('task').loc[t, 'delta']):.2f} points "
            "and the interval excludes zero" for t in bad)) if bad else "pass"
        bold = "**" if fmt == "md" else ""
        lines += [f"{bold}Gate (--fail-on-drop {fail_on_drop:g} points): {verdict}{bold}", ""]
    return "\n".join(lines).rstrip() + "\n"
