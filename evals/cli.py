"""The ``evals`` command line: thin over ``evals.runner`` and ``evals.simulator``."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from evals.errors import ConfigError, EvalsError
from evals.grading.context import GradingOptions

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Evaluate reasoning models on AIME-style benchmarks through OpenAI-compatible APIs.",
    pretty_exceptions_enable=False,
)

T = TypeVar("T")

DataOpt = Annotated[
    list[str] | None,
    typer.Option("--data", help="Local data file: PATH (one task) or TASK=PATH; repeatable."),
]
TasksDirOpt = Annotated[
    list[Path] | None, typer.Option("--tasks-dir", help="Extra folder of task plugins.")
]


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def parse_data(values: list[str] | None, tasks: list[str]) -> tuple[tuple[str, Path], ...]:
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

    Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, markup=True,
                               soft_wrap=True)
    raise typer.Exit(2)


def _progress_hook(console: Any) -> tuple[Any, Any]:
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
        disable=not console.is_terminal,
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


SinceOpt = Annotated[str | None, typer.Option(
    help="Only problems from this date on (YYYY-MM-DD; tasks with dates, e.g. livecodebench).")]
UntilOpt = Annotated[str | None, typer.Option(
    help="Only problems up to this date (YYYY-MM-DD).")]
ReleaseOpt = Annotated[str | None, typer.Option(
    help="Dataset release tag, e.g. livecodebench release_v5 (cumulative) or v5 (only the "
         "problems new in v5).")]
OptionOpt = Annotated[list[str] | None, typer.Option(
    "--option", help="Task option KEY=VALUE (repeatable); see `evals list`.")]
GradeTimeoutOpt = Annotated[float, typer.Option(
    help="Wall limit in seconds per answer for math equivalence (graded 'timeout' past it).")]
GradingProcessesOpt = Annotated[int | None, typer.Option(
    help="Grading worker processes / parallel sandboxed programs (default: the cores).")]
UnsafeOpt = Annotated[bool, typer.Option(
    "--unsafe-no-sandbox",
    help="Run model-written code WITHOUT bubblewrap isolation (only if you accept the risk).")]


def task_options(since: str | None, until: str | None, release: str | None,
                 option: list[str] | None) -> tuple[tuple[str, str], ...]:
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
    for row in main:
        ks = [k for k in row if k.startswith("pass@")]
        if ks:
            console.print(f"{row['task']}: " + ", ".join(f"{k} {row[k]:.3f}" for k in ks))
    errors = sum(int(row["error"]) for row in main)
    if errors:
        console.print(f"[yellow]{errors} attempt(s) failed after their retries and are not "
                      "scored; rerun the same command to retry exactly those.[/]")
    console.print(f"Run folder: {result.out_dir}")


@app.command()
def run(
    tasks: Annotated[list[str], typer.Argument(help="Task names (see `evals list`).")],
    model: Annotated[str, typer.Option("--model", help="Model name sent to the endpoint.")],
    provider: Annotated[str | None, typer.Option(help="Provider preset.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Repeats per problem.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first K problems.")] = None,
    concurrency: Annotated[int, typer.Option(help="Most requests in flight.")] = 64,
    data: DataOpt = None,
    seed: Annotated[int, typer.Option(help="Run seed (per-attempt seeds derive from it).")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder (default under results/).")] = None,
    stream: Annotated[bool, typer.Option(help="Stream responses (time to first token).")] = False,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling top-p.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Generation budget, reasoning included.")
    ] = None,
    system_prompt: Annotated[str | None, typer.Option(help="System message.")] = None,
    tasks_dir: TasksDirOpt = None,
    max_retries: Annotated[int, typer.Option(help="Retries per request.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds of silence before a retry.")] = 600.0,
    since: SinceOpt = None,
    until: UntilOpt = None,
    release: ReleaseOpt = None,
    option: OptionOpt = None,
    grade_timeout: GradeTimeoutOpt = 5.0,
    grading_processes: GradingProcessesOpt = None,
    unsafe_no_sandbox: UnsafeOpt = False,
) -> None:
    """Run TASKS against a model and write a run folder (rerun the same command to resume)."""
    from rich.console import Console

    from evals.runner import RunConfig, Sampling
    from evals.runner import run as run_pipeline

    console = Console()
    try:
        cfg = RunConfig(
            tasks=tuple(tasks), model=model, provider=provider, base_url=base_url,
            api_key_env=api_key_env, n=n, limit=limit, concurrency=concurrency,
            data=parse_data(data, tasks), seed=seed, out=out, stream=stream,
            sampling=Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens),
            system_prompt=system_prompt, tasks_dirs=tuple(tasks_dir or ()),
            max_retries=max_retries, timeout=timeout,
            grading=GradingOptions(timeout_s=grade_timeout, processes=grading_processes,
                                   unsafe_no_sandbox=unsafe_no_sandbox),
            options=task_options(since, until, release, option),
        )
        bar, hook = _progress_hook(console)
        with bar:
            result = _run_async(run_pipeline(cfg, on_progress=hook))
    except EvalsError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted. Everything answered so far is stored: rerun the "
                      "same command to resume.[/]")
        raise typer.Exit(130) from None
    _print_summary(console, result)


@app.command()
def grade(
    task: Annotated[str, typer.Argument(help="The task the responses answer.")],
    responses: Annotated[Path, typer.Option(help="JSONL: id, repeat, response[, reasoning].")],
    data: Annotated[Path | None, typer.Option(help="Local data file for the task.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default under results/).")] = None,
    tasks_dir: TasksDirOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    release: ReleaseOpt = None,
    option: OptionOpt = None,
    grade_timeout: GradeTimeoutOpt = 5.0,
    grading_processes: GradingProcessesOpt = None,
    unsafe_no_sandbox: UnsafeOpt = False,
) -> None:
    """Grade responses produced elsewhere, with no model call, into a run folder."""
    from rich.console import Console

    from evals.runner import GradeConfig, grade_responses

    console = Console()
    try:
        cfg = GradeConfig(task=task, responses=responses, data=data, out=out,
                          tasks_dirs=tuple(tasks_dir or ()),
                          grading=GradingOptions(timeout_s=grade_timeout,
                                                 processes=grading_processes,
                                                 unsafe_no_sandbox=unsafe_no_sandbox),
                          options=task_options(since, until, release, option))
        result = _run_async(grade_responses(cfg))
    except EvalsError as exc:
        _fail(exc)
    _print_summary(console, result)


@app.command(name="list")
def list_(tasks_dir: TasksDirOpt = None) -> None:
    """List the tasks and the provider presets."""
    from rich.console import Console
    from rich.table import Table

    from evals.providers import PROVIDERS
    from evals.registry import Registry

    console = Console()
    try:
        registry = Registry(tasks_dirs=tuple(tasks_dir or ()))
        described = [(name, doc, registry.get(name)) for name, doc in registry.describe()]
    except EvalsError as exc:
        _fail(exc)
    tasks_table = Table(title="Tasks")
    for column in ("task", "description", "repeats", "options"):
        tasks_table.add_column(column)
    for name, doc, built in described:
        tasks_table.add_row(name, doc, str(built.n), ", ".join(built.options) or "-")
    console.print(tasks_table)
    prov = Table(title="Providers")
    for column in ("provider", "base URL", "key variable", "note"):
        prov.add_column(column)
    for p in PROVIDERS.values():
        key = p.key_env or "-"
        prov.add_row(p.name, p.base_url, key + ("" if p.key_required else " (optional)"),
                     p.note)
    console.print(prov)


@app.command()
def simulate(
    task: Annotated[list[str], typer.Option("--task", help="Tasks to answer; repeatable.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (loopback).")] = "127.0.0.1",
    accuracy: Annotated[float, typer.Option(help="Probability of a right answer.")] = 0.7,
    data: DataOpt = None,
    latency_ms: Annotated[float, typer.Option(help="Latency per answer.")] = 0.0,
    stream_chunks: Annotated[int, typer.Option(help="Pieces per streamed answer.")] = 8,
    fault_429: Annotated[float, typer.Option("--fault-429", help="Fraction of 429s.")] = 0.0,
    fault_500: Annotated[float, typer.Option("--fault-500", help="Fraction of 500s.")] = 0.0,
    fault_drop: Annotated[
        float, typer.Option("--fault-drop", help="Fraction of dropped connections.")
    ] = 0.0,
    fault_malformed: Annotated[
        float, typer.Option("--fault-malformed", help="Fraction of malformed bodies.")
    ] = 0.0,
    truncate: Annotated[float, typer.Option(help="Fraction of truncated answers.")] = 0.0,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Serve at most N at once; queue the rest.")
    ] = None,
    reasoning_format: Annotated[
        str, typer.Option(help="mixed, reasoning_content, reasoning, mistral, think, "
                               "think_brackets or none.")
    ] = "mixed",
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Serve only these names; repeatable.")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Require the key held by this variable.")
    ] = None,
    request_log: Annotated[Path | None, typer.Option(help="One JSON line per request.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
    tasks_dir: TasksDirOpt = None,
) -> None:
    """Serve a simulated OpenAI-compatible model that answers TASKS' prompts."""
    import os

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
            reasoning_format=reasoning_format, models=tuple(model or ()), api_key=api_key,
            seed=seed,
        )
        book = AnswerBook.from_tasks(task, dict(parse_data(data, task)),
                                     tuple(tasks_dir or ()))
    except EvalsError as exc:
        _fail(exc)

    def ready(bound: int) -> None:
        print(f"evals simulator listening on http://{host}:{bound}/v1 "
              f"({len(book)} prompts, accuracy {accuracy})", flush=True)

    try:
        serve(config, book, host, port, request_log=request_log, ready=ready)
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("results/demo"),
    accuracy: Annotated[float, typer.Option(help="Simulated accuracy.")] = 0.7,
) -> None:
    """Run the whole pipeline offline against the built-in simulated model server."""
    from rich.console import Console

    from evals.runner import RunConfig
    from evals.runner import run as run_pipeline
    from evals.simulator import AnswerBook, SimConfig, SimulatorThread

    console = Console()
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
