"""The pipeline: samples x repeats -> requests -> responses -> grades -> run folder.

Attempts are produced lazily and pulled by ``concurrency`` workers, so a run of 100k
attempts starts as fast as one of 100. Each worker looks the request up in the store
(a rerun reuses what was answered), otherwise asks the endpoint, commits the response,
grades it and appends one row to the per-attempt table. A request that fails after its
retries becomes an ``error`` row (not a wrong answer); a refusal no retry can fix (bad key,
unknown model) stops the run at once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import platform
import re
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from evals.client import ChatClient, RetryPolicy
from evals.data import LoadedData
from evals.errors import ConfigError, DataError, EndpointError, EvalsError, RequestFailed
from evals.grading.context import GradingContext, GradingOptions
from evals.output import AttemptWriter, finalize, write_manifest
from evals.prepare import prepare_run
from evals.providers import Endpoint, normalise_base_url
from evals.records import SCORED_OUTCOMES, Attempt, Grade, Outcome, Response, Sample
from evals.registry import Task
from evals.runlock import hold_run_folder
from evals.settings import TaskRequest
from evals.store import Store, disk_full, request_key

if TYPE_CHECKING:
    from evals.pricing import Price

__all__ = [
    "Progress",
    "RunConfig",
    "RunResult",
    "Sampling",
    "attempt_seed",
    "outcome_of",
    "run",
    "run_folder",
]

VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings sent with every request (``None``: the server's default)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    top_k: int | None = None


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything ``evals run`` was asked to do (no secrets: only the key's variable name).

    Attributes:
        tasks: task names.
        model: the model name sent to the endpoint.
        provider / base_url / api_key_env: the endpoint (see ``providers.resolve_endpoint``);
            ``base_url`` may list several (replicas of one server; a list or tuple), the
            least busy answering first (``evals.endpoints``).
        max_downtime: seconds to wait for an endpoint that stopped answering (refused
            connections: a restart) before the run stops.
        n: repeats per problem (``None``: each task's default).
        limit: only the first ``limit`` problems of each task.
        concurrency: most requests in flight.
        data: per-task local files replacing the hub source.
        seed: the run seed; each (problem, repeat) derives its own from it.
        out: the run folder (``None``: ``results/<tasks>-<model>-<hash>``, so rerunning the
            same command resumes in the same folder).
        stream: stream responses (measures time to first token).
        sampling: temperature, top-p, max tokens.
        system_prompt: a system message put before every prompt.
        tasks_dirs: extra plugin folders.
        max_retries / timeout: the client's retry budget and silence timeout.
        profile: a model profile by name (``"none"``: no profile); ``None`` picks the one
            the model's name matches (``evals.profiles``). Flags override its values.
        stop: stop sequences sent with every request (a prompt protocol may add its own).
        task_n / task_max_tokens: per-task repeats and budgets (a suite's), under ``n``
            and ``sampling.max_tokens`` when those are given.
        task_options: per-task options (a suite's), over the run-wide ``options``.
        suite: the suite this run came from (recorded; ``evals.suites``).
        published / prices: extra published-score and price files (``--published``,
            ``--prices``) beside the shipped ones.
        max_cost: stop asking once this invocation's measured cost (USD) reaches it;
            rerunning resumes.
        skip_bad_rows: leave out data rows the task cannot read (listed in the manifest
            and the summary) instead of refusing the file.

    ``data`` may be given as a dict ``{"aime2025": "path.jsonl"}`` and paths as plain
    strings; they are normalised to tuples and ``Path`` objects.
    """

    tasks: tuple[str, ...]
    model: str
    provider: str | None = None
    base_url: str | tuple[str, ...] | None = None
    api_key_env: str | None = None
    n: int | None = None
    limit: int | None = None
    concurrency: int = 64
    data: tuple[tuple[str, Path], ...] = ()
    seed: int = 0
    out: Path | None = None
    stream: bool = False
    sampling: Sampling = field(default_factory=Sampling)
    system_prompt: str | None = None
    tasks_dirs: tuple[Path, ...] = ()
    max_retries: int = 8
    timeout: float = 600.0
    results_dir: Path = Path("results")
    grading: GradingOptions = field(default_factory=GradingOptions)
    options: tuple[tuple[str, str], ...] = ()
    profile: str | None = None
    stop: tuple[str, ...] = ()
    task_n: tuple[tuple[str, int], ...] = ()
    task_max_tokens: tuple[tuple[str, int], ...] = ()
    task_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    suite: str | None = None
    published: tuple[Path, ...] = ()
    prices: tuple[Path, ...] = ()
    max_cost: float | None = None
    skip_bad_rows: bool = False
    max_downtime: float = 300.0

    def __post_init__(self) -> None:
        def pairs(value: Any) -> tuple[tuple[str, Any], ...]:
            items = value.items() if isinstance(value, Mapping) else value
            return tuple((str(k), v) for k, v in items)

        if isinstance(self.tasks, str):
            object.__setattr__(self, "tasks", (self.tasks,))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "data", tuple((k, Path(v)) for k, v in pairs(self.data)))
        object.__setattr__(self, "options", tuple((k, str(v)) for k, v in pairs(self.options)))
        object.__setattr__(self, "task_n", pairs(self.task_n))
        object.__setattr__(self, "task_max_tokens", pairs(self.task_max_tokens))
        object.__setattr__(self, "task_options", tuple(
            (task, tuple((str(k), str(v)) for k, v in pairs(opts)))
            for task, opts in pairs(self.task_options)))
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        for name in ("tasks_dirs", "published", "prices"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, (str, Path)) else value
            object.__setattr__(self, name, tuple(Path(v) for v in value))
        for name in ("out", "results_dir"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))

    def repeats(self, task: str, default: int) -> int:
        """Repeats of ``task``: ``n`` if given, else the suite's, else the task's own."""
        return self.n or dict(self.task_n).get(task) or default

    def identity(self) -> str:
        """A short hash of what determines the answers (not concurrency, not paths)."""
        key: list[Any] = [self.tasks, self.model, self.provider, self.base_url, self.n, self.limit,
               self.seed, asdict(self.sampling), self.system_prompt]
        if self.options:
            key.append(sorted(self.options))
        extra = {"profile": self.profile, "stop": list(self.stop),
                 "task_n": sorted(self.task_n), "task_max_tokens": sorted(self.task_max_tokens),
                 "task_options": sorted(self.task_options)}
        if any(extra.values()):
            key.append(extra)
        return hashlib.sha256(orjson.dumps(key, default=str)).hexdigest()[:10]

    def public(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks), "model": self.model, "provider": self.provider,
            "base_url": self.base_url, "api_key_env": self.api_key_env, "n": self.n,
            "limit": self.limit, "concurrency": self.concurrency,
            "data": {k: str(v) for k, v in self.data}, "seed": self.seed,
            "stream": self.stream, "sampling": asdict(self.sampling),
            "system_prompt": self.system_prompt, "max_retries": self.max_retries,
            "timeout": self.timeout, "grading": asdict(self.grading),
            "options": dict(self.options), "profile": self.profile, "stop": list(self.stop),
            "task_n": dict(self.task_n), "task_max_tokens": dict(self.task_max_tokens),
            "task_options": {k: dict(v) for k, v in self.task_options},
            "suite": self.suite, "published": [str(p) for p in self.published],
            "prices": [str(p) for p in self.prices], "max_cost": self.max_cost,
            "skip_bad_rows": self.skip_bad_rows, "max_downtime": self.max_downtime,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run: its folder, its summary rows and manifest.

    ``summary`` is the same table as a pandas DataFrame (built anew on each access).
    ``status`` is ``complete``, or ``budget`` when ``max_cost`` stopped it with
    ``not_asked`` attempts left for a rerun.
    """

    out_dir: Path
    summary_rows: list[dict[str, Any]]
    manifest: dict[str, Any]
    status: str = "complete"
    not_asked: int = 0

    @property
    def summary(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.summary_rows)


def attempt_seed(run_seed: int, task: str, sample_id: str, repeat: int) -> int:
    """The seed of one (problem, repeat): stable, distinct per repeat, within int31."""
    digest = hashlib.sha256(f"{run_seed}|{task}|{sample_id}|{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def outcome_of(response: Response) -> Outcome:
    """Classify a response (the grade may still turn it into ``grading_failed``)."""
    if response.finish_reason == "length":
        return "truncated"
    if response.reasoning_unclosed:
        return "reasoning_unclosed"
    if not response.text.strip():
        return "empty"
    return "answered"


class Progress:
    """Live counters of a run; ``render`` is called by the progress display."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.scored = 0
        self.correct = 0
        self.errors = 0
        self.unscored = 0  # grading_failed
        self.cached = 0
        self.tokens = 0
        self.started = time.perf_counter()

    def add(self, outcome: str, correct: bool | None, tokens: int | None, cached: bool) -> None:
        self.done += 1
        if outcome == "error":
            self.errors += 1
        elif outcome == "grading_failed":
            self.unscored += 1
        elif outcome in SCORED_OUTCOMES:
            self.scored += 1
            self.correct += bool(correct)
        self.cached += cached
        if tokens and not cached:
            self.tokens += tokens

    @property
    def score(self) -> float | None:
        return self.correct / self.scored if self.scored else None


def writable_folder(folder: Path) -> None:
    """Create ``folder`` (the run folder) and check it can be written, before anything is
    sent.

    Raises:
        ConfigError: it cannot be created or written (a file in the way, a read-only file
            system, a system folder), with the reason and the fix.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".evals-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"--out {folder}: cannot write the run folder there ({reason}). Choose a folder "
            "you can write to, e.g. --out results/my-run."
        ) from None


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "run"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _build_body(cfg: RunConfig, request: TaskRequest, endpoint: Endpoint, attempt: Attempt
                ) -> dict[str, Any]:
    messages: list[Any] = attempt.sample.chat()
    if request.system is not None:
        messages = [request.system, *messages]
    body: dict[str, Any] = {"model": cfg.model, "messages": messages, **request.fields()}
    body[endpoint.seed_field] = attempt.seed
    if cfg.stream:
        body["stream"] = True
        if endpoint.stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


@dataclass(slots=True)
class _Budget:
    """``--max-cost``: what this invocation has spent on new answers (cached ones are
    free), and how many attempts it left unasked once the budget was reached."""

    limit: float | None
    spent: float = 0.0
    not_asked: int = 0

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.spent >= self.limit

    def spend(self, cost: float | None) -> None:
        self.spent += cost or 0.0


def _cost(response: Response, price: Price | None) -> float | None:
    """The cost the server reported, else the price table's for the usage reported."""
    usage = response.usage
    if usage.cost is not None:
        return usage.cost
    if price is None:
        return None
    return price.cost(usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens)


def _row(attempt: Attempt, model: str, outcome: str, grade: Grade | None,
         response: Response | None, cached: bool, error: str | None,
         price: Price | None = None, messages: str | None = None) -> dict[str, Any]:
    usage = response.usage if response else None
    cost = _cost(response, price) if response else None
    return {
        "task": attempt.task, "sample_id": attempt.sample.id, "repeat": attempt.repeat,
        "seed": attempt.seed, "model": model, "outcome": outcome,
        "correct": grade.correct if grade else None,
        "extracted": grade.extracted if grade else None,
        "reason": grade.reason if grade else error,
        "details": _details_json(grade.details) if grade and grade.details else None,
        "target": attempt.sample.target,
        "response": response.text if response else None,
        "reasoning": response.reasoning if response else None,
        "finish_reason": response.finish_reason if response else None,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "reasoning_tokens": usage.reasoning_tokens if usage else None,
        "cost": cost,
        "latency_s": response.latency_s if response else None,
        "ttft_s": response.ttft_s if response else None,
        "retries": response.retries if response else None,
        "cached": cached, "error": error,
        "simulated": bool(response and response.simulated),
        "endpoint": response.endpoint if response else None,
        "metadata": _metadata_json(attempt.sample.metadata),
        "messages": messages if messages is not None else _messages_json(
            None, attempt.sample.messages),
    }


@functools.lru_cache(maxsize=4096)
def _metadata_json(metadata: tuple[tuple[str, str | int | float | None], ...]) -> str:
    """A sample's metadata as JSON, made once per sample rather than once per repeat."""
    return orjson.dumps(dict(metadata)).decode()


@functools.lru_cache(maxsize=4096)
def _messages_json(system: str | None, messages: tuple[tuple[str, str], ...]) -> str:
    """The prompt as sent (``system``: the system message as JSON), made once per prompt."""
    chat = b",".join(orjson.dumps({"role": role, "content": content})
                     for role, content in messages)
    return "[" + (system + "," if system else "") + chat.decode() + "]"


def _details_json(details: dict[str, Any]) -> str:
    return orjson.dumps(details, default=str).decode()


async def _grade(task: Task, response: Response, sample: Sample) -> tuple[str, Grade]:
    outcome: str = outcome_of(response)
    try:
        grade = await task.grader(response.text, sample)
    except Exception as exc:  # noqa: BLE001  a grader bug must not lose the response
        return "grading_failed", Grade(None, None, f"grader raised {type(exc).__name__}: {exc}")
    if grade.correct is None:
        outcome = "grading_failed"
    return outcome, grade


def _attempts(tasks: list[Task], loaded: dict[str, LoadedData], cfg: RunConfig,
              seed: int) -> Iterator[tuple[Task, Attempt]]:
    for task in tasks:
        n = cfg.repeats(task.name, task.n)
        for sample in loaded[task.name].samples:
            for repeat in range(n):
                own = attempt_seed(seed, task.name, sample.id, repeat)
                asked = sample
                if task.prepare is not None:
                    try:
                        asked = task.prepare(sample, own, {})
                    except (KeyError, TypeError, ValueError) as exc:
                        raise DataError(f"Task {task.name!r}, problem {sample.id!r}: cannot "
                                        f"prepare repeat {repeat}: {exc}") from exc
                yield task, Attempt(task.name, asked, repeat, own)


def _out_dir(cfg_out: Path | None, results_dir: Path, tasks: tuple[str, ...], model: str,
             identity: str) -> Path:
    if cfg_out is not None:
        return cfg_out
    return results_dir / f"{_sanitize('+'.join(tasks))}-{_sanitize(model)}-{identity}"


def _base_manifest(kind: str, config: dict[str, Any], loaded: dict[str, LoadedData]
                   ) -> dict[str, Any]:
    return {
        "kind": kind,
        "harness_version": VERSION,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "started": _now(),
        "ended": None,
        "status": "running",
        "config": config,
        "datasets": {
            name: {"source": d.source, "fingerprint": d.fingerprint, "rows": d.rows,
                   "problems_used": len(d.samples),
                   "skipped_rows": [{"row": row, "problem": why} for row, why in d.skipped]}
            for name, d in loaded.items()
        },
        "seeds": {
            "run_seed": config.get("seed"),
            "per_attempt": "sha256('{run_seed}|{task}|{sample_id}|{repeat}')[:4] & 0x7fffffff, "
                           "sent as the request seed and recorded per attempt",
            "per_attempt_prompt": "tasks that vary the prompt per attempt (shuffled "
                                  "choices) derive the variation from the attempt's seed; "
                                  "the result (e.g. the permutation) is in its metadata",
        },
    }


async def run(
    cfg: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_progress: Callable[[Progress, ChatClient], None] | None = None,
) -> RunResult:
    """Run ``cfg`` to completion and write its run folder.

    Args:
        cfg: the run.
        transport: an httpx transport for the client (tests); default: httpx-aiohttp's
            (``evals.client.default_transport``), sized to the concurrency.
        on_progress: called after every attempt (the CLI's progress bar).

    Raises:
        ConfigError, DataError: before any request is sent; also DataError, mid-run, when
            a task cannot prepare a problem's prompt (answers so far stay in the store).
        EndpointError: the endpoint refused the run (bad key, unknown model); everything
            answered so far is in the store, and rerunning resumes.
        RunFolderBusy: another run holds the run folder (nothing was written there).
        DiskFull: the disk that holds the run folder is full; what was committed is kept,
            and rerunning resumes once there is space.

    Cancelled (Ctrl-C): every answer received is committed and counted, the table closed
    and the manifest's status is ``interrupted``; the cancellation propagates.
    """
    with ExitStack() as held:  # the run folder's lock, taken once the folder is known
        try:
            return await _run(cfg, held, transport=transport, on_progress=on_progress)
        except (OSError, sqlite3.Error) as exc:  # the table, the manifest, the summary
            full = disk_full(run_folder(cfg), exc)
            if full is None:
                raise
            raise full from exc


def run_folder(cfg: RunConfig) -> Path:
    """The run folder ``cfg`` writes (``--out``, else the one its identity names)."""
    return _out_dir(cfg.out, cfg.results_dir, cfg.tasks, cfg.model, cfg.identity())


async def _run(
    cfg: RunConfig,
    held: ExitStack,
    *,
    transport: httpx.AsyncBaseTransport | None,
    on_progress: Callable[[Progress, ChatClient], None] | None,
) -> RunResult:
    prepared = prepare_run(cfg)
    tasks, endpoint, loaded, total = (prepared.tasks, prepared.endpoint, prepared.loaded,
                                      prepared.total)
    requests, price = prepared.requests, prepared.price

    out_dir = _out_dir(cfg.out, cfg.results_dir, cfg.tasks, cfg.model, cfg.identity())
    writable_folder(out_dir)
    held.enter_context(hold_run_folder(out_dir))
    manifest = _base_manifest("run", cfg.public(), loaded)
    manifest["endpoint"] = endpoint.public()
    manifest["endpoints"] = [e.public() for e in prepared.endpoints or (endpoint,)]
    manifest["simulated"] = False
    manifest["profile"] = ({"name": prepared.profile.name,
                            "description": prepared.profile.description}
                           if prepared.profile else None)
    manifest["repeats"] = prepared.repeats(cfg)
    manifest["prompt_protocols"] = {t.name: t.protocol for t in tasks}
    manifest["request_settings"] = {name: r.public() for name, r in requests.items()}
    manifest["price"] = ({"provider": price.provider, "model": price.model,
                          "input_per_m": price.input_per_m, "output_per_m": price.output_per_m,
                          "reasoning_per_m": price.reasoning_per_m, "source": price.source}
                         if price else None)
    write_manifest(out_dir, manifest)

    store = Store(out_dir / "store.sqlite")
    writer = AttemptWriter(out_dir / "attempts.partial.jsonl")
    progress = Progress(total)
    client = ChatClient(prepared.endpoints or endpoint, transport=transport,
                        concurrency=cfg.concurrency,
                        retry=RetryPolicy(max_retries=cfg.max_retries), timeout=cfg.timeout,
                        seed=cfg.seed, max_downtime=cfg.max_downtime)
    work = _attempts(tasks, loaded, cfg, cfg.seed)
    budget = _Budget(cfg.max_cost)
    systems = {name: orjson.dumps(r.system).decode() if r.system else None
               for name, r in requests.items()}
    sent_bodies: dict[str, dict[str, Any]] = {}
    # A server that died mid-run: stop instead of failing every remaining attempt slowly.
    dead_after = max(8, 2 * cfg.concurrency)

    # Grading overlaps generation: a worker hands a response to its grader and goes on to
    # the next request. At most `grading_slots` grades wait at once, so a slow grader (code
    # in a sandbox) holds the requests back instead of piling responses up in memory.
    grading_slots = asyncio.Semaphore(max(8, 4 * cfg.grading.workers()))

    def record(attempt: Attempt, outcome: str, grade: Grade | None, response: Response | None,
               cached: bool, error: str | None) -> None:
        system = systems[attempt.task]
        writer.write(_row(attempt, cfg.model, outcome, grade, response, cached, error, price,
                          _messages_json(system, attempt.sample.messages)))
        progress.add(outcome, grade.correct if grade else None,
                     response.usage.completion_tokens if response else None, cached)
        if on_progress is not None:
            on_progress(progress, client)

    async def grade_and_record(task: Task, attempt: Attempt, response: Response,
                               cached: bool, committed: asyncio.Future[None] | None) -> None:
        outcome, grade = await _grade(task, response, attempt.sample)
        if committed is not None:
            await committed  # counted only once on disk
        record(attempt, outcome, grade, response, cached, None)

    async def grade_in_slot(task: Task, attempt: Attempt, response: Response,
                            cached: bool, committed: asyncio.Future[None] | None) -> None:
        try:
            await grade_and_record(task, attempt, response, cached, committed)
        finally:
            grading_slots.release()

    async def worker(group: asyncio.TaskGroup) -> None:
        for task, attempt in work:
            body = _build_body(cfg, requests[task.name], endpoint, attempt)
            if task.name not in sent_bodies:
                sent_bodies[task.name] = {k: v for k, v in body.items()
                                          if k not in ("messages", endpoint.seed_field)}
            key = request_key(body, attempt.repeat)
            response = store.get(key)
            cached = response is not None
            if response is None:
                if budget.reached:
                    budget.not_asked += 1
                    continue
                try:
                    response = await client.complete(body)
                    budget.spend(_cost(response, price))
                except RequestFailed as exc:
                    if client.stats.consecutive_failed >= dead_after:
                        raise EndpointError(
                            f"{endpoint.base_url} stopped answering: the last "
                            f"{client.stats.consecutive_failed} requests failed after all "
                            f"their retries (last failure: {exc.kind}). Everything answered "
                            "so far is stored; once the server is back, rerun the same "
                            "command to resume."
                        ) from None
                    record(attempt, "error", None, None, False, str(exc))
                    continue
            if task.heavy_grader or task.needs_sandbox:
                committed = None if cached else _commit(task, attempt, key, body, response)
                await grading_slots.acquire()
                group.create_task(grade_in_slot(task, attempt, response, cached, committed))
                continue
            # A cheap grader, in line. The worker sends its next request at once; the
            # attempt is counted (row, progress) by the store once its answer is on disk,
            # so a kill after this point loses nothing that was counted.
            outcome, grade = await _grade(task, response, attempt.sample)
            if cached:
                record(attempt, outcome, grade, response, True, None)
            else:
                _commit(task, attempt, key, body, response, functools.partial(
                    record, attempt, outcome, grade, response, False, None))

    def _commit(task: Task, attempt: Attempt, key: str, body: dict[str, Any],
                response: Response, then: Callable[[], object] | None = None
                ) -> asyncio.Future[None]:
        return store.commit_soon(key, task=task.name, sample_id=attempt.sample.id,
                                 repeat=attempt.repeat, seed=attempt.seed, request=body,
                                 response=response, then=then)

    # CPU of the request phase: every thread of the process (requests, store, grading, table
    # rows), less the one-time Arrow import the prefetch thread does meanwhile.
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    prefetch = _prefetch_table_writer()
    try:
        async with GradingContext(cfg.grading) as grading:
            if any(t.needs_sandbox for t in tasks):
                grading.executor()  # no sandbox: fail now, before any request is paid for
            async with asyncio.TaskGroup() as group:
                for _ in range(min(cfg.concurrency, max(1, total))):
                    group.create_task(worker(group))
    except BaseExceptionGroup as eg:
        manifest.update(status="failed", ended=_now())
        write_manifest(out_dir, manifest)
        first = _first_error(eg)
        raise first from None
    except EvalsError:
        manifest.update(status="failed", ended=_now())
        write_manifest(out_dir, manifest)
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        _record_interrupted(store, out_dir, manifest)
        raise
    finally:
        try:
            store.close()  # commits what is queued, and counts it
        finally:
            try:
                writer.close()  # on a full disk its last flush fails: close the client still
            finally:
                await client.aclose()

    status = ("budget" if budget.not_asked
              else "incomplete" if progress.errors or progress.unscored else "complete")
    manifest.update(status=status, ended=_now(),
                    client={"sent": client.stats.sent, "retries": client.stats.retries,
                            "rate_limited": client.stats.rate_limited,
                            "failed": client.stats.failed},
                    timing=_phase_timing(wall_started, cpu_started, prefetch),
                    request_body=sent_bodies,
                    budget={"max_cost": cfg.max_cost, "spent": round(budget.spent, 6),
                            "not_asked": budget.not_asked},
                    attempts_resumed=progress.cached,
                    attempts_asked=progress.done - progress.cached,
                    not_scored={"error": progress.errors, "grading_failed": progress.unscored})
    manifest["endpoints"] = client.endpoint_report()  # per endpoint: answers, down time
    summary = finalize(out_dir, writer.path, manifest, {t.name: t.subsets for t in tasks},
                       frozenset(t.name for t in tasks if t.pass_k), prepared.published)
    return RunResult(out_dir, summary, manifest, status, budget.not_asked)


def _record_interrupted(store: Store, out_dir: Path, manifest: dict[str, Any]) -> None:
    """Ctrl-C: commit (and count) every answer received, then mark the run interrupted."""
    store.close()  # the caller's own close then does nothing
    manifest.update(status="interrupted", ended=_now(), answers_kept=len(store))
    write_manifest(out_dir, manifest)


def _phase_timing(wall_started: float, cpu_started: float, prefetch: _Prefetch
                  ) -> dict[str, float]:
    wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
    prefetch.thread.join()  # finalize needs Arrow anyway; usually long done
    return {"requests_wall_s": round(wall, 4),
            "requests_cpu_s": round(cpu - prefetch.cpu_s, 4),
            "prefetch_cpu_s": round(prefetch.cpu_s, 4)}


@dataclass
class _Prefetch:
    thread: Any
    cpu_s: float = 0.0


def _prefetch_table_writer() -> _Prefetch:
    """Import Arrow (what ``finalize`` writes the table with) and use its JSON reader and
    Parquet writer once, in a thread while the requests are in flight: 0.3 s of one-time
    cost that would otherwise come after the last answer. The thread's CPU is reported
    apart from the requests' (``timing.prefetch_cpu_s`` in the manifest)."""
    import threading

    def load() -> None:
        import io

        import pyarrow as pa
        import pyarrow.json as pajson
        import pyarrow.parquet as pq

        table = pajson.read_json(io.BytesIO(b'{"a": 1}\n'))
        pq.write_table(table, pa.BufferOutputStream())
        state.cpu_s = time.thread_time()

    state = _Prefetch(threading.Thread(target=load, name="evals-prefetch", daemon=True))
    state.thread.start()
    return state


def _first_error(eg: BaseExceptionGroup[Any]) -> BaseException:
    for exc in eg.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, EvalsError):
            return exc
    return eg.exceptions[0]
