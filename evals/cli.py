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
from typing import Any, TypeVar

import click

from evals.errors import ConfigError, EvalsError
from evals.grading.context import GradingOptions

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
def app() -> None:
    """Evaluate reasoning models on AIME-style benchmarks through OpenAI-compatible APIs."""


def data_option(f: F) -> F:
    return click.option("--data", multiple=True, help="Local data file: PATH (one task) or "
                        "TASK=PATH; repeatable.")(f)


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
    """--grade-timeout, --grading-processes and --unsafe-no-sandbox."""
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
    )):
        f = decorator(f)
    return f


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


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

    Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, markup=True,
                               soft_wrap=True)
    raise click.exceptions.Exit(2)


def _progress_hook(console: Any) -> tuple[Any, Any]:
    """A rich progress bar and the hook that feeds it; nothing (not even the import) when
    the output is not a terminal (CI logs, pipes), where a bar is not drawn anyway."""
    if not console.is_terminal:
        return contextlib.nullcontext(), None
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
    for row in main:
        ks = [k for k in row if k.startswith("pass@")]
        if ks:
            console.print(f"{row['task']}: " + ", ".join(f"{k} {row[k]:.3f}" for k in ks))
    errors = sum(int(row["error"]) for row in main)
    if errors:
        console.print(f"[yellow]{errors} attempt(s) failed after their retries and are not "
                      "scored; rerun the same command to retry exactly those.[/]")
    console.print(f"Run folder: {result.out_dir}")


@app.command(short_help="Run tasks against a model; rerun the same command to resume.")
@click.argument("tasks", nargs=-1, required=True)
@click.option("--model", required=True, help="Model name sent to the endpoint.")
@click.option("--provider", help="Provider preset (see `evals list`).")
@click.option("--base-url", help="OpenAI-compatible base URL.")
@click.option("--api-key-env", help="Environment variable holding the API key.")
@click.option("--n", "n", type=int, help="Repeats per problem.")
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
@click.option("--system-prompt", help="System message.")
@tasks_dir_option
@click.option("--max-retries", type=int, default=8, show_default=True,
              help="Retries per request.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds of silence before a retry.")
@task_option_options
@grading_options
def run(
    tasks: tuple[str, ...], model: str, provider: str | None, base_url: str | None,
    api_key_env: str | None, n: int | None, limit: int | None, concurrency: int,
    data: tuple[str, ...], seed: int, out: Path | None, stream: bool,
    temperature: float | None, top_p: float | None, max_tokens: int | None,
    system_prompt: str | None, tasks_dir: tuple[Path, ...], max_retries: int,
    timeout: float, since: str | None, until: str | None, release: str | None,
    option: tuple[str, ...], grade_timeout: float, grading_processes: int | None,
    unsafe_no_sandbox: bool,
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
        raise click.exceptions.Exit(130) from None
    _print_summary(console, result)


@app.command(short_help="Grade responses produced elsewhere, with no model call.")
@click.argument("task")
@click.option("--responses", required=True, type=click.Path(path_type=Path),
              help="JSONL: id, repeat, response[, reasoning].")
@click.option("--data", type=click.Path(path_type=Path), help="Local data file for the task.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Run folder (default under results/).")
@tasks_dir_option
@task_option_options
@grading_options
def grade(
    task: str, responses: Path, data: Path | None, out: Path | None,
    tasks_dir: tuple[Path, ...], since: str | None, until: str | None, release: str | None,
    option: tuple[str, ...], grade_timeout: float, grading_processes: int | None,
    unsafe_no_sandbox: bool,
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


@app.command(name="list", short_help="List the tasks and the provider presets.")
@tasks_dir_option
def list_(tasks_dir: tuple[Path, ...]) -> None:
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
    reasoning_format: str, model: tuple[str, ...], api_key_env: str | None,
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
            reasoning_format=reasoning_format, models=tuple(model or ()), api_key=api_key,
            seed=seed,
        )
        book = AnswerBook.from_tasks(list(task), dict(parse_data(data, task)),
                                     tuple(tasks_dir or ()),
                                     task_options(since, until, release, option))
    except EvalsError as exc:
        _fail(exc)

    def ready(bound: int) -> None:
        print(f"evals simulator listening on http://{host}:{bound}/v1 "
              f"({len(book)} prompts, accuracy {accuracy})", flush=True)

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
