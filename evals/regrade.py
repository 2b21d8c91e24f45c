"""``evals grade``: responses produced elsewhere, graded with no model call into a run folder.

The same graders, table and summary as a run (``evals.runner``); the responses come from a
JSONL file instead of an endpoint, and ``--stop`` can cut each one where a server given
those stop sequences would have.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from evals.data import load_task_data
from evals.errors import DataError
from evals.grading.context import GradingContext, GradingOptions
from evals.output import AttemptWriter, finalize
from evals.records import Attempt, Response
from evals.registry import Registry, configure_tasks
from evals.runner import (
    RunResult,
    _base_manifest,
    _grade,
    _now,
    _row,
    _sanitize,
    writable_folder,
)

__all__ = ["GradeConfig", "cut_at_stop", "grade_responses"]


@dataclass(frozen=True, slots=True)
class GradeConfig:
    """What ``evals grade`` was asked to do.

    ``stop``: cut each response at the first of these before grading (``--stop``);
    ``model``: the model that wrote the responses, for the published comparison.
    """

    task: str
    responses: Path
    data: Path | None = None
    out: Path | None = None
    tasks_dirs: tuple[Path, ...] = ()
    results_dir: Path = Path("results")
    grading: GradingOptions = field(default_factory=GradingOptions)
    options: tuple[tuple[str, str], ...] = ()
    stop: tuple[str, ...] = ()
    model: str | None = None
    published: tuple[Path, ...] = ()
    skip_bad_rows: bool = False


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """``text`` up to the first occurrence of any of ``stop`` (what a server given these
    stop sequences would have returned; the stop string itself is not included).

    Example:
        >>> cut_at_stop("The answer is (B).\n\nQuestion: next", ("Question:",))
        'The answer is (B).\n\n'
    """
    cut = len(text)
    for item in stop:
        at = text.find(item)
        if 0 <= at < cut:
            cut = at
    return text[:cut]


async def grade_responses(cfg: GradeConfig) -> RunResult:
    """Grade responses produced elsewhere (``evals grade``) into a run folder.

    The responses file has one JSON object per line: ``id`` (the problem's id in the
    task's dataset), ``repeat`` (default 0), ``response`` and optionally ``reasoning`` and
    ``finish_reason``, plus whatever the task's ``prepare`` reads (multiple choice: the
    ``permutation`` the prompt used; without it the dataset's order). Inline think tags in
    ``response`` are separated as in a live run.

    Raises:
        DataError: a line is not JSON, lacks ``id``/``response``, names an unknown id, or
            repeats an (id, repeat) pair; every bad line is listed.
    """
    from evals.parsing import assemble_answer

    registry = Registry(tasks_dirs=cfg.tasks_dirs)
    task = configure_tasks([registry.get(cfg.task)], cfg.options)[0]
    loaded = load_task_data(task, cfg.data, skip_bad_rows=cfg.skip_bad_rows)
    by_id = {s.id: s for s in loaded.samples}
    if not cfg.responses.is_file():
        raise DataError(f"--responses {cfg.responses}: no such file.")
    records: list[tuple[Attempt, Response]] = []
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    with cfg.responses.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                sample_id = str(item["id"])
                repeat = int(item.get("repeat", 0))
                text = item["response"]
                if not isinstance(text, str):
                    raise TypeError("'response' must be a string")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                problems.append(f"line {number}: {type(exc).__name__}: {exc}")
                continue
            if sample_id not in by_id:
                problems.append(f"line {number}: id {sample_id!r} is not in {loaded.source}")
                continue
            if (sample_id, repeat) in seen:
                problems.append(f"line {number}: ({sample_id!r}, repeat {repeat}) repeats")
                continue
            seen.add((sample_id, repeat))
            given = item.get("reasoning")
            if cfg.stop:
                text = cut_at_stop(text, cfg.stop)
            answer, reasoning, unclosed = assemble_answer(
                text, given if isinstance(given, str) else "")
            finish = item.get("finish_reason")
            sample = by_id[sample_id]
            if task.prepare is not None:
                try:
                    sample = task.prepare(sample, None, item)
                except (KeyError, TypeError, ValueError) as exc:
                    problems.append(f"line {number}: {exc}")
                    continue
            records.append((
                Attempt(task.name, sample, repeat, int(item.get("seed") or 0)),
                Response(text=answer, reasoning=reasoning,
                         finish_reason=finish if isinstance(finish, str) else None,
                         reasoning_unclosed=unclosed),
            ))
    if problems:
        shown = "; ".join(problems[:5])
        raise DataError(
            f"{len(problems)} bad line(s) in --responses {cfg.responses}: {shown}. Each line "
            "needs 'id' (a problem id of the task's dataset), 'response', and optionally "
            "'repeat' and 'reasoning'."
        )
    ident = hashlib.sha256(str(cfg.responses.resolve()).encode()).hexdigest()[:10]
    out_dir = cfg.out or cfg.results_dir / f"graded-{_sanitize(task.name)}-{ident}"
    writable_folder(out_dir)
    model = cfg.model or f"(from {cfg.responses.name})"
    config = {"task": task.name, "responses": str(cfg.responses),
              "data": str(cfg.data) if cfg.data else None, "model": model,
              "stop": list(cfg.stop), "prompt_protocol": task.protocol}
    manifest = _base_manifest("grade", config, {task.name: loaded})
    writer = AttemptWriter(out_dir / "attempts.partial.jsonl")

    async def grade_one(attempt: Attempt, response: Response) -> None:
        try:
            outcome, grade = await _grade(task, response, attempt.sample)
            writer.write(_row(attempt, model, outcome, grade, response, False, None))
        finally:
            slots.release()

    slots = asyncio.Semaphore(max(8, 4 * cfg.grading.workers()))
    try:
        async with GradingContext(cfg.grading) as grading:
            if task.needs_sandbox:
                grading.executor()
            async with asyncio.TaskGroup() as group:
                for attempt, response in records:  # a task per free slot, not per line
                    await slots.acquire()
                    group.create_task(grade_one(attempt, response))
    finally:
        writer.close()
    manifest.update(status="complete", ended=_now())
    context = None
    if cfg.model:
        from evals.published import RunSettings, load_published
        from evals.verdicts import PublishedContext

        repeats = max((a.repeat for a, _ in records), default=0) + 1
        settings = RunSettings(n=repeats, temperature=None, top_p=None, max_tokens=None,
                               prompt=task.protocol, since=None, until=None)
        context = PublishedContext(cfg.model, load_published(cfg.published),
                                   {task.name: settings})
    summary = finalize(out_dir, writer.path, manifest, {task.name: task.subsets},
                       frozenset({task.name}) if task.pass_k else frozenset(), context)
    return RunResult(out_dir, summary, manifest)
