"""Everything a run resolves before its first request, shared by ``run`` and ``--dry-run``.

Bad input fails here, with one clear message, before anything is sent or written: the
tasks and their options, the endpoint and its key variable, the data, the model profile,
the per-task request settings, the published scores and the price of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.data import LoadedData, load_task_data
from evals.errors import ConfigError
from evals.providers import Endpoint, resolve_endpoints
from evals.registry import Registry, Task, configure_tasks
from evals.settings import TaskRequest, choose_profile, task_request

if TYPE_CHECKING:
    from evals.pricing import Price
    from evals.profiles import Profile
    from evals.runner import RunConfig
    from evals.verdicts import PublishedContext

__all__ = ["PreparedRun", "prepare_run"]


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A run resolved and checked, nothing sent yet. ``endpoint`` is the first of
    ``endpoints`` (several when ``--base-url`` is repeated)."""

    tasks: list[Task]
    endpoint: Endpoint
    loaded: dict[str, LoadedData]
    profile: Profile | None
    requests: dict[str, TaskRequest]
    published: PublishedContext
    price: Price | None
    total: int
    endpoints: tuple[Endpoint, ...] = ()

    def repeats(self, cfg: RunConfig) -> dict[str, int]:
        return {t.name: cfg.repeats(t.name, t.n) for t in self.tasks}


def _check_numbers(cfg: RunConfig) -> None:
    if cfg.n is not None and cfg.n < 1:
        raise ConfigError(f"--n {cfg.n}: the number of repeats must be at least 1.")
    if cfg.concurrency < 1:
        raise ConfigError(f"--concurrency {cfg.concurrency}: must be at least 1.")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"--limit {cfg.limit}: give a number of problems of at least 1 "
                          "(or leave --limit out to run them all).")
    if cfg.max_cost is not None and cfg.max_cost <= 0:
        raise ConfigError(f"--max-cost {cfg.max_cost}: give a budget in USD above 0.")
    for task, n in cfg.task_n:
        if n < 1:
            raise ConfigError(f"repeats {n} for task {task!r}: must be at least 1.")
    if any(not s for s in cfg.stop):
        raise ConfigError("--stop '': a stop sequence cannot be empty.")


def _task_options(cfg: RunConfig, tasks: list[Task]) -> dict[str, dict[str, str]]:
    """Per task, the run's options it accepts, then its own (a suite's) over them."""
    own = dict(cfg.task_options)
    unused = {k for k, _ in cfg.options} - {name for t in tasks for name in t.options}
    if unused and own:  # (without a suite, configure_tasks says which task takes what)
        raise ConfigError(f"No task of this run accepts the option(s) {', '.join(sorted(unused))}"
                          "; see `evals list` for each task's options.")
    return {t.name: {**{k: v for k, v in cfg.options if k in t.options}, **dict(own.get(t.name, ()))}
            for t in tasks}


def prepare_run(cfg: RunConfig) -> PreparedRun:
    """Resolve and check ``cfg``.

    Raises:
        ConfigError, DataError: with the input and the fix, before any request.
    """
    from evals.pricing import load_prices
    from evals.published import RunSettings, canonical_model, load_published
    from evals.verdicts import PublishedContext

    _check_numbers(cfg)
    registry = Registry(tasks_dirs=cfg.tasks_dirs)
    raw = registry.get_many(cfg.tasks)
    options = _task_options(cfg, raw)
    if cfg.task_options:
        tasks = [t.with_options(options[t.name]) for t in raw]
    else:
        tasks = configure_tasks(raw, cfg.options)
    data = dict(cfg.data)
    unknown = set(data) - {t.name for t in tasks}
    if unknown:
        raise ConfigError(
            f"--data given for {', '.join(sorted(unknown))}, which is not among the tasks run "
            f"({', '.join(cfg.tasks)}). Use --data TASK=PATH with one of those."
        )
    endpoints = resolve_endpoints(cfg.provider, cfg.base_url, cfg.api_key_env)
    endpoint = endpoints[0]
    profile = choose_profile(cfg.profile, cfg.model)
    published_table = load_published(cfg.published)
    prices = load_prices(cfg.prices)
    price = prices.lookup(endpoint.provider, cfg.model, canonical_model)
    if cfg.max_cost is not None and price is None:
        raise ConfigError(
            f"--max-cost {cfg.max_cost}: no price is known for model {cfg.model!r} at "
            f"provider {endpoint.provider!r}, so the cost cannot be measured. Add a row "
            "(provider,model,input_per_m,output_per_m,reasoning_per_m,source,date) in a CSV "
            "file and pass it with --prices PATH."
        )
    flags = {"temperature": cfg.sampling.temperature, "top_p": cfg.sampling.top_p,
             "top_k": cfg.sampling.top_k, "max_tokens": cfg.sampling.max_tokens,
             "system_prompt": cfg.system_prompt}
    suite_tokens = dict(cfg.task_max_tokens)
    requests = {
        t.name: task_request(
            profile, endpoint.provider, flags=flags,
            suite={"max_tokens": suite_tokens.get(t.name)}, suite_name=cfg.suite,
            task_defaults={"max_tokens": t.max_tokens}, stop=cfg.stop, task_stop=t.stop)
        for t in tasks
    }
    loaded = {t.name: load_task_data(t, data.get(t.name), cfg.limit, cfg.skip_bad_rows)
              for t in tasks}
    total = sum(len(loaded[t.name].samples) * cfg.repeats(t.name, t.n) for t in tasks)
    settings = {
        t.name: RunSettings(
            n=cfg.repeats(t.name, t.n),
            temperature=requests[t.name].value("temperature"),
            top_p=requests[t.name].value("top_p"),
            max_tokens=requests[t.name].value("max_tokens"),
            prompt=t.protocol,
            since=options[t.name].get("since"),
            until=options[t.name].get("until"),
        )
        for t in tasks
    }
    context = PublishedContext(cfg.model, published_table, settings)
    return PreparedRun(tasks, endpoint, loaded, profile, requests, context, price, total,
                       endpoints)
