"""The async OpenAI-compatible chat client.

One method matters: ``ChatClient.complete(body)`` sends one chat-completions request and
returns a ``Response`` with the reasoning separated from the answer, or raises:

* ``RequestFailed`` when a retryable failure (408/409/429/5xx, connection error, timeout,
  malformed body) persists after ``max_retries`` retries with jittered exponential back-off;
* ``AuthError`` (401/403) or ``UnknownModelError`` (404, or 400 about the model) at once,
  since no retry can fix them; other 4xx as ``EndpointError``.

Concurrency adapts: a 429 halves the number of requests allowed in flight, and each run of
successes as long as the current limit adds one back, up to the configured maximum.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx
import orjson

from evals.errors import AuthError, EndpointError, RequestFailed, UnknownModelError
from evals.parsing import Completion, MalformedBody, StreamAccumulator, body_error, parse_completion
from evals.providers import Endpoint
from evals.records import Response

__all__ = ["AdaptiveLimiter", "ChatClient", "ClientStats", "RetryPolicy"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failures are retried.

    Attributes:
        max_retries: extra sends after the first (so ``max_retries + 1`` in all).
        base_delay: first back-off in seconds; doubles each retry, with full jitter.
        max_delay: cap on one back-off, and on a ``Retry-After`` the server asks for.
    """

    max_retries: int = 8
    base_delay: float = 0.5
    max_delay: float = 60.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class AdaptiveLimiter:
    """A concurrency limit that shrinks on 429 and grows back slowly.

    Args:
        maximum: the configured concurrency; the limit never exceeds it.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.in_flight = 0
        self._successes = 0
        self._waiters: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._waiters is None:
            self._waiters = asyncio.Condition()
        return self._waiters

    async def acquire(self) -> None:
        if self.in_flight < self.limit:  # fast path: no lock when there is room
            self.in_flight += 1
            return
        cond = self._cond()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def release(self) -> None:
        self.in_flight -= 1
        cond = self._waiters
        if cond is not None and cond._waiters:
            async with cond:
                cond.notify(self.limit - self.in_flight)

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self.limit += 1

    def on_rate_limited(self) -> None:
        self.limit = max(1, self.limit // 2)
        self._successes = 0


@dataclass(slots=True)
class ClientStats:
    """Counters the progress bar shows. Run-time state, kept out of any config."""

    sent: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: int = 0
    consecutive_failed: int = 0  # requests that failed after all retries, since a success


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms`` first, then ``Retry-After``
    as seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _error_text(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:300].decode("utf-8", "replace").strip()
    return (body_error(body) or raw[:300].decode("utf-8", "replace")).strip()


class ChatClient:
    """Sends chat-completions requests to one endpoint.

    Args:
        endpoint: where to send, with the key (which never leaves the Authorization header).
        transport: any ``httpx.AsyncBaseTransport``; default ``HttpTransport`` sized to
            ``concurrency`` (httpx's own when the environment names a proxy for the
            endpoint). Unit tests pass ``httpx.MockTransport``.
        concurrency: the most requests in flight (the adaptive limit starts there).
        retry: the retry policy.
        timeout: seconds of silence allowed on a connection before it counts as a timeout.
        seed: seeds the back-off jitter, so tests are repeatable.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 64,
        retry: RetryPolicy | None = None,
        timeout: float = 600.0,
        seed: int = 0,
    ) -> None:
        if transport is None:
            from evals.transport import default_transport

            transport = default_transport(endpoint.base_url, concurrency)
        self.endpoint = endpoint
        self.transport = transport
        self.limiter = AdaptiveLimiter(concurrency)
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self._rng = random.Random(seed)
        self._url = httpx.URL(endpoint.base_url + "/chat/completions")
        headers = {"content-type": "application/json", "accept": "application/json"}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        self._headers = httpx.Headers(headers)
        # The headers of every POST, in the order httpx would put them, built once: each
        # request adds only its Content-Length (see ``_post``).
        self._post_headers = [(b"Host", self._url.netloc), *self._headers.raw]
        self._models: list[str] | None = None
        # httpx's per-request timeouts: any transport honours them (httpx's own would
        # otherwise wait for ever on a silent connection).
        self._timeouts = {"connect": 30.0, "read": timeout, "write": timeout, "pool": None}

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the one method -------------------------------------------------------------------

    async def complete(self, body: Mapping[str, Any]) -> Response:
        """Send one request (streaming if ``body["stream"]``) and return the ``Response``.

        Raises:
            RequestFailed: retries exhausted on a retryable failure.
            AuthError, UnknownModelError, EndpointError: the endpoint refused the request.
        """
        payload = orjson.dumps(body)
        stream = bool(body.get("stream"))
        model = str(body.get("model", ""))
        last = "unknown"
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            await self.limiter.acquire()
            wait: float | None = None
            try:
                self.stats.sent += 1
                started = time.perf_counter()
                result = await self._send_once(payload, stream, model, started)
            except _Retryable as exc:
                last = exc.kind
                wait = exc.retry_after
                if exc.rate_limited:
                    self.stats.rate_limited += 1
                    self.limiter.on_rate_limited()
            else:
                self.limiter.on_success()
                self.stats.consecutive_failed = 0
                completion, latency, ttft, simulated = result
                return Response(
                    text=completion.text,
                    reasoning=completion.reasoning,
                    finish_reason=completion.finish_reason,
                    usage=completion.usage,
                    reasoning_unclosed=completion.unclosed,
                    latency_s=latency,
                    ttft_s=ttft,
                    retries=attempt,
                    model=completion.model,
                    simulated=simulated,
                )
            finally:
                await self.limiter.release()
            if attempt < self.retry.max_retries:
                backoff = self.retry.backoff(attempt, self._rng)
                delay = min(self.retry.max_delay, wait) if wait is not None else backoff
                await asyncio.sleep(delay)
        self.stats.failed += 1
        self.stats.consecutive_failed += 1
        raise RequestFailed(
            f"{self._url} failed {self.retry.max_retries + 1} times; last failure: {last}",
            kind=last,
            attempts=self.retry.max_retries + 1,
        )

    async def _send_once(
        self, payload: bytes, stream: bool, model: str, started: float
    ) -> tuple[Completion, float, float | None, bool]:
        request = self._post(payload, stream)
        try:
            response = await self.transport.handle_async_request(request)
            try:
                return await self._read_response(response, stream, model, started)
            finally:
                if type(response.stream) is not httpx.ByteStream:  # nothing to release
                    await response.aclose()
        except MalformedBody as exc:
            raise _Retryable(f"malformed body ({exc})") from exc
        except httpx.TimeoutException as exc:
            raise _Retryable("timeout") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"connection: {type(exc).__name__}") from exc

    def _post(self, payload: bytes, stream: bool) -> httpx.Request:
        """The chat request, as ``httpx.Request("POST", url, headers=..., content=payload)``
        would build it (same headers, same order), at a third of the cost: the headers come
        pre-built and the body is given as a ``ByteStream``, so httpx neither merges default
        headers nor copies the body through its encoders. The body is left unread (a
        transport reads the stream; ``MockTransport`` reads it before its handler runs):
        ``Request.read`` checks the stream against ``typing.Iterable``, 3-6% of an attempt."""
        request = httpx.Request(
            "POST",
            self._url,
            headers=[*self._post_headers, (b"Content-Length", b"%d" % len(payload))],
            stream=httpx.ByteStream(payload),
            extensions={"evals.stream": stream, "timeout": self._timeouts},
        )
        return request

    async def _read_response(
        self, response: httpx.Response, stream: bool, model: str, started: float
    ) -> tuple[Completion, float, float | None, bool]:
        if response.status_code != 200:
            raw = await _read_all(response)
            await self._raise_for_status(response.status_code, response.headers, raw, model)
        simulated = "x-evals-simulator" in response.headers
        if stream:
            acc = StreamAccumulator()
            ttft: float | None = None
            async for chunk in _raw_chunks(response):
                acc.feed(chunk)
                if ttft is None and acc.first_token:
                    ttft = time.perf_counter() - started
            return acc.result(), time.perf_counter() - started, ttft, simulated
        raw = await _read_all(response)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(f"not JSON: {raw[:80]!r}") from exc
        return parse_completion(body), time.perf_counter() - started, None, simulated

    async def _raise_for_status(
        self, status: int, headers: httpx.Headers, raw: bytes, model: str
    ) -> None:
        message = _error_text(raw)
        if status == 429:
            lowered = raw[:2000].decode("utf-8", "replace").lower()
            if "insufficient_quota" in lowered or "exceeded your current quota" in lowered:
                raise EndpointError(
                    f"{self.endpoint.base_url} answered 429: out of quota ({message}). "
                    "Add credit or use another key; retrying will not help.",
                    status=status,
                )
            if "request too large" in lowered:
                raise EndpointError(
                    f"{self.endpoint.base_url} answered 429: the request is larger than the "
                    f"rate limit allows ({message}). Lower --max-tokens or raise the limit; "
                    "retrying will not help.",
                    status=status,
                )
            raise _Retryable("http 429", retry_after=_retry_after(headers), rate_limited=True)
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(f"http {status}", retry_after=_retry_after(headers))
        if status in (401, 403):
            key_hint = (
                f"Set {self.endpoint.key_env} to a valid key"
                if self.endpoint.key_env
                else "Pass --api-key-env VAR naming a variable that holds a valid key"
            )
            state = "was rejected" if self.endpoint.api_key else "is missing"
            raise AuthError(
                f"{self.endpoint.base_url} answered {status} ({message}): the API key {state}. "
                f"{key_hint} (provider {self.endpoint.provider!r}), or pass --api-key-env VAR.",
                status=status,
            )
        if status == 404 or (status in (400, 422) and _mentions_model(message, model)):
            offered = await self._offered_models()
            listing = ", ".join(offered[:40]) if offered else "(the server does not list models)"
            raise UnknownModelError(
                f"{self.endpoint.base_url} does not serve model {model!r} ({status}: {message}). "
                f"The server offers: {listing}. Pass one of them with --model.",
                status=status,
            )
        raise EndpointError(
            f"{self.endpoint.base_url} refused the request with {status}: {message}",
            status=status,
        )

    async def _offered_models(self) -> list[str]:
        try:
            return await self.list_models()
        except (EndpointError, httpx.HTTPError, MalformedBody, orjson.JSONDecodeError):
            return []

    async def list_models(self) -> list[str]:
        """The model ids ``GET /models`` lists (sorted)."""
        if self._models is not None:
            return self._models
        request = httpx.Request(
            "GET", httpx.URL(self.endpoint.base_url + "/models"), headers=self._headers,
            extensions={"timeout": self._timeouts},
        )
        response = await self.transport.handle_async_request(request)
        try:
            raw = await _read_all(response)
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise EndpointError(
                f"GET {self.endpoint.base_url}/models answered {response.status_code}",
                status=response.status_code,
            )
        body = orjson.loads(raw)
        data = body.get("data") if isinstance(body, dict) else body
        ids = sorted(
            str(m["id"]) for m in (data or []) if isinstance(m, dict) and "id" in m
        )
        self._models = ids
        return ids


def _mentions_model(message: str, model: str) -> bool:
    lowered = message.lower()
    return ("model" in lowered and (model.lower() in lowered or "invalid" in lowered)) or (
        "not a valid model" in lowered
    )


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive, or at once if it was already read.

    Iterates the transport's ``response.stream`` itself rather than ``aiter_raw()``, which
    adds a chunker and a context manager per chunk; both yield the raw (undecoded) bytes.
    """
    if response.is_stream_consumed:  # built with content=..., or read by the transport
        yield response.content
        return
    stream = response.stream
    chunks: AsyncIterable[bytes] = (
        stream if isinstance(stream, httpx.AsyncByteStream)
        else response.aiter_raw()  # a sync stream: httpx raises its usual error
    )
    async for chunk in chunks:
        yield chunk


async def _read_all(response: httpx.Response) -> bytes:
    stream = response.stream
    if isinstance(stream, httpx.ByteStream):  # read whole already (the transport, content=)
        # Iterated synchronously: an async generator per response costs a registration
        # with the event loop's weak set of generators, about 8% of an attempt.
        return b"".join(stream)
    return b"".join([chunk async for chunk in _raw_chunks(response)])


class _Retryable(Exception):
    def __init__(
        self, kind: str, *, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after
        self.rate_limited = rate_limited
