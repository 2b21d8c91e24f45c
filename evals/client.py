"""The async OpenAI-compatible chat client.

One method matters: ``ChatClient.complete(body)`` sends one chat-completions request and
returns a ``Response`` with the reasoning separated from the answer, or raises:

* ``RequestFailed`` when a retryable failure (408/409/429/5xx, connection error, timeout,
  malformed, truncated or undecodable body) persists after ``max_retries`` retries with
  jittered exponential back-off;
* ``EndpointUnreachable`` when no connection to the endpoint has ever been opened and a few
  quick retries (``RetryPolicy.unreachable_after``, a few seconds) did not open one;
* ``CertificateError`` when the server's TLS certificate does not verify;
* ``AuthError`` (401/403) or ``UnknownModelError`` (404, or 400 about the model) at once,
  since no retry can fix them; other 4xx as ``EndpointError`` (a 404 without a model named
  on a base URL without ``/v1`` says so).

Every send is counted: a request goes out again only as a retry, after a back-off, counted
in ``ClientStats.retries`` and recorded on the ``Response`` (``retries``). The HTTP layer is
httpx's API over httpx-aiohttp's transport (aiohttp's connection pool underneath), which
never resends a POST by itself (aiohttp retries a request on a stale keep-alive connection
only for idempotent methods). Unit tests inject ``httpx.MockTransport``.

Several endpoints (replicas of one server) can share one client: each send goes to the live
endpoint with the fewest requests in flight, a failing one is taken out and probed until it
answers, and a refused connection to an endpoint that has answered before (a restart) is
not a retry: the request waits for a live endpoint, at most ``max_downtime`` seconds
(``evals.endpoints``). Concurrency adapts per endpoint: a 429 sets the limit where the 429s
began (``evals.endpoints.AdaptiveLimiter``), and successes add back slowly.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import httpx
import orjson

from evals.endpoints import AdaptiveLimiter, EndpointPool, LimiterView, Target
from evals.errors import (
    AuthError,
    CertificateError,
    ConfigError,
    EndpointError,
    EndpointUnreachable,
    RequestFailed,
    UnknownModelError,
)
from evals.parsing import Completion, MalformedBody, StreamAccumulator, body_error, parse_completion
from evals.providers import Endpoint, proxy_for
from evals.records import Response

__all__ = [
    "AdaptiveLimiter",
    "ChatClient",
    "ClientStats",
    "RetryPolicy",
    "default_transport",
    "tls_context",
]

# A version segment in a base URL's path: /v1, /api/v1, /openai/v1, /v1beta.
_VERSIONED = re.compile(r"/v\d+[a-z]*(/|$)")
# The in-flight limit an endpoint starts at; it doubles each 0.1 s (and grows by one per
# answer) up to --concurrency until the first 429 (``AdaptiveLimiter``).
_SLOW_START = 8
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failures are retried.

    Attributes:
        max_retries: extra sends after the first (so ``max_retries + 1`` in all).
        base_delay: first back-off in seconds; doubles each retry, with full jitter.
        max_delay: cap on one back-off, and on a ``Retry-After`` the server asks for.
        unreachable_after: retries of a failed connect (refused, unresolvable host) before
            an endpoint that has never answered is declared unreachable
            (``EndpointUnreachable``); those retries wait at most ``quick_delay`` each, so a
            wrong ``--base-url`` is reported within a few seconds, not after minutes.
        quick_delay: cap on the back-off before such a retry.
    """

    max_retries: int = 8
    base_delay: float = 0.5
    max_delay: float = 60.0
    unreachable_after: int = 3
    quick_delay: float = 1.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(slots=True)
class ClientStats:
    """Counters the progress bar shows. Run-time state, kept out of any config."""

    sent: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: int = 0
    consecutive_failed: int = 0  # requests that failed after all retries, since a success
    answered: int = 0  # HTTP answers of any status: the endpoint is reachable once > 0


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
    """Sends chat-completions requests to one endpoint, or to several replicas of one.

    Args:
        endpoint: where to send, with the key (which never leaves the Authorization header);
            or several endpoints (replicas serving the same model), each send going to the
            live one with the fewest requests in flight (``evals.endpoints``).
        transport: any ``httpx.AsyncBaseTransport``, shared by all endpoints; default
            ``default_transport(...)`` per endpoint: httpx-aiohttp's transport with a
            connection pool sized to ``concurrency``. Unit tests pass ``httpx.MockTransport``.
        concurrency: the most requests in flight at one endpoint (its adaptive limit starts
            there); the caller bounds the total (the runner's workers).
        retry: the retry policy.
        timeout: seconds of silence allowed on a connection before it counts as a timeout
            (a streamed answer may take longer in all, as long as bytes keep coming).
        seed: seeds the back-off jitter, so tests are repeatable.
        max_downtime: seconds requests wait while no endpoint is live (refusing connections
            after having answered, or failing) before ``complete`` raises ``EndpointError``.

    Raises:
        ConfigError: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` name nothing readable.
        ValueError: no endpoint given.
    """

    def __init__(
        self,
        endpoint: Endpoint | Sequence[Endpoint],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 64,
        retry: RetryPolicy | None = None,
        timeout: float = 600.0,
        seed: int = 0,
        max_downtime: float = 300.0,
    ) -> None:
        endpoints = [endpoint] if isinstance(endpoint, Endpoint) else list(endpoint)
        if not endpoints:
            raise ValueError("ChatClient needs at least one endpoint")
        self.endpoint = endpoints[0]
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self._rng = random.Random(seed)
        targets = [self._target(e, transport, concurrency) for e in endpoints]
        self.pool = EndpointPool(targets, self._probe, max_downtime=max_downtime)
        self.transport = targets[0].transport
        self._headers = self._headers_of(self.endpoint)
        self._models: list[str] | None = None
        # httpx's per-request timeouts, which httpx-aiohttp maps onto aiohttp's: connect,
        # and the silence allowed between two reads. "pool" is None: the limiter bounds
        # the requests in flight, so waiting for a pooled connection is never long.
        self._timeouts = {"connect": 30.0, "read": timeout, "write": timeout, "pool": None}
        self._probe_timeouts = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": None}

    @staticmethod
    def _headers_of(endpoint: Endpoint) -> httpx.Headers:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            # What httpx decodes without optional packages; aiohttp would otherwise offer br
            # and zstd whenever it can decode them itself (it does not decode here: httpx does).
            "accept-encoding": "gzip, deflate",
        }
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        return httpx.Headers(headers)

    def _target(self, endpoint: Endpoint, transport: httpx.AsyncBaseTransport | None,
                concurrency: int) -> Target:
        url = httpx.URL(endpoint.base_url + "/chat/completions")
        # The headers of every POST, in the order httpx would put them, built once: each
        # request adds only its Content-Length (see ``_post``).
        post_headers = [(b"Host", url.netloc), *self._headers_of(endpoint).raw]
        return Target(endpoint, url, post_headers,
                      transport or default_transport(endpoint.base_url, concurrency),
                      AdaptiveLimiter(concurrency, start=min(concurrency, _SLOW_START)))

    # The first endpoint's chat URL and prebuilt POST headers (tests point them elsewhere).
    @property
    def _url(self) -> httpx.URL:
        return self.pool.targets[0].url

    @_url.setter
    def _url(self, url: httpx.URL) -> None:
        self.pool.targets[0].url = url

    @property
    def _post_headers(self) -> list[tuple[bytes, bytes]]:
        return self.pool.targets[0].post_headers

    @_post_headers.setter
    def _post_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.pool.targets[0].post_headers = headers

    @property
    def limiter(self) -> AdaptiveLimiter | LimiterView:
        """The in-flight limit: the endpoint's limiter, or with several the sum of theirs."""
        targets = self.pool.targets
        return targets[0].limiter if len(targets) == 1 else self.pool.view()

    def endpoint_report(self) -> list[dict[str, Any]]:
        """Per endpoint: answers, sends, 429s, times taken out, seconds down, learned limit."""
        return self.pool.report()

    async def aclose(self) -> None:
        await self.pool.aclose()
        closed: set[int] = set()
        for target in self.pool.targets:
            if id(target.transport) not in closed:
                closed.add(id(target.transport))
                await target.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the one method -------------------------------------------------------------------

    async def complete(self, body: Mapping[str, Any]) -> Response:
        """Send one request (streaming if ``body["stream"]``) and return the ``Response``.

        Each send after the first is a retry: counted in ``stats.retries`` and in the
        returned ``Response.retries``, and made only after a back-off, except a connection
        refused by an endpoint that has answered before: the request was never sent, the
        endpoint is taken out, and the request goes to another one or waits for one to come
        back (not counted against ``retry.max_retries``).

        Raises:
            RequestFailed: retries exhausted on a retryable failure.
            EndpointUnreachable: no connection could be opened to an endpoint that has never
                answered, after ``retry.unreachable_after`` quick retries.
            EndpointError: no endpoint live for ``max_downtime`` seconds; or the endpoint
                refused the request (and its subclasses AuthError, UnknownModelError).
            CertificateError: the server's certificate does not verify (at once).
        """
        payload = orjson.dumps(body)
        stream = bool(body.get("stream"))
        model = str(body.get("model", ""))
        last = "unknown"
        policy = self.retry
        pool = self.pool
        url = self._url
        sends = used = 0  # all sends; those counted against the retry budget
        refused_since: float | None = None
        while True:
            if sends:
                self.stats.retries += 1
            slot = await pool.acquire()
            target = slot.target
            url = target.url
            wait: float | None = None
            unreached = hopeless = refused = False
            try:
                self.stats.sent += 1
                started = time.perf_counter()
                result = await self._send_once(target, payload, stream, model, started)
            except _Retryable as exc:
                last = exc.kind
                wait = exc.retry_after
                refused = exc.connect
                unreached = exc.connect and not pool.answered
                hopeless = exc.hopeless
                if exc.rate_limited:
                    self.stats.rate_limited += 1
                    pool.rate_limited(slot)
                else:
                    pool.failed(target, refused=exc.connect, keep_last=unreached)
            else:
                pool.succeeded(slot)
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
                    retries=sends,
                    model=completion.model,
                    simulated=simulated,
                    endpoint=target.endpoint.base_url,
                )
            finally:
                await pool.release(target)
            sends += 1
            if refused and not unreached:
                # A restart (or a replica gone): nothing was sent. The pool routes the next
                # send to a live endpoint, or holds it until one answers again.
                now = time.monotonic()
                refused_since = refused_since if refused_since is not None else now
                if now - refused_since <= pool.max_downtime:
                    continue
                self.stats.failed += 1
                self.stats.consecutive_failed += 1
                raise RequestFailed(
                    f"{url} refused connections for {pool.max_downtime:g} s although it "
                    f"answered before; last failure: {last}", kind=last, attempts=sends)
            used += 1
            if unreached and (hopeless or used - 1 >= min(policy.unreachable_after,
                                                          policy.max_retries)):
                self.stats.failed += 1
                tries = f"{used} {'try' if used == 1 else 'tries'}"
                where = ", ".join(t.endpoint.base_url for t in pool.targets)
                raise EndpointUnreachable(
                    f"Cannot connect to {where} ({last}; {tries}, and no request to it has "
                    "ever been answered). Is the server running? Check --base-url (host, "
                    "port, http/https) or --provider."
                )
            if used > policy.max_retries:
                break
            delay = policy.backoff(used - 1, self._rng)
            if wait is not None:
                delay = min(policy.max_delay, wait)
            elif unreached:
                delay = min(delay, policy.quick_delay)
            await asyncio.sleep(delay)
        self.stats.failed += 1
        self.stats.consecutive_failed += 1
        raise RequestFailed(
            f"{url} failed {used} times; last failure: {last}",
            kind=last,
            attempts=used,
        )

    async def _probe(self, target: Target) -> bool:
        """Whether a taken-out endpoint answers again: ``GET /models`` answered below 500."""
        request = httpx.Request(
            "GET", httpx.URL(target.endpoint.base_url + "/models"),
            headers=self._headers_of(target.endpoint),
            extensions={"timeout": self._probe_timeouts},
        )
        try:
            response = await target.transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError, OSError):
            return False
        return response.status_code < 500

    async def _send_once(
        self, target: Target, payload: bytes, stream: bool, model: str, started: float
    ) -> tuple[Completion, float, float | None, bool]:
        request = self._post(payload, stream, target)
        try:
            response = await target.transport.handle_async_request(request)
            self.stats.answered += 1
            self.pool.answered_by(target)
            try:
                return await self._read_response(target, response, stream, model, started)
            finally:
                await response.aclose()
        except MalformedBody as exc:
            raise _Retryable(f"malformed body ({exc})") from exc
        except httpx.DecodingError as exc:  # a Content-Encoding the body does not match
            raise _Retryable(f"undecodable body ({_short(exc)})") from exc
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise self._transport_failure(target, exc) from exc

    def _transport_failure(self, target: Target, exc: Exception) -> _Retryable:
        """What a failure of the HTTP layer means. httpx-aiohttp maps aiohttp's exceptions
        onto httpx's coarsely (a refused connection becomes ``ConnectTimeout``), so the
        aiohttp exception it chains, when there is one, decides."""
        cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
        if isinstance(cause, aiohttp.ClientConnectorCertificateError):
            raise self._certificate_error(target, cause)
        if isinstance(cause, aiohttp.ClientProxyConnectionError):
            return _Retryable(f"cannot connect to the proxy ({_short(cause)}); check "
                              "HTTPS_PROXY/HTTP_PROXY and NO_PROXY", connect=True)
        if isinstance(cause, aiohttp.ClientConnectorDNSError):
            # "Name or service not known" is the resolver's final word (a typo, not a
            # hiccup: that is EAI_AGAIN, which is retried).
            return _Retryable(f"cannot resolve the host ({_short(cause)})", connect=True,
                              hopeless=cause.os_error.errno == socket.EAI_NONAME)
        if isinstance(cause, aiohttp.ClientConnectorError):
            return _Retryable(f"connection refused or failed ({_short(cause)})", connect=True)
        if isinstance(cause, (aiohttp.ServerTimeoutError, httpx.TimeoutException)):
            return _Retryable("timeout")
        if isinstance(cause, aiohttp.ClientPayloadError):
            return _Retryable(f"truncated body ({_short(cause)})")
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return _Retryable("connection: closed by the server before the answer")
        if isinstance(cause, httpx.HTTPError):  # raised by httpx itself, or a mock
            return _Retryable(f"connection: {type(cause).__name__}",
                              connect=isinstance(cause, httpx.ConnectError))
        return _Retryable(f"connection: {type(cause).__name__} ({_short(cause)})")

    def _certificate_error(self, target: Target,
                           cause: aiohttp.ClientConnectorCertificateError) -> CertificateError:
        verify = cause.certificate_error
        why = getattr(verify, "verify_message", None) or str(verify)
        roots = (f"SSL_CERT_FILE={os.environ['SSL_CERT_FILE']}"
                 if os.environ.get("SSL_CERT_FILE")
                 else f"SSL_CERT_DIR={os.environ['SSL_CERT_DIR']}"
                 if os.environ.get("SSL_CERT_DIR") else "certifi's CA bundle")
        return CertificateError(
            f"{target.endpoint.base_url}: the server's TLS certificate does not verify ({why}) "
            f"against the trusted roots ({roots}). If the server uses a private or "
            "self-signed CA, set SSL_CERT_FILE to a PEM file holding that CA certificate "
            "(or SSL_CERT_DIR to a directory of them); or use http:// for a local server "
            "without TLS. Retrying cannot fix this."
        )

    def _post(self, payload: bytes, stream: bool, target: Target | None = None
              ) -> httpx.Request:
        """The chat request, as ``httpx.Request("POST", url, headers=..., content=payload)``
        would build it (same headers, same order), at a quarter of the cost: the headers
        come pre-built and the body is given as a ``ByteStream``, so httpx neither merges
        default headers nor copies the body through its encoders. The body is marked read
        (``Request.content`` set) so the transport hands aiohttp plain bytes."""
        target = target or self.pool.targets[0]
        request = httpx.Request(
            "POST",
            target.url,
            headers=[*target.post_headers, (b"Content-Length", b"%d" % len(payload))],
            stream=httpx.ByteStream(payload),
            extensions={"evals.stream": stream, "timeout": self._timeouts},
        )
        request._content = payload  # what ``Request.read()`` sets, without its type checks
        return request

    async def _read_response(
        self, target: Target, response: httpx.Response, stream: bool, model: str,
        started: float,
    ) -> tuple[Completion, float, float | None, bool]:
        if response.status_code != 200:
            raw = await response.aread()
            await self._raise_for_status(target.endpoint, response.status_code,
                                         response.headers, raw, model)
        simulated = "x-evals-simulator" in response.headers
        if stream:
            acc = StreamAccumulator()
            ttft: float | None = None
            async for chunk in response.aiter_bytes():
                acc.feed(chunk)
                if ttft is None and acc.first_token:
                    ttft = time.perf_counter() - started
            return acc.result(), time.perf_counter() - started, ttft, simulated
        raw = await response.aread()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(f"not JSON: {raw[:80]!r}") from exc
        return parse_completion(body), time.perf_counter() - started, None, simulated

    async def _raise_for_status(
        self, endpoint: Endpoint, status: int, headers: httpx.Headers, raw: bytes, model: str
    ) -> None:
        message = _error_text(raw)
        if status == 429:
            lowered = raw[:2000].decode("utf-8", "replace").lower()
            if "insufficient_quota" in lowered or "exceeded your current quota" in lowered:
                raise EndpointError(
                    f"{endpoint.base_url} answered 429: out of quota ({message}). "
                    "Add credit or use another key; retrying will not help.",
                    status=status,
                )
            if "request too large" in lowered:
                raise EndpointError(
                    f"{endpoint.base_url} answered 429: the request is larger than the "
                    f"rate limit allows ({message}). Lower --max-tokens or raise the limit; "
                    "retrying will not help.",
                    status=status,
                )
            raise _Retryable("http 429", retry_after=_retry_after(headers), rate_limited=True)
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(f"http {status}", retry_after=_retry_after(headers))
        if status in (401, 403):
            state = "was rejected" if endpoint.api_key else "is missing"
            if endpoint.key_env:
                fix = (f"Set {endpoint.key_env} to a valid key (provider "
                       f"{endpoint.provider!r}), or name another variable with "
                       "--api-key-env VAR.")
            else:
                fix = ("Export the key in a variable (export MY_KEY=...) and name it with "
                       "--api-key-env MY_KEY.")
            raise AuthError(
                f"{endpoint.base_url} answered {status} ({message}): the API key {state}. "
                f"{fix}",
                status=status,
            )
        if (status == 404 and not _mentions_model(message, model)
                and not _VERSIONED.search(httpx.URL(endpoint.base_url).path)):
            raise EndpointError(
                f"{endpoint.base_url}/chat/completions answered 404 ({message}): nothing serves chat completions "
                "there. OpenAI-compatible servers serve them under /v1: try --base-url "
                f"{endpoint.base_url}/v1",
                status=status,
            )
        if status == 404 or (status in (400, 422) and _mentions_model(message, model)):
            offered = await self._offered_models(endpoint)
            listing = ", ".join(offered[:40]) if offered else "(the server does not list models)"
            raise UnknownModelError(
                f"{endpoint.base_url} does not serve model {model!r} ({status}: {message}). "
                f"The server offers: {listing}. Pass one of them with --model.",
                status=status,
            )
        raise EndpointError(
            f"{endpoint.base_url} refused the request with {status}: {message}",
            status=status,
        )

    async def _offered_models(self, endpoint: Endpoint) -> list[str]:
        try:
            return await self.list_models(endpoint)
        except (EndpointError, httpx.HTTPError, aiohttp.ClientError, orjson.JSONDecodeError):
            return []

    async def list_models(self, endpoint: Endpoint | None = None) -> list[str]:
        """The model ids ``GET /models`` lists (sorted), at ``endpoint`` (default: the
        first)."""
        if self._models is not None:
            return self._models
        target = next((t for t in self.pool.targets if t.endpoint is endpoint),
                      self.pool.targets[0])
        endpoint = target.endpoint
        request = httpx.Request(
            "GET", httpx.URL(endpoint.base_url + "/models"),
            headers=self._headers_of(endpoint), extensions={"timeout": self._timeouts},
        )
        response = await target.transport.handle_async_request(request)
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise EndpointError(
                f"GET {endpoint.base_url}/models answered {response.status_code}",
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


def _short(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class _Retryable(Exception):
    def __init__(
        self, kind: str, *, retry_after: float | None = None, rate_limited: bool = False,
        connect: bool = False, hopeless: bool = False,
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.connect = connect  # no connection was opened: the request never left
        self.hopeless = hopeless  # and retrying cannot open one (the host does not exist)


# -- the default transport ------------------------------------------------------------------


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context: the CA certificates ``SSL_CERT_FILE`` (a PEM file) and
    ``SSL_CERT_DIR`` (a directory of them) name, else certifi's bundle.

    Raises:
        ConfigError: a named file or directory cannot be read as certificates.
    """
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        named = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}"
        raise ConfigError(
            f"{named} cannot be loaded as CA certificates ({exc}). Point it at a PEM file "
            "(or, for SSL_CERT_DIR, a directory) of CA certificates, or unset it to use "
            "certifi's bundle."
        ) from exc


def default_transport(base_url: str, concurrency: int) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport for ``base_url``: one aiohttp connection pool of at most
    ``concurrency`` connections, TLS verified by ``tls_context()``, through the proxy the
    environment names for ``base_url`` (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, with
    ``NO_PROXY``), decoding left to httpx. Constructing it does no I/O: the session opens
    with the first request.

    The proxy is looked up once (``providers.proxy_for``, the standard library's reading of
    the environment, as aiohttp's ``trust_env`` does on every request) rather than by
    ``trust_env=True``: that option also sends ``~/.netrc`` credentials, which aiohttp
    refuses to combine with the key's Authorization header, and costs two thread-pool
    round trips per request.
    """
    from httpx_aiohttp import AiohttpTransport

    context = tls_context()
    limit = max(1, concurrency)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=0, ssl=context,
            # Below the 5 s most servers keep an idle connection (uvicorn, hypercorn): a
            # connection is dropped here before the server drops it under a new request.
            keepalive_timeout=4.0,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    proxy = proxy_for(base_url)
    return AiohttpTransport(
        verify=context,
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        proxy=httpx.Proxy(proxy) if proxy else None,
        client=session,
    )
