"""``evals run --dry-run``: what a run would ask and cost, and how tight its interval would be.

Nothing is sent and no run folder is written. The estimate counts the attempts, the prompt
tokens (about four characters per token of the messages actually built), the completion
tokens (the model profile's expected length per attempt, else ``DEFAULT_COMPLETION_TOKENS``,
never above the budget), and the cost from the price table. It then gives the half-width of
the 95% interval the run can expect at its n (``evals.planning``), from the published score
of the model where there is one, else the worst case (50%), and, with ``--target-ci``, the n
that half-width needs: a 30-problem benchmark often cannot get there at any n, and it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.planning import HalfWidth, expected_half_width, n_for_half_width, problems_for_half_width
from evals.prepare import prepare_run

if TYPE_CHECKING:
    from evals.runner import RunConfig

__all__ = ["DEFAULT_COMPLETION_TOKENS", "TaskPlan", "dry_run"]

#: Completion tokens per attempt assumed when no profile gives an expected length: a rough
#: figure for reasoning models on competition problems (they often use 5k-20k).
DEFAULT_COMPLETION_TOKENS = 8000

_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """The estimate for one task of a run."""

    task: str
    problems: int
    repeats: int
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    completion_source: str
    cost: float | None
    published: float | None
    published_source: str | None
    half_width: HalfWidth
    target_ci: float | None
    n_needed: int | None
    problems_needed: int | None


def dry_run(cfg: RunConfig, target_ci: float | None = None) -> tuple[list[TaskPlan], str]:
    """Estimate ``cfg`` without sending anything.

    Returns:
        One plan per task, and a line on the price used (or its absence).

    Raises:
        ConfigError, DataError: as ``run`` would, before any request.
        ValueError: ``target_ci`` not above 0.
    """
    if target_ci is not None and target_ci <= 0:
        from evals.errors import ConfigError

        raise ConfigError(f"--target-ci {target_ci}: give a half-width in points above 0, "
                          "e.g. --target-ci 3.")
    prepared = prepare_run(cfg)
    price = prepared.price
    plans: list[TaskPlan] = []
    for task in prepared.tasks:
        samples = prepared.loaded[task.name].samples
        n = cfg.repeats(task.name, task.n)
        request = prepared.requests[task.name]
        system_chars = len(str(request.system["content"])) if request.system else 0
        prompt_chars = sum(system_chars + sum(len(text) for _, text in s.messages)
                           for s in samples)
        prompt_tokens = n * prompt_chars // _CHARS_PER_TOKEN
        per_attempt = (prepared.profile.expected_completion_tokens if prepared.profile
                       else DEFAULT_COMPLETION_TOKENS)
        source = (f"profile {prepared.profile.name}" if prepared.profile
                  else "no profile: rough default")
        budget = request.value("max_tokens")
        if budget is not None and budget < per_attempt:
            per_attempt, source = int(budget), "the max-tokens budget"
        attempts = n * len(samples)
        completion = attempts * per_attempt
        cost = price.cost(prompt_tokens, completion) if price else None
        rows = prepared.published.rows_for(task.name)
        pass1 = [r for r in rows if r.metric == "pass@1"]
        chosen = pass1[0] if pass1 else None
        p = chosen.score / 100 if chosen else None
        problems = max(1, len(samples))
        half = expected_half_width(problems, n, p)
        plans.append(TaskPlan(
            task=task.name, problems=len(samples), repeats=n, attempts=attempts,
            prompt_tokens=prompt_tokens, completion_tokens=completion,
            completion_source=source, cost=cost,
            published=chosen.score if chosen else None,
            published_source=chosen.source if chosen else None, half_width=half,
            target_ci=target_ci,
            n_needed=n_for_half_width(target_ci, problems, p) if target_ci else None,
            problems_needed=(problems_for_half_width(target_ci, n, p) if target_ci else None),
        ))
    if price is None:
        note = (f"No price known for {cfg.model!r} at {prepared.endpoint.provider!r}: add one "
                "with --prices PATH (provider,model,input_per_m,output_per_m,reasoning_per_m,"
                "source,date).")
    else:
        note = (f"Price: ${price.input_per_m}/M input, ${price.output_per_m}/M output "
                f"({price.provider} {price.model}; {price.source}).")
    return plans, note
