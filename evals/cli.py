"""The ``evals`` command line: thin over ``evals.runner`` and ``evals.simulator``.

Built on click directly: typer (which we used first) now validates every option through
pydantic, whose import alone costs about 0.2 s before the first request is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from evals.errors import ConfigError, EvalsError
from evals.grading.context import ExecutorKind, GradingOptions

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
def app() -> None:
    """Evaluate reasoning models through OpenAI-compatible APIs, and compare with their
    published scores.

    Benchmarks: math (AIME 2024, AIME 2025, MATH-500), multiple choice (GPQA Diamond,
    MMLU-Pro) and code (LiveCodeBench, HumanEval; run in a sandbox). `evals demo` runs the
    whole pipeline offline on a simulated model; `evals list` shows tasks, suites, profiles
    and providers.
    """


def data_option(f: F) -> F:
    return click.option("--data", multiple=True, help="Local data file: PATH (one task) or "
                        "TASK=PATH; repeatable.")(f)


def skip_bad_rows_option(f: F) -> F:
    return click.option("--skip-bad-rows", is_flag=True, default=False,
                        help="Leave out data rows the task cannot read (listed in the summary "
                        "and the manifest) instead of refusing the file.")(f)


def tasks_dir_option(f: F) -> F:
    return click.option("--tasks-dir", multiple=True, type=click.Path(path_type=Path),
                        help="Extra folder of task plugins.")(f)


def task_option_options(f: F) -> F:
    """--since, --until, --release and --option, shared by run and grade."""
    for decorator in reversed((
        click.option("--since", help="Only problems from this date on (YYYY-MM-DD; tasks "
                     "with dates, e.g. livecodebench)."),
        click.option("--until", help="Only problems up to this date (YYYY-MM-DD)."),
        click.option("--release", help="Dataset release tag, e.g. livecodebench release_v5 "
                     "(cumulative) or v5 (only the problems new in v5)."),
        click.option("--option", "option", multiple=True,
                     help="Task option KEY=VALUE (repeatable); see `evals list`."),
    )):
        f = decorator(f)
    return f


def grading_options(f: F) -> F:
    """--grade-timeout, --grading-processes, --unsafe-no-sandbox, --executor, --ray-address."""
    for decorator in reversed((
        click.option("--grade-timeout", type=float, default=5.0, show_default=True,
                     help="Wall limit in seconds per answer for math equivalence (graded "
                     "'timeout' past it)."),
        click.option("--grading-processes", type=int, default=None,
                     help="Grading worker processes / parallel sandboxed programs (default: "
                     "the cores)."),
        click.option("--unsafe-no-sandbox", is_flag=True, default=False,
                     help="Run model-written code WITHOUT bubblewrap isolation (only if you "
                     "accept the risk)."),
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help="Where model-written code runs: this machine's processes, or a Ray "
                     "cluster (needs pip install -e \".[ray]\")."),
        click.option("--ray-address", default=None,
                     help="Ray cluster for --executor ray, e.g. ray://head:10001 (default: "
                     "$RAY_ADDRESS, else a local Ray instance)."),
    )):
        f = decorator(f)
    return f


def make_console(stderr: bool = False) -> Any:
    """A rich console; off a terminal (a CI log, a pipe) as wide as ``$COLUMNS`` or 200
    columns, so tables are not cut at rich's default of 80."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=200)
    return console


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _run_interruptible(console: Any, cfg: Any, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` (the pipeline of ``cfg``); on Ctrl-C, once the run has committed every
    answer it received and closed its files, say how many answers its folder keeps and how
    to resume, and exit 130."""
    try:
        return _run_async(coro)
    except KeyboardInterrupt:
        from evals.runner import run_folder
        from evals.store import stored_answers

        kept = stored_answers(run_folder(cfg) / "store.sqlite")
        count = "the" if kept is None else str(kept)
        console.print(f"[yellow]Interrupted: {count} answers kept; rerun the same command to "
                      "resume.[/]", highlight=False)
        raise click.exceptions.Exit(130) from None


def parse_data(values: tuple[str, ...] | list[str] | None, tasks: tuple[str, ...] | list[str]) -> tuple[tuple[str, Path], ...]:
    """``--data`` values as (task, path) pairs; a bare PATH needs exactly one task."""
    pairs: list[tuple[str, Path]] = []
    for value in values or []:
        name, sep, path = value.partition("=")
        if sep and name and not Path(value).exists():
            pairs.append((name, Path(path)))
        elif len(tasks) == 1:
            pairs.append((tasks[0], Path(value)))
        else:
            raise ConfigError(
                f"--data {value}: with several tasks, say which one: --data TASK=PATH "
                f"(tasks: {', '.join(tasks)})."
            )
    return tuple(pairs)


def _fail(exc: BaseException) -> None:
    from rich.console import Console
    from rich.markup import escape

    # Escaped: a message may hold brackets (pip install -e ".[ray]") that are not markup.
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                               markup=True, soft_wrap=True)
    raise click.exceptions.Exit(2)


#: Seconds between two plain progress lines off a terminal ($EVALS_PROGRESS_INTERVAL).
PROGRESS_INTERVAL_S = 10.0


def _plain_progress() -> Callable[[Any, Any], None]:
    """Off a terminal (a CI log, ``nohup``), one plain line at a steady interval: done of
    total, score so far, errors, retries, rate; and one when the last attempt is done."""
    try:
        interval = float(os.environ.get("EVALS_PROGRESS_INTERVAL", PROGRESS_INTERVAL_S))
    except ValueError:
        interval = PROGRESS_INTERVAL_S
    state = {"last": 0.0}

    def hook(progress: Any, client: Any) -> None:
        now = time.perf_counter()
        finished = progress.done >= progress.total
        if now - state["last"] < interval and not finished:
            return
        state["last"] = now
        elapsed = max(1e-9, now - progress.started)
        score = progress.score
        asked = progress.done - progress.cached
        print(f"progress: {progress.done}/{progress.total} attempts "
              f"({100 * progress.done / max(1, progress.total):.0f}%), score so far "
              f"{'-' if score is None else f'{score:.3f}'}, errors {progress.errors}, "
              f"retries {client.stats.retries}, {asked / elapsed:.1f} asked/s, "
              f"{progress.cached} from the store, {elapsed:.0f} s", flush=True)

    return hook


def _progress_hook(console: Any) -> tuple[Any, Any]:
    """A rich progress bar and the hook that feeds it; nothing (not even the import) when
    the output is not a terminal (CI logs, pipes), where a bar is not drawn anyway."""
    if not console.is_terminal:
        return contextlib.nullcontext(), _plain_progress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("score {task.fields[score]}"),
        TextColumn("{task.fields[tps]} tok/s"),
        TextColumn("in flight {task.fields[inflight]}"),
        TextColumn("retries {task.fields[retries]}"),
        TextColumn("errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=4,
    )
    state: dict[str, Any] = {"id": None, "last": 0.0}

    def hook(progress: Any, client: Any) -> None:
        now = time.perf_counter()
        if state["id"] is None:
            state["id"] = bar.add_task("running", total=progress.total, score="-", tps="-",
                                       inflight=0, retries=0, errors=0)
        elif now - state["last"] < 0.1 and progress.done < progress.total:
            return
        state["last"] = now
        elapsed = max(1e-9, now - progress.started)
        score = progress.score
        bar.update(
            state["id"], completed=progress.done,
            score="-" if score is None else f"{score:.3f}",
            tps=f"{progress.tokens / elapsed:,.0f}", inflight=client.limiter.in_flight,
            retries=client.stats.retries, errors=progress.errors,
        )

    return bar, hook


def task_options(since: str | None, until: str | None, release: str | None,
                 option: tuple[str, ...] | list[str] | None) -> tuple[tuple[str, str], ...]:
    """The task options given on the command line, as (key, value) pairs."""
    found: dict[str, str] = {}
    for key, value in (("since", since), ("until", until), ("release", release)):
        if value is not None:
            found[key] = value
    for item in option or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE, e.g. --option since=2024-08-01.")
        found[key.strip()] = value.strip()
    return tuple(sorted(found.items()))


def _print_summary(console: Any, result: Any) -> None:
    from rich.table import Table

    main = [r for r in result.summary_rows if not r["subset"]]
    simulated = bool(result.manifest.get("simulated"))
    title = "Summary (SIMULATED model server)" if simulated else "Summary"
    table = Table(title=title)
    for column in ("task", "score", "95% CI", "problems", "repeats", "scored", "errors",
                   "truncated"):
        table.add_column(column)
    for row in main:
        table.add_row(
            row["task"] + (" (simulated)" if simulated else ""), f"{row['score']:.3f}",
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]", str(row["problems"]),
            str(row["repeats"]), str(row["scored"]), str(row["error"]), str(row["truncated"]),
        )
    console.print(table)
    _print_published(console, result)
    for row in main:
        ks = [k for k in row if k.startswith("pass@")]
        if ks:
            console.print(f"{row['task']}: " + ", ".join(f"{k} {row[k]:.3f}" for k in ks))
    from evals.report import status_lines

    for head, rest in status_lines(main, result.manifest):
        console.print(f"[yellow]{head}[/]{rest}" if head else rest, highlight=False,
                      markup=bool(head))
    console.print(f"Run folder: {result.out_dir}")


def _print_published(console: Any, result: Any) -> None:
    """The published comparison: every published score of the model for the run's tasks."""
    from rich.table import Table

    comparisons = result.manifest.get("published_comparison") or []
    main = [r for r in result.summary_rows if not r["subset"]]
    missing = [r["task"] for r in main if r.get("verdict") == "no published score"]
    if comparisons:
        title = "Published scores" + (" (answers SIMULATED: this tests the harness)"
                                      if result.manifest.get("simulated") else "")
        table = Table(title=title)
        for column in ("task", "metric", "published", "measured [95% CI]", "delta",
                       "verdict", "settings that differ", "source"):
            table.add_column(column)
        for c in comparisons:
            measured = ("-" if c["measured"] is None else
                        f"{c['measured']:.2f} [{c['ci_low']:.2f}, {c['ci_high']:.2f}]")
            colour = {"consistent": "green", "below": "red", "above": "yellow"}.get(
                c["verdict"], "white")
            table.add_row(c["task"], c["metric"], f"{c['published']:.2f}", measured,
                          "-" if c["delta"] is None else f"{c['delta']:+.2f}",
                          f"[{colour}]{c['verdict']}[/]",
                          "; ".join(c["settings_differ"]) or "none",
                          f"{c['source']} ({c['source_date']})")
        console.print(table)
    if missing:
        console.print(f"No published score for {result.manifest['config'].get('model')} on "
                      f"{', '.join(missing)} (add rows with --published PATH).")


@app.command(short_help="Run tasks against a model; rerun the same command to resume.")
@click.argument("tasks", nargs=-1)
@click.option("--model", help="Model name sent to the endpoint (a suite may name one).")
@click.option("--suite", help="Run a suite: a model card's benchmarks with its settings (a "
              "shipped name, see `evals list`, or a .toml file).")
@click.option("--profile", help="Model profile (recommended sampling and system prompt); "
              "default: the one the model name matches; 'none' for none.")
@click.option("--provider", help="Provider preset (see `evals list`).")
@click.option("--base-url", multiple=True, help="OpenAI-compatible base URL; repeat it to "
              "spread the run over replicas (the least busy first, failover when one dies).")
@click.option("--api-key-env", help="Environment variable holding the API key.")
@click.option("--n", "n", type=int, show_default="the task's",
              help="Repeats per problem.")
@click.option("--limit", type=int, help="Only the first K problems.")
@click.option("--concurrency", type=int, default=64, show_default=True,
              help="Most requests in flight.")
@data_option
@click.option("--seed", type=int, default=0, show_default=True,
              help="Run seed (per-attempt seeds derive from it).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Run folder (default under results/).")
@click.option("--stream/--no-stream", default=False, show_default=True,
              help="Stream responses (time to first token).")
@click.option("--temperature", type=float, help="Sampling temperature.")
@click.option("--top-p", type=float, help="Nucleus sampling top-p.")
@click.option("--max-tokens", type=int, help="Generation budget, reasoning included.")
@click.option("--top-k", type=int, help="Top-k sampling (not an OpenAI field; most local "
              "servers take it).")
@click.option("--system-prompt", help="System message (replaces the profile's).")
@click.option("--stop", multiple=True, help="Stop sequence sent to the server; repeatable.")
@click.option("--published", multiple=True, type=click.Path(path_type=Path),
              help="Extra published-scores CSV (same columns as the shipped one); repeatable.")
@click.option("--prices", multiple=True, type=click.Path(path_type=Path),
              help="Extra price CSV (provider,model,input_per_m,output_per_m,"
              "reasoning_per_m,source,date); repeatable.")
@click.option("--dry-run", is_flag=True, default=False,
              help="Print the attempts, estimated tokens and cost, and the interval to "
              "expect; send nothing.")
@click.option("--target-ci", type=float, help="With --dry-run: the 95%% half-width in points "
              "you want; prints the n it needs.")
@click.option("--max-cost", type=float, help="Stop asking once this invocation has spent "
              "this many USD (resumable).")
@skip_bad_rows_option
@tasks_dir_option
@click.option("--max-retries", type=int, default=8, show_default=True,
              help="Retries per request.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds of silence before a retry.")
@click.option("--max-downtime", type=float, default=300.0, show_default=True,
              help="Seconds to wait for an endpoint that stopped answering (a restart) "
              "before the run stops.")
@task_option_options
@grading_options
def run(
    tasks: tuple[str, ...], model: str, provider: str | None, base_url: tuple[str, ...],
    api_key_env: str | None, n: int | None, limit: int | None, concurrency: int,
    data: tuple[str, ...], seed: int, out: Path | None, stream: bool,
    temperature: float | None, top_p: float | None, max_tokens: int | None,
    system_prompt: str | None, tasks_dir: tuple[Path, ...], max_retries: int,
    timeout: float, since: str | None, until: str | None, release: str | None,
    option: tuple[str, ...], grade_timeout: float, grading_processes: int | None,
    unsafe_no_sandbox: bool, executor: str, ray_address: str | None, suite: str | None,
    profile: str | None, top_k: int | None,
    stop: tuple[str, ...], published: tuple[Path, ...], prices: tuple[Path, ...],
    dry_run: bool, target_ci: float | None, max_cost: float | None, skip_bad_rows: bool,
    max_downtime: float,
) -> None:
    """Run TASKS (or a --suite) against a model and write a run folder (rerun the same
    command to resume)."""

    from evals.runner import RunConfig, Sampling
    from evals.runner import run as run_pipeline

    console = make_console()
    try:
        from_suite = _suite_fields(suite, tasks, model, profile)
        tasks = from_suite.pop("tasks")
        cfg = RunConfig(
            tasks=tuple(tasks), provider=provider,
            base_url=_base_urls(base_url, from_suite), max_downtime=max_downtime,
            api_key_env=api_key_env, n=n, limit=limit, concurrency=concurrency,
            data=parse_data(data, tasks), seed=seed, out=out, stream=stream,
            sampling=Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                              top_k=top_k),
            system_prompt=system_prompt, tasks_dirs=tuple(tasks_dir or ()),
            max_retries=max_retries, timeout=timeout,
            grading=GradingOptions(timeout_s=grade_timeout, processes=grading_processes,
                                   unsafe_no_sandbox=unsafe_no_sandbox,
                                   executor=cast(ExecutorKind, executor),
                                   ray_address=ray_address),
            options=task_options(since, until, release, option), stop=tuple(stop),
            published=tuple(published), prices=tuple(prices), max_cost=max_cost,
            skip_bad_rows=skip_bad_rows, **from_suite,
        )
        if target_ci is not None and not dry_run:
            raise ConfigError("--target-ci goes with --dry-run: add --dry-run to see the n "
                              "a half-width needs.")
        if dry_run:
            _print_dry_run(console, cfg, target_ci)
            return
        bar, hook = _progress_hook(console)
        with bar:
            result = _run_interruptible(console, cfg, run_pipeline(cfg, on_progress=hook))
    except EvalsError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted. Everything answered so far is stored: rerun the "
                      "same command to resume.[/]")
        raise click.exceptions.Exit(130) from None
    _print_summary(console, result)
    if result.status == "budget":
        spent = result.manifest.get("budget", {}).get("spent", 0.0)
        console.print(f"[yellow]Budget reached: this invocation spent ${spent:.4f} of "
                      f"--max-cost {cfg.max_cost}; {result.not_asked} attempt(s) were not "
                      "asked. Rerun the same command (with a budget left) to continue; "
                      "nothing answered is asked again.[/]")
        raise click.exceptions.Exit(EXIT_INCOMPLETE)
    if result.status == "incomplete":
        raise click.exceptions.Exit(EXIT_INCOMPLETE)


#: Exit status of a run that ended without scoring every attempt: requests that failed after
#: their retries, answers that could not be graded, or a budget reached. (2: the input was
#: refused or the endpoint refused the run; 130: interrupted.)
EXIT_INCOMPLETE = 3


def _suite_fields(suite: str | None, tasks: tuple[str, ...], model: str | None,
                  profile: str | None) -> dict[str, Any]:
    """RunConfig fields from ``--suite`` (tasks, model, profile, per-task n, budgets and
    options), with the command line's tasks, model and profile over the suite's."""
    if suite is None:
        if not tasks:
            raise ConfigError("Name the tasks to run (e.g. `evals run aime2025 ...`) or a "
                              "suite with --suite NAME; `evals list` shows both.")
        if not model:
            raise ConfigError("--model is required: the model name the endpoint serves.")
        return {"tasks": tasks, "model": model, "profile": profile}
    from evals.suites import load_suite

    found = load_suite(suite)
    if tasks:
        raise ConfigError(f"--suite {suite} names its own tasks "
                          f"({', '.join(t.name for t in found.tasks)}); drop the task names "
                          "or the --suite.")
    if not (model or found.model):
        raise ConfigError(f"--suite {suite} names no model: add --model NAME.")
    return {
        "tasks": tuple(t.name for t in found.tasks),
        "model": model or found.model,
        "profile": profile or found.profile,
        "suite": found.name,
        "task_n": tuple((t.name, t.n) for t in found.tasks if t.n),
        "task_max_tokens": tuple((t.name, t.max_tokens) for t in found.tasks if t.max_tokens),
        "task_options": tuple((t.name, t.options) for t in found.tasks if t.options),
        "base_urls": found.base_urls,
    }


def _base_urls(given: tuple[str, ...], from_suite: dict[str, Any]
               ) -> str | tuple[str, ...] | None:
    """``--base-url`` (repeatable) or else the suite's ``base_urls``: one URL as a string,
    several as a tuple, none as None (``RunConfig.base_url``)."""
    urls = tuple(given) or tuple(from_suite.pop("base_urls", ()))
    from_suite.pop("base_urls", None)
    return urls[0] if len(urls) == 1 else urls or None


def _print_dry_run(console: Any, cfg: Any, target_ci: float | None) -> None:
    from rich.table import Table

    from evals.dryrun import dry_run

    plans, note = dry_run(cfg, target_ci)
    table = Table(title=f"Dry run: {cfg.model} (nothing sent)")
    for column in ("task", "problems", "n", "attempts", "prompt tok", "completion tok (est.)",
                   "cost (est.)", "published", "95% half-width at this n"):
        table.add_column(column)
    for p in plans:
        hw = p.half_width
        table.add_row(
            p.task, str(p.problems), str(p.repeats), f"{p.attempts:,}", f"{p.prompt_tokens:,}",
            f"{p.completion_tokens:,} ({p.completion_source})",
            "-" if p.cost is None else f"${p.cost:,.2f}",
            "-" if p.published is None else f"{p.published:.2f}",
            f"±{hw.expected:.1f} pts (±{hw.best:.1f} if problems were equally hard, "
            f"±{hw.floor:.1f} at any n if all-or-nothing)",
        )
    console.print(table)
    total = sum(p.cost for p in plans if p.cost is not None)
    console.print(f"Attempts: {sum(p.attempts for p in plans):,}; estimated cost: "
                  + (f"${total:,.2f}" if any(p.cost is not None for p in plans) else "unknown")
                  + f". {note}")
    for p in plans:
        basis = (f"published {p.published:.2f}" if p.published is not None
                 else "no published score: worst case 50%")
        if p.target_ci is None:
            continue
        if p.n_needed is None:
            console.print(f"{p.task}: ±{p.target_ci} points is out of reach at any n with "
                          f"{p.problems} problems ({basis}); at n={p.repeats} it would take "
                          f"about {p.problems_needed} problems.")
        else:
            console.print(f"{p.task}: ±{p.target_ci} points needs n = {p.n_needed} "
                          f"({basis}; half of the variance assumed between problems).")


@app.command(short_help="Grade responses produced elsewhere, with no model call.")
@click.argument("task")
@click.option("--responses", required=True, type=click.Path(path_type=Path),
              help="JSONL: id, repeat, response[, reasoning].")
@click.option("--data", type=click.Path(path_type=Path), help="Local data file for the task.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Run folder (default under results/).")
@click.option("--stop", multiple=True, help="Cut each response at the first of these before "
              "grading, as a server given them would have; repeatable.")
@click.option("--model", help="The model that wrote the responses (for the published "
              "comparison).")
@click.option("--published", multiple=True, type=click.Path(path_type=Path),
              help="Extra published-scores CSV; repeatable.")
@skip_bad_rows_option
@tasks_dir_option
@task_option_options
@grading_options
def grade(
    task: str, responses: Path, data: Path | None, out: Path | None, stop: tuple[str, ...],
    model: str | None, published: tuple[Path, ...], skip_bad_rows: bool,
    tasks_dir: tuple[Path, ...], since: str | None, until: str | None, release: str | None,
    option: tuple[str, ...], grade_timeout: float, grading_processes: int | None,
    unsafe_no_sandbox: bool, executor: str, ray_address: str | None,
) -> None:
    """Grade responses produced elsewhere, with no model call, into a run folder."""

    from evals.regrade import GradeConfig, grade_responses

    console = make_console()
    try:
        cfg = GradeConfig(task=task, responses=responses, data=data, out=out,
                          tasks_dirs=tuple(tasks_dir or ()),
                          grading=GradingOptions(timeout_s=grade_timeout,
                                                 processes=grading_processes,
                                                 unsafe_no_sandbox=unsafe_no_sandbox,
                                                 executor=cast(ExecutorKind, executor),
                                                 ray_address=ray_address),
                          options=task_options(since, until, release, option),
                          stop=tuple(stop), model=model, published=tuple(published),
                          skip_bad_rows=skip_bad_rows)
        if any(not item for item in stop):
            raise ConfigError("--stop '': a stop sequence cannot be empty.")
        result = _run_async(grade_responses(cfg))
    except EvalsError as exc:
        _fail(exc)
    _print_summary(console, result)


@app.command(name="list", short_help="List the tasks and the provider presets.")
@tasks_dir_option
def list_(tasks_dir: tuple[Path, ...]) -> None:
    """List the tasks and the provider presets."""
    from rich.table import Table

    from evals.providers import PROVIDERS
    from evals.registry import Registry

    console = make_console()
    try:
        registry = Registry(tasks_dirs=tuple(tasks_dir or ()))
        described = [(name, doc, registry.get(name)) for name, doc in registry.describe()]
    except EvalsError as exc:
        _fail(exc)
    tasks_table = Table(title="Tasks")
    for column in ("task", "description", "repeats", "options", ("prompt protocols "
                   "(--option prompt=NAME; first: default)")):
        tasks_table.add_column(column)
    for name, doc, built in described:
        protocols = "\n".join(f"{p}: {d}" for p, d in built.protocols) or "-"
        tasks_table.add_row(name, doc, str(built.n), ", ".join(built.options) or "-", protocols)
    console.print(tasks_table)
    _list_suites_and_profiles(console)
    prov = Table(title="Providers")
    for column in ("provider", "base URL", "key variable", "note"):
        prov.add_column(column)
    for p in PROVIDERS.values():
        key = p.key_env or "-"
        prov.add_row(p.name, p.base_url, key + ("" if p.key_required else " (optional)"),
                     p.note)
    console.print(prov)


def _list_suites_and_profiles(console: Any) -> None:
    from rich.table import Table

    from evals.profiles import load_profiles
    from evals.suites import shipped_suites

    suites = Table(title="Suites (--suite NAME)")
    for column in ("suite", "model", "profile", "tasks", "description"):
        suites.add_column(column)
    for suite in shipped_suites():
        tasks = ", ".join(t.name + (f" n={t.n}" if t.n else "") for t in suite.tasks)
        suites.add_row(suite.name, suite.model or "-", suite.profile or "-", tasks,
                       suite.description)
    console.print(suites)
    profiles = Table(title="Model profiles (chosen from the model name, or --profile NAME)")
    for column in ("profile", "models", "temperature", "top_p", "max tokens", "system prompt"):
        profiles.add_column(column)
    for profile in load_profiles().values():
        profiles.add_row(profile.name, ", ".join(profile.models), str(profile.temperature),
                         str(profile.top_p), str(profile.max_tokens),
                         "yes" if profile.system_prompt else "no")
    console.print(profiles)


@app.command(short_help="Serve a simulated OpenAI-compatible model (not a model).")
@click.option("--task", "task", multiple=True, required=True,
              help="Tasks to answer; repeatable.")
@click.option("--port", type=int, default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback).")
@click.option("--accuracy", type=float, default=0.7, show_default=True,
              help="Probability of a right answer.")
@data_option
@click.option("--latency-ms", type=float, default=0.0, show_default=True,
              help="Latency per answer.")
@click.option("--stream-chunks", type=int, default=8, show_default=True,
              help="Pieces per streamed answer.")
@click.option("--fault-429", "fault_429", type=float, default=0.0, help="Fraction of 429s.")
@click.option("--fault-500", "fault_500", type=float, default=0.0, help="Fraction of 500s.")
@click.option("--fault-drop", type=float, default=0.0,
              help="Fraction of dropped connections.")
@click.option("--fault-malformed", type=float, default=0.0,
              help="Fraction of malformed bodies.")
@click.option("--truncate", type=float, default=0.0, help="Fraction of truncated answers.")
@click.option("--max-concurrent", type=int, help="Serve at most N at once; queue the rest.")
@click.option("--limit-concurrent", type=click.IntRange(min=1),
              help="A provider's concurrency limit: 429 with Retry-After to a request "
              "beyond N in flight.")
@click.option("--limit-rps", type=click.FloatRange(min=1),
              help="A provider's rate limit: 429 beyond R requests accepted per second.")
@click.option("--reasoning-format", default="mixed", show_default=True,
              help="mixed, reasoning_content, reasoning, mistral, think, think_brackets or "
              "none.")
@click.option("--model", "model", multiple=True,
              help="Serve only these names; repeatable.")
@click.option("--api-key-env", help="Require the key held by this variable.")
@click.option("--request-log", type=click.Path(path_type=Path),
              help="One JSON line per request.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the fault draws.")
@tasks_dir_option
@task_option_options
def simulate(
    task: tuple[str, ...], port: int, host: str, accuracy: float, data: tuple[str, ...],
    latency_ms: float, stream_chunks: int, fault_429: float, fault_500: float,
    fault_drop: float, fault_malformed: float, truncate: float, max_concurrent: int | None,
    limit_concurrent: int | None, limit_rps: float | None, reasoning_format: str, model: tuple[str, ...], api_key_env: str | None,
    request_log: Path | None, seed: int, tasks_dir: tuple[Path, ...], since: str | None,
    until: str | None, release: str | None, option: tuple[str, ...],
) -> None:
    """Serve a simulated OpenAI-compatible model that answers TASKS' prompts."""

    from evals.simulator import REASONING_FORMATS, AnswerBook, SimConfig, serve

    try:
        if reasoning_format not in REASONING_FORMATS:
            raise ConfigError(f"--reasoning-format {reasoning_format!r}: use one of "
                              f"{', '.join(REASONING_FORMATS)}.")
        for name, value in (("--accuracy", accuracy), ("--fault-429", fault_429),
                            ("--fault-500", fault_500), ("--fault-drop", fault_drop),
                            ("--fault-malformed", fault_malformed), ("--truncate", truncate)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} {value}: must be a fraction between 0 and 1.")
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise ConfigError(f"--api-key-env {api_key_env}: that variable is not set.")
        config = SimConfig(
            accuracy=accuracy, latency_ms=latency_ms, stream_chunks=stream_chunks,
            fault_429=fault_429, fault_500=fault_500, fault_drop=fault_drop,
            fault_malformed=fault_malformed, truncate=truncate, max_concurrent=max_concurrent,
            limit_concurrent=limit_concurrent, limit_rps=limit_rps,
            reasoning_format=reasoning_format, models=tuple(model or ()), api_key=api_key,
            seed=seed,
        )
        book = AnswerBook.from_tasks(list(task), dict(parse_data(data, task)),
                                     tuple(tasks_dir or ()),
                                     task_options(since, until, release, option))
    except EvalsError as exc:
        _fail(exc)

    def ready(bound: int) -> None:
        data_args = "".join(f" --data {v}" for v in data)
        option_args = "".join(f" --option {k}={v}"
                              for k, v in task_options(since, until, release, option))
        print(f"evals simulator listening on http://{host}:{bound}/v1 "
              f"({len(book)} prompts, accuracy {accuracy}). Point a run at it:\n"
              f"  evals run {' '.join(task)} --base-url http://{host}:{bound}/v1 "
              f"--model sim-model{data_args}{option_args}", flush=True)

    try:
        serve(config, book, host, port, request_log=request_log, ready=ready)
    except KeyboardInterrupt:
        pass


@app.command(short_help="The whole pipeline offline, on the simulated model server.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/demo"),
              show_default=True, help="Run folder.")
@click.option("--accuracy", type=float, default=0.7, show_default=True,
              help="Simulated accuracy.")
def demo(out: Path, accuracy: float) -> None:
    """Run the whole pipeline offline against the built-in simulated model server."""

    from evals.runner import RunConfig
    from evals.runner import run as run_pipeline
    from evals.simulator import AnswerBook, SimConfig, SimulatorThread

    console = make_console()
    console.print("[bold]Demo[/]: starting the simulated model server (not a real model) and "
                  "running the shipped demo_math problems through the whole pipeline.")
    try:
        book = AnswerBook.from_tasks(["demo_math"], {})
        with SimulatorThread(SimConfig(accuracy=accuracy, latency_ms=20, seed=1), book) as sim:
            cfg = RunConfig(tasks=("demo_math",), model="simulated-model", provider="simulator",
                            base_url=sim.base_url, n=4, out=out, stream=True, concurrency=16)
            bar, hook = _progress_hook(console)
            with bar:
                result = _run_async(run_pipeline(cfg, on_progress=hook))
    except EvalsError as exc:
        _fail(exc)
    _print_summary(console, result)
    console.print(f"Per-attempt table: {result.out_dir / 'samples.parquet'}; summary: "
                  f"{result.out_dir / 'summary.md'}")


def _register_report_commands() -> None:
    from evals.cli_reports import compare, report, runs

    for command in (report, compare, runs):
        app.add_command(command)


_register_report_commands()


def main() -> None:
    """Console-script entry point.

    Once a command has finished (its files closed, its output printed), the process ends
    with ``os._exit``: tearing down the interpreter's 500 modules (httpx, Arrow, sympy)
    would add 0.2 s to every command and does nothing a finished command needs.
    """
    # Arrow imports numpy, whose OpenBLAS starts a thread per core that spins after start-up:
    # 5% of a run's CPU, for matrix work this harness never does. One thread unless the
    # user says otherwise (set before anything imports numpy).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    code: int | str | None = 0
    try:
        app(prog_name="evals")
    except SystemExit as exc:
        code = exc.code
    except BrokenPipeError:
        code = 1
    _finish(code)


def _finish(code: int | str | None) -> None:
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    import logging

    logging.shutdown()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
