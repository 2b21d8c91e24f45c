"""A simulated OpenAI-compatible model server, for tests, benchmarks and the demo.

It is a real HTTP server on loopback (aiohttp), serving ``GET /v1/models`` and
``POST /v1/chat/completions`` (streaming and not) for whatever model name it is asked. It
loads the same tasks and data as the harness, recognises their prompts, and answers
correctly with probability ``accuracy``, otherwise wrongly, written the way real models
write: prose, then ``\\boxed{}`` or "Final answer: ...", with the reasoning in one of the
provider formats (``reasoning_content``, ``reasoning``, Mistral thinking chunks, ``<think>``
or ``[THINK]`` tags). Whether an answer is right depends only on the request's seed and
prompt, so a rerun with the same seeds gets the same answers.

Faults can be injected: 429 with ``Retry-After``, 500, dropped connections, malformed JSON,
truncation. Rate limits can be enforced as providers enforce them: a 429 with ``Retry-After``
to a request beyond ``limit_concurrent`` in flight, or beyond ``limit_rps`` accepted in the
last second. Every answered request appends one JSON line to the request log, so tests can
count what was asked twice. Every response carries the header ``x-evals-simulator`` and
every score computed from it is labelled simulated.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Self

import orjson
from aiohttp import web

from evals.records import Sample

__all__ = [
    "REASONING_FORMATS",
    "AnswerBook",
    "SimConfig",
    "SimulatorThread",
    "build_app",
    "serve",
]

ReasoningFormat = Literal[
    "mixed", "reasoning_content", "reasoning", "mistral", "think", "think_brackets", "none"
]
REASONING_FORMATS: tuple[str, ...] = (
    "mixed",
    "reasoning_content",
    "reasoning",
    "mistral",
    "think",
    "think_brackets",
    "none",
)
_CONCRETE = REASONING_FORMATS[1:]

AnswerWriter = Callable[[Sample, bool, random.Random, str], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How the simulated model behaves.

    Attributes:
        accuracy: probability that an answer is right.
        latency_ms: time before the answer (streamed answers spread it over the chunks).
        stream_chunks: how many content pieces a streamed answer is cut into.
        fault_429, fault_500, fault_drop, fault_malformed: fraction of requests that get a
            429 (with ``Retry-After``), a 500, a dropped connection, or a 200 whose body is
            not JSON.
        truncate: fraction of answers cut off in the reasoning (``finish_reason: length``).
        max_concurrent: at most this many requests are served at once; the rest queue.
        limit_concurrent: at most this many requests in flight; one more is answered 429
            with ``Retry-After: retry_after_s`` at once (a provider's concurrency limit).
        limit_rps: at most this many requests accepted in any one second (a sliding
            window); one more is answered 429 with the time until a slot frees in
            ``Retry-After``/``retry-after-ms`` (a provider's requests-per-second limit).
        reasoning_format: where the reasoning goes; ``mixed`` picks one per request.
        models: if given, only these model names are served (others get 404).
        api_key: if given, requests must carry ``Authorization: Bearer <api_key>``.
        retry_after_s: the ``Retry-After`` a 429 asks for.
        seed: seeds the fault draws.
    """

    accuracy: float = 0.7
    latency_ms: float = 0.0
    stream_chunks: int = 8
    fault_429: float = 0.0
    fault_500: float = 0.0
    fault_drop: float = 0.0
    fault_malformed: float = 0.0
    truncate: float = 0.0
    max_concurrent: int | None = None
    limit_concurrent: int | None = None
    limit_rps: float | None = None
    reasoning_format: str = "mixed"
    models: tuple[str, ...] = ()
    api_key: str | None = field(default=None, repr=False)
    retry_after_s: float = 0.2
    seed: int = 0


@dataclass(slots=True)
class _Entry:
    task: str
    sample: Sample
    writer: AnswerWriter


class AnswerBook:
    """Maps a prompt (the last user message) to the sample it came from.

    A task whose prompts vary per attempt (shuffled choices) gives a ``prompt_key`` that
    maps any of its prompts to what identifies the problem; its samples are found by that
    key.
    """

    def __init__(self) -> None:
        self._by_prompt: dict[str, _Entry] = {}
        self._by_key: list[tuple[Callable[[str], str], dict[str, _Entry]]] = []

    def add(self, task: str, samples: Sequence[Sample], writer: AnswerWriter | None,
            prompt_key: Callable[[str], str] | None = None) -> None:
        table = self._by_prompt
        if prompt_key is not None:
            table = {}
            self._by_key.append((prompt_key, table))
        for sample in samples:
            prompt = _prompt_of(sample.chat())
            table[prompt_key(prompt) if prompt_key else prompt] = _Entry(
                task, sample, writer or math_answer
            )

    def lookup(self, messages: Any) -> _Entry | None:
        prompt = _prompt_of(messages)
        found = self._by_prompt.get(prompt)
        if found is None:
            for key, table in self._by_key:
                found = table.get(key(prompt))
                if found is not None:
                    break
        return found

    def __len__(self) -> int:
        return len(self._by_prompt) + sum(len(t) for _, t in self._by_key)

    @classmethod
    def from_tasks(
        cls,
        tasks: Sequence[str],
        data: dict[str, Path],
        tasks_dirs: tuple[Path, ...] = (),
        options: Sequence[tuple[str, str]] = (),
    ) -> AnswerBook:
        """Load ``tasks`` (with optional local data per task, and task options such as a
        LiveCodeBench release) exactly as the harness does."""
        from evals.data import load_task_data
        from evals.registry import Registry, configure_tasks

        registry = Registry(tasks_dirs=tasks_dirs)
        book = cls()
        for task in configure_tasks(registry.get_many(tuple(tasks)), options):
            loaded = load_task_data(task, data.get(task.name))
            book.add(task.name, loaded.samples, task.answer_writer, task.prompt_key)
        return book


_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens",
                    "stop", "reasoning_effort")


def _system_of(messages: Any) -> Any:
    """The content of the first system message (a string or Mistral's chunks), or None."""
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "system":
                return message.get("content")
    return None


def _prompt_of(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else orjson.dumps(content).decode()
    return ""


# -- how a model writes ---------------------------------------------------------------------

_REASONING = (
    "Let me work through this carefully. First I restate the problem. "
    "Then I try small cases and look for a pattern. "
    "Checking the arithmetic again, the computation gives {value}. "
    "Wait, let me double-check that step... yes, {value} holds."
)
_MATH_ENDINGS = (
    "Putting everything together, the answer is $\\boxed{{{value}}}$.",
    "**Final Answer**\n\n\\[\n\\boxed{{{value}}}\n\\]",
    "So the required number is {value}.\n\nFinal answer: {value}",
    "Final Answer: The final answer is ${value}$. I hope it is correct.",
    "Hence we obtain $\\boxed{{{padded}}}$, i.e. {value}.",
    "We find $N = {value}$, so the answer is \\boxed{{{value}}}.",
)


def math_answer(sample: Sample, correct: bool, rng: random.Random, prompt: str = ""
                ) -> tuple[str, str]:
    """(reasoning, answer text) for an integer-answer problem."""
    target = int(sample.target)
    value = target if correct else (target + rng.randint(1, 998)) % 1000
    padded = f"{value:03d}" if 0 <= value < 1000 else str(value)
    reasoning = _REASONING.format(value=value)
    body = (
        "We set up the problem and simplify step by step, using $x^2 + y^2$ where needed.\n\n"
        + rng.choice(_MATH_ENDINGS).format(value=value, padded=padded)
    )
    return reasoning, body


# -- the server -------------------------------------------------------------------------------


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _Simulator:
    def __init__(self, config: SimConfig, book: AnswerBook, log: IO[bytes] | None) -> None:
        self.config = config
        self.book = book
        self.log = log
        self.fault_rng = random.Random(config.seed)
        self.models_seen: set[str] = set()
        self.semaphore = (
            asyncio.Semaphore(config.max_concurrent) if config.max_concurrent else None
        )
        self.served = 0
        self.active = 0  # requests accepted and not yet answered (limit_concurrent)
        self.accepted: deque[float] = deque()  # when, within the last second (limit_rps)

    def _over_limit(self) -> tuple[str, float] | None:
        """Which limit a new request would break and the wait to ask for, or None."""
        cfg = self.config
        if cfg.limit_concurrent is not None and self.active >= cfg.limit_concurrent:
            return "limit_concurrent", cfg.retry_after_s
        if cfg.limit_rps is not None:
            now = time.monotonic()
            window = self.accepted
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= max(1.0, cfg.limit_rps):
                return "limit_rps", max(0.001, window[0] + 1.0 - now)
            window.append(now)
        return None

    def _log(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            record["done"] = time.time()
            self.log.write(orjson.dumps(record) + b"\n")
            self.log.flush()

    async def models(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        names = sorted(self.config.models or (self.models_seen | {"sim-model"}))
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "evals-simulator"}
                for n in names]
        return _json({"object": "list", "data": data})

    def _auth(self, request: web.Request) -> web.Response | None:
        if self.config.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.config.api_key}":
            return None
        return _json(
            {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                       "param": None, "code": "invalid_api_key"}},
            status=401,
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._auth(request)) is not None:
            return denied
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"error": {"message": "body is not JSON", "type": "invalid_request_error",
                                    "param": None, "code": None}}, status=400)
        model = str(body.get("model", ""))
        if self.config.models and model not in self.config.models:
            return _json({"error": {"message": f"The model `{model}` does not exist.",
                                    "type": "NotFoundError", "param": None, "code": 404}},
                         status=404)
        self.models_seen.add(model)
        if (limited := self._over_limit()) is not None:
            which, wait = limited
            self._log({"t": time.time(), "model": model, "seed": body.get("seed"),
                       "fault": which})
            return _json(
                {"error": {"message": f"Rate limit reached ({which.replace('_', ' ')}), "
                                      "please retry.", "type": "requests", "param": None,
                           "code": "rate_limit_exceeded"}},
                status=429,
                headers={"Retry-After": f"{wait:.3g}", "retry-after-ms": str(int(wait * 1000))},
            )
        self.active += 1
        try:
            if self.semaphore is None:
                return await self._answer(request, body, model)
            async with self.semaphore:
                return await self._answer(request, body, model)
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any], model: str
                      ) -> web.StreamResponse:
        cfg = self.config
        seed = body.get("seed", body.get("random_seed"))
        stream = bool(body.get("stream"))
        entry = self.book.lookup(body.get("messages"))
        record: dict[str, Any] = {
            "t": time.time(), "model": model, "seed": seed, "stream": stream,
            "task": entry.task if entry else None,
            "sample_id": entry.sample.id if entry else None,
            # What was asked besides the prompt, for tests of what the harness sends.
            "sampling": {k: body[k] for k in _SAMPLING_FIELDS if k in body},
            "system": _system_of(body.get("messages")),
        }
        draw = self.fault_rng.random()
        for fault, rate in (("429", cfg.fault_429), ("500", cfg.fault_500),
                            ("drop", cfg.fault_drop), ("malformed", cfg.fault_malformed)):
            if draw < rate:
                break
            draw -= rate
        else:
            fault = None
        record["fault"] = fault
        if cfg.latency_ms and fault in ("429", "500"):
            await asyncio.sleep(cfg.latency_ms / 2000)
        if fault == "429":
            self._log(record)
            return _json(
                {"error": {"message": "Rate limit reached, please retry.", "type": "requests",
                           "param": None, "code": "rate_limit_exceeded"}},
                status=429,
                headers={"Retry-After": f"{cfg.retry_after_s:g}",
                         "retry-after-ms": str(int(cfg.retry_after_s * 1000))},
            )
        if fault == "500":
            self._log(record)
            return _json({"error": {"message": "Internal server error", "type": "server_error",
                                    "param": None, "code": None}}, status=500)
        if fault == "drop":
            self._log(record)
            if cfg.latency_ms:
                await asyncio.sleep(cfg.latency_ms / 2000)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp ends the handler without a response

        reasoning, text, finish, fmt = self._compose(entry, seed, body)
        prompt_tokens = _tokens(_prompt_of(body.get("messages")))
        completion_tokens = _tokens(reasoning) + _tokens(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": _tokens(reasoning)},
        }
        record.update(format=fmt, finish_reason=finish)
        self.served += 1
        if stream:
            response = await self._stream(request, model, reasoning, text, finish, fmt, usage)
            self._log(record)
            return response
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000)
        self._log(record)
        if fault == "malformed":
            return web.Response(body=b'{"id": "chatcmpl-sim", "choices": [{"mess',
                                content_type="application/json", headers=_SIM_HEADERS)
        message = _message(reasoning, text, fmt)
        return _json({
            "id": "chatcmpl-sim", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": usage,
        })

    def _compose(self, entry: _Entry | None, seed: Any, body: dict[str, Any]
                 ) -> tuple[str, str, str, str]:
        cfg = self.config
        prompt = _prompt_of(body.get("messages"))
        digest = hashlib.blake2b(f"{seed}|{prompt}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        fmt = cfg.reasoning_format
        if fmt == "mixed":
            fmt = rng.choice(_CONCRETE)
        correct = rng.random() < cfg.accuracy
        truncated = rng.random() < cfg.truncate
        if entry is None:
            reasoning, text = "I do not recognise this problem.", "I cannot answer that."
        else:
            reasoning, text = entry.writer(entry.sample, correct, rng, prompt)
        if truncated:
            return reasoning[: len(reasoning) // 2], "", "length", fmt
        return reasoning, text, "stop", fmt

    async def _stream(self, request: web.Request, model: str, reasoning: str, text: str,
                      finish: str, fmt: str, usage: dict[str, Any]) -> web.StreamResponse:
        cfg = self.config
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               **_SIM_HEADERS})
        await response.prepare(request)
        deltas = _stream_deltas(reasoning, text, fmt, max(1, cfg.stream_chunks),
                                unclosed=finish == "length")
        pause = cfg.latency_ms / 1000 / (2 * max(1, len(deltas))) if cfg.latency_ms else 0.0
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 2000)
        base = {"id": "chatcmpl-sim", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "finish_reason": None}]}
        out = [b"data: " + orjson.dumps(first) + b"\n\n"]
        for delta in deltas:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if pause:
                await response.write(b"".join(out))
                out.clear()
                await asyncio.sleep(pause)
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        use = {**base, "choices": [], "usage": usage}
        out.append(b"data: " + orjson.dumps(last) + b"\n\n")
        out.append(b"data: " + orjson.dumps(use) + b"\n\ndata: [DONE]\n\n")
        await response.write(b"".join(out))
        await response.write_eof()
        return response


_SIM_HEADERS = {"x-evals-simulator": "1"}
SIMULATOR_KEY: web.AppKey[_Simulator] = web.AppKey("simulator", _Simulator)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status,
                        content_type="application/json",
                        headers={**_SIM_HEADERS, **(headers or {})})


def _message(reasoning: str, text: str, fmt: str) -> dict[str, Any]:
    if fmt in ("reasoning_content", "reasoning"):
        return {"role": "assistant", "content": text or None, fmt: reasoning}
    if fmt == "mistral":
        content: list[dict[str, Any]] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": reasoning}]}
        ]
        if text:
            content.append({"type": "text", "text": text})
        return {"role": "assistant", "content": content}
    if fmt == "think":
        closer = "</think>\n\n" if text else ""
        return {"role": "assistant", "content": f"<think>\n{reasoning}\n{closer}{text}"}
    if fmt == "think_brackets":
        closer = "[/THINK]" if text else ""
        return {"role": "assistant", "content": f"[THINK]{reasoning}{closer}{text}"}
    return {"role": "assistant", "content": text}


def _pieces(text: str, k: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // k))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _stream_deltas(reasoning: str, text: str, fmt: str, k: int, unclosed: bool
                   ) -> list[dict[str, Any]]:
    if fmt in ("reasoning_content", "reasoning"):
        return ([{fmt: p} for p in _pieces(reasoning, k)]
                + [{"content": p} for p in _pieces(text, k)])
    if fmt == "mistral":
        return ([{"content": [{"type": "thinking", "thinking": [{"type": "text", "text": p}]}]}
                 for p in _pieces(reasoning, k)]
                + [{"content": p} for p in _pieces(text, k)])
    if fmt == "none":
        return [{"content": p} for p in _pieces(text, k)]
    whole = _message(reasoning, text, fmt)["content"]
    # Cut the raw text anywhere, tags included: clients must buffer across deltas.
    return [{"content": p} for p in _pieces(whole, 2 * k)]


def build_app(config: SimConfig, book: AnswerBook, log: IO[bytes] | None = None
              ) -> web.Application:
    """The aiohttp application (routes ``/v1/models`` and ``/v1/chat/completions``)."""
    sim = _Simulator(config, book, log)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_post("/v1/chat/completions", sim.chat)
    app[SIMULATOR_KEY] = sim
    return app


async def _serve_until(config: SimConfig, book: AnswerBook, host: str, port: int,
                       request_log: Path | None, stop: asyncio.Event,
                       ready: Callable[[int], None] | None, handle_signals: bool) -> None:
    """Serve on ``host:port`` (0: any free port), call ``ready(bound_port)``, serve until
    ``stop`` is set, then close everything, the request log included."""
    log = request_log.open("ab") if request_log else None
    runner = web.AppRunner(build_app(config, book, log), access_log=None,
                           handle_signals=handle_signals)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
        await site.start()
        if ready:
            ready(runner.addresses[0][1])
        await stop.wait()
    finally:
        await runner.cleanup()
        if log:
            log.close()


def serve(config: SimConfig, book: AnswerBook, host: str, port: int,
          request_log: Path | None = None, ready: Callable[[int], None] | None = None) -> None:
    """Serve until interrupted (the ``evals simulate`` command)."""

    async def main() -> None:
        await _serve_until(config, book, host, port, request_log, asyncio.Event(), ready,
                           handle_signals=True)

    _run_loop(main())


def _run_loop(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


class SimulatorThread:
    """The simulator on a loopback port in a background thread (tests, the demo).

    ``port``: 0 (the default) picks a free one. To restart an endpoint, ``stop()`` this one
    and start a new ``SimulatorThread`` on the same ``port``.

    Example:
        >>> with SimulatorThread(SimConfig(accuracy=0.7), book) as sim:
        ...     sim.base_url  # 'http://127.0.0.1:PORT/v1'
    """

    def __init__(self, config: SimConfig, book: AnswerBook,
                 request_log: Path | None = None, host: str = "127.0.0.1", port: int = 0
                 ) -> None:
        self.config = config
        self.book = book
        self.request_log = request_log
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="evals-simulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving (idempotent; callable from any thread): the server "dies"."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30)

    def _main(self) -> None:
        def ready(port: int) -> None:
            self.port = port
            self._ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await _serve_until(self.config, self.book, self.host, self.port, self.request_log,
                               self._stop, ready, handle_signals=False)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001  surfaced by __enter__ if it happens before ready
            self._error = exc
            self._ready.set()
