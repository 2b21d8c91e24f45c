"""Unit tests of evals.client.ChatClient through ``httpx.MockTransport`` handlers.

Bodies come from ``shared/reference/openai-compatible-formats.md`` (cited as "§N.M"). Each
handler serves its body as a stream of small pieces (``_Pieces``), the way a real transport
delivers a streamed answer.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from test_parsing import (
    DEEPSEEK_BODY,
    DEEPSEEK_STREAM,
    MISTRAL_BODY,
    MISTRAL_STREAM,
    OPENAI_BODY,
    OPENROUTER_BODY,
    OPENROUTER_ERROR_EVENT,
    OPENROUTER_STREAM,
    VLLM_BODY,
    VLLM_STREAM,
    _cut_before_finish,
    _openrouter_error_midstream,
)

from evals.client import AdaptiveLimiter, ChatClient, RetryPolicy, _retry_after
from evals.errors import (
    AuthError,
    EndpointError,
    EndpointUnreachable,
    RequestFailed,
    UnknownModelError,
)
from evals.providers import Endpoint
from evals.records import Response, Usage

ENDPOINT = Endpoint(
    provider="mistral", base_url="http://test/v1", key_env="MISTRAL_API_KEY",
    api_key="sk-secret-123",
)
KEY = "sk-secret-123"
CHAT_URL = "http://test/v1/chat/completions"
REQUEST = {"model": "magistral-small-2509",
           "messages": [{"role": "user", "content": "What is 6*7?"}]}

Handler = Callable[[httpx.Request], httpx.Response]


class _Pieces(httpx.AsyncByteStream):
    """A response body delivered ``size`` bytes at a time (events and tags split across reads)."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self._data = data
        self._size = size

    async def __aiter__(self) -> Any:
        for at in range(0, len(self._data), self._size):
            yield self._data[at : at + self._size]


def reply(status: int, body: Any = b"", headers: dict[str, str] | None = None,
          size: int = 7) -> httpx.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.Response(status, headers=headers, stream=_Pieces(data, size))


def sse(transcript: str) -> httpx.Response:
    return reply(200, transcript.encode(), {"content-type": "text/event-stream"})


def raise_(exc: Exception) -> Callable[[], httpx.Response]:
    def step() -> httpx.Response:
        raise exc

    return step


class Script:
    """A handler that plays ``steps`` in order (the last one repeats) and records requests."""

    def __init__(self, *steps: Callable[[], httpx.Response], models: Any = None) -> None:
        self.steps = steps
        self.models = models
        self.chat: list[httpx.Request] = []
        self.model_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            self.model_requests.append(request)
            if isinstance(self.models, int):
                return reply(self.models, {"error": "Unauthorized"})
            return reply(200, self.models)
        self.chat.append(request)
        return self.steps[min(len(self.chat), len(self.steps)) - 1]()


def make_client(handler: Handler, *, retries: int = 3, concurrency: int = 8,
                endpoint: Endpoint = ENDPOINT, policy: RetryPolicy | None = None,
                max_downtime: float = 300.0) -> ChatClient:
    return ChatClient(
        endpoint,
        transport=httpx.MockTransport(handler),
        concurrency=concurrency,
        retry=policy or RetryPolicy(max_retries=retries, base_delay=0.001, max_delay=0.05),
        max_downtime=max_downtime,
    )


def complete(client: ChatClient, body: dict[str, Any] | None = None,
             timeout: float = 10.0) -> Response:
    async def go() -> Response:
        async with client:
            return await asyncio.wait_for(client.complete(body or REQUEST), timeout)

    return asyncio.run(go())


def ok() -> httpx.Response:
    return reply(200, DEEPSEEK_BODY)


# ---------------------------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "reasoning", "usage", "model"),
    [
        pytest.param(orjson.dumps(OPENAI_BODY), "42", None, Usage(14, 204, 192, None),
                     "o4-mini-2025-04-16", id="§1.2 OpenAI"),
        pytest.param(orjson.dumps(VLLM_BODY), "42", "The user asks 6*7. 6*7 = 42.",
                     Usage(14, 38, None, None), "Qwen/Qwen3-8B", id="§2.3 vLLM reasoning"),
        pytest.param(orjson.dumps(DEEPSEEK_BODY), "42", "6*7: six sevens are 42.",
                     Usage(14, 120, 110, None), "deepseek-reasoner", id="§4.1 DeepSeek"),
        pytest.param(b"\n\n\n" + orjson.dumps(DEEPSEEK_BODY), "42", "6*7: six sevens are 42.",
                     Usage(14, 120, 110, None), "deepseek-reasoner",
                     id="§4.1/§7.6 DeepSeek empty lines while queued"),
        pytest.param(orjson.dumps(OPENROUTER_BODY), "42", "6*7: six sevens are 42.",
                     Usage(14, 120, 110, 0.000264), "deepseek/deepseek-r1",
                     id="§4.2 OpenRouter cost"),
        pytest.param(orjson.dumps(MISTRAL_BODY), "6 × 7 = **42**.",
                     "The user wants 6*7. That is 42.", Usage(412, 38, None, None),
                     "magistral-small-2509", id="§5.2 Mistral chunk list"),
    ],
)
def test_200_is_parsed_into_a_response(raw: bytes, text: str, reasoning: str | None,
                                       usage: Usage, model: str) -> None:
    script = Script(lambda: reply(200, raw))
    client = make_client(script)
    response = complete(client)
    assert (response.text, response.reasoning, response.usage, response.model) == (
        text, reasoning, usage, model)
    assert response.finish_reason == "stop"
    assert response.retries == 0
    assert response.reasoning_unclosed is False
    assert response.ttft_s is None
    assert response.simulated is False
    assert response.latency_s > 0
    assert len(script.chat) == 1
    assert (client.stats.sent, client.stats.retries, client.stats.failed) == (1, 0, 0)


def test_simulator_header_marks_the_response_simulated() -> None:
    script = Script(lambda: reply(200, DEEPSEEK_BODY, {"x-evals-simulator": "1"}))
    assert complete(make_client(script)).simulated is True


def test_unclosed_think_is_reported() -> None:
    # §2.5 old qwen3 parser: the whole text, with a stray <think>, is content.
    body = {"choices": [{"index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": "<think>6*7 is"}}]}
    response = complete(make_client(Script(lambda: reply(200, body))))
    assert (response.text, response.reasoning, response.finish_reason,
            response.reasoning_unclosed) == ("", "6*7 is", "length", True)


def test_request_carries_bearer_key_and_json_body() -> None:
    body = {  # §5.1 Mistral request
        "model": "magistral-small-2509",
        "messages": [{"role": "user", "content": "What is 6*7?"}],
        "prompt_mode": "reasoning",
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 4096,
        "random_seed": 1234,
    }
    script = Script(ok)
    complete(make_client(script), body)
    (request,) = script.chat
    assert request.method == "POST"
    assert str(request.url) == CHAT_URL
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == body


def test_no_authorization_header_without_a_key() -> None:
    # §3 local servers (vLLM, Ollama ...) usually run without a key.
    endpoint = Endpoint(provider="vllm", base_url="http://test/v1", key_env="VLLM_API_KEY")
    script = Script(ok)
    complete(make_client(script, endpoint=endpoint))
    assert "authorization" not in script.chat[0].headers


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transcript", "text", "reasoning", "usage"),
    [
        pytest.param(VLLM_STREAM, "42", "The user asks 6*7. 6*7 = 42.",
                     Usage(14, 38, None, None), id="§2.4 vLLM"),
        pytest.param(DEEPSEEK_STREAM, "42", "6*7: six sevens", Usage(14, 120, 110, None),
                     id="§4.1 DeepSeek keep-alive"),
        pytest.param(OPENROUTER_STREAM, "42", "6*7: six sevens are 42.",
                     Usage(14, 120, 110, 0.000264), id="§4.2 OpenRouter comments"),
        pytest.param(MISTRAL_STREAM, "6 × 7 = **42**.", "The user wants 6*7 = 42.",
                     Usage(412, 38, None, None), id="§5.3 Mistral list then string deltas"),
    ],
)
def test_streaming_request(transcript: str, text: str, reasoning: str, usage: Usage) -> None:
    script = Script(lambda: sse(transcript))
    response = complete(make_client(script), {**REQUEST, "stream": True})
    assert (response.text, response.reasoning, response.usage, response.finish_reason) == (
        text, reasoning, usage, "stop")
    assert response.ttft_s is not None
    assert 0 < response.ttft_s <= response.latency_s
    assert response.retries == 0
    assert orjson.loads(script.chat[0].content)["stream"] is True


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(
            lambda: sse(_openrouter_error_midstream()),
            id="§7.5 OpenRouter mid-stream error event"),
        pytest.param(lambda: sse(_cut_before_finish(MISTRAL_STREAM)),
                     id="§7.4 stream ends without finish_reason"),
        pytest.param(lambda: sse(VLLM_STREAM[:400]), id="§7.4 stream cut inside an event"),
    ],
)
def test_broken_stream_is_retried(first: Callable[[], httpx.Response]) -> None:
    script = Script(first, lambda: sse(OPENROUTER_STREAM))
    client = make_client(script)
    response = complete(client, {**REQUEST, "stream": True})
    assert (response.text, response.reasoning, response.retries) == (
        "42", "6*7: six sevens are 42.", 1)
    assert len(script.chat) == 2


# ---------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------

RATE_LIMIT_BODIES = [
    pytest.param({"error": {"message": "Rate limit reached for gpt-4o in organization org-abc "
                            "on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. "
                            "Please try again in 2s.", "type": "tokens", "param": None,
                            "code": "rate_limit_exceeded"}},
                 id="§7.1 OpenAI rate_limit_exceeded"),
    pytest.param({"object": "error", "message": "Rate limit exceeded", "type": "rate_limited",
                  "param": None, "code": "1300"}, id="§5.4 Mistral flat rate_limited"),
    pytest.param({"message": "Requests rate limit exceeded"}, id="§5.4 Mistral {message}"),
]


@pytest.mark.parametrize("body", RATE_LIMIT_BODIES)
def test_429_then_200_halves_the_limit(body: dict[str, Any]) -> None:
    script = Script(lambda: reply(429, body, {"Retry-After": "0"}), ok)
    client = make_client(script, concurrency=8)
    response = complete(client)
    assert (response.text, response.retries) == ("42", 1)
    assert client.stats.rate_limited == 1
    assert (client.stats.sent, client.stats.retries, client.stats.failed) == (2, 1, 0)
    assert client.limiter.limit == 4
    assert len(script.chat) == 2


RETRYABLE = [
    pytest.param(lambda: reply(500, {"error": {"message": "Internal Server Error",
                                               "type": "InternalServerError", "param": None,
                                               "code": 500}}),
                 "http 500", id="500 vLLM nested error"),
    pytest.param(lambda: reply(502, {"error": {"code": 502, "message": "Provider returned error",
                                               "metadata": {"provider_name": "DeepInfra"}}}),
                 "http 502", id="§7.3 OpenRouter 502 model down"),
    pytest.param(lambda: reply(503, {"error": {"message": "Server Overloaded",
                                               "type": "server_error"}}),
                 "http 503", id="§4.1 DeepSeek 503 Server Overloaded"),
    pytest.param(lambda: reply(504, b"<html>Gateway Timeout</html>"), "http 504",
                 id="504 HTML from a proxy"),
    pytest.param(lambda: reply(529, b""), "http 529", id="§7.4 529 overloaded"),
    pytest.param(lambda: reply(408, {"error": {"code": 408, "message": "Timed out"}}),
                 "http 408", id="§7.3 OpenRouter 408 timeout"),
    pytest.param(lambda: reply(409, {"error": {"message": "Conflict"}}), "http 409",
                 id="§7.4 409"),
    pytest.param(raise_(httpx.ConnectError("boom")), "connection: ConnectError",
                 id="connection error"),
    pytest.param(raise_(httpx.RemoteProtocolError("peer closed")),
                 "connection: RemoteProtocolError", id="§7.4 connection reset"),
    pytest.param(raise_(httpx.ReadTimeout("slow")), "timeout", id="read timeout"),
    pytest.param(lambda: reply(200, b"<html>502 Bad Gateway</html>"),
                 "malformed body (not JSON: b'<html>502 Bad Gateway</html>')",
                 id="malformed JSON in a 200"),
    pytest.param(lambda: reply(200, OPENROUTER_ERROR_EVENT.encode()),
                 "malformed body (error inside a 200 answer: Provider disconnected unexpectedly)",
                 id="§7.5 OpenRouter error inside a non-streaming 200"),
    pytest.param(lambda: reply(200, {"id": "x", "object": "chat.completion"}),
                 "malformed body (no choices in the body)", id="200 without choices"),
]


@pytest.mark.parametrize(("first", "kind"), RETRYABLE)
def test_retryable_failure_then_200(first: Callable[[], httpx.Response], kind: str) -> None:
    script = Script(first, ok)
    client = make_client(script, concurrency=8)
    response = complete(client)
    assert (response.text, response.retries) == ("42", 1)
    assert len(script.chat) == 2
    assert (client.stats.sent, client.stats.retries, client.stats.rate_limited) == (2, 1, 0)
    assert client.limiter.limit == 8  # only a 429 shrinks the limit


@pytest.mark.parametrize(
    ("failure", "kind"),
    [*(p for p in RETRYABLE if p.id != "connection error"),  # that one: EndpointUnreachable
     pytest.param(lambda: reply(429, RATE_LIMIT_BODIES[0].values[0]), "http 429",
                  id="429 rate limit")],
)
def test_retries_exhausted_raise_request_failed(failure: Callable[[], httpx.Response],
                                                kind: str) -> None:
    script = Script(failure)
    client = make_client(script, retries=2)
    with pytest.raises(RequestFailed) as info:
        complete(client)
    assert info.value.attempts == 3
    assert info.value.kind == kind
    assert str(info.value) == f"{CHAT_URL} failed 3 times; last failure: {kind}"
    assert len(script.chat) == 3
    assert (client.stats.sent, client.stats.retries, client.stats.failed) == (3, 2, 1)


def test_an_endpoint_never_reached_is_unreachable_after_a_few_quick_retries() -> None:
    script = Script(raise_(httpx.ConnectError("[Errno 111] Connection refused")))
    policy = RetryPolicy(max_retries=8, base_delay=10.0, quick_delay=0.01)  # no 10 s waits
    client = make_client(script, policy=policy)
    started = time.perf_counter()
    with pytest.raises(EndpointUnreachable) as info:
        complete(client)
    assert time.perf_counter() - started < 1
    assert len(script.chat) == 4 == policy.unreachable_after + 1
    assert str(info.value) == (
        "Cannot connect to http://test/v1 (connection: ConnectError; 4 tries, and no request "
        "to it has ever been answered). Is the server running? Check --base-url (host, port, "
        "http/https) or --provider.")
    assert (client.stats.sent, client.stats.retries, client.stats.failed) == (4, 3, 1)


def test_connections_refused_after_an_answer_wait_for_the_endpoint_not_the_budget() -> None:
    """A restart: refused connections sent nothing, so they spend no retry; the endpoint is
    taken out, probed (GET /models) and the request goes through once it is back."""
    refused = raise_(httpx.ConnectError("[Errno 111] Connection refused"))
    script = Script(ok, refused, refused, refused, refused, ok)
    client = make_client(script, retries=1)

    async def go() -> Response:
        async with client:
            await client.complete(REQUEST)
            return await client.complete(REQUEST)

    response = asyncio.run(go())
    assert response.text == "42"
    assert len(script.chat) == 6 and response.retries == 4  # more than max_retries=1
    assert len(script.model_requests) == 4  # one probe puts it back after each refusal
    assert client.endpoint_report()[0]["taken_out"] == 4


def test_connections_refused_for_longer_than_max_downtime_fail_the_request() -> None:
    """The endpoint accepts probes but refuses every POST: bounded by ``max_downtime``."""
    script = Script(ok, raise_(httpx.ConnectError("refused")))
    client = make_client(script, retries=5, max_downtime=0.3)

    async def go() -> None:
        async with client:
            await client.complete(REQUEST)
            with pytest.raises(RequestFailed, match=r"refused connections for 0.3 s although "
                                                    r"it answered before"):
                await client.complete(REQUEST)

    asyncio.run(go())


def test_an_endpoint_down_for_longer_than_max_downtime_stops_with_endpoint_error() -> None:
    down = False

    def handler(request: httpx.Request) -> httpx.Response:
        if down:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return ok()

    client = make_client(handler, max_downtime=0.3)

    async def go() -> float:
        nonlocal down
        async with client:
            await client.complete(REQUEST)
            down = True
            started = time.perf_counter()
            with pytest.raises(EndpointError) as info:
                await client.complete(REQUEST)
            assert type(info.value) is EndpointError
            assert str(info.value).startswith("No endpoint answered for 0.3 s (http://test/v1")
            assert "rerun the same command to resume" in str(info.value)
            return time.perf_counter() - started

    assert 0.3 <= asyncio.run(go()) < 2


def test_a_read_failure_of_a_never_answered_endpoint_is_not_unreachable() -> None:
    script = Script(raise_(httpx.RemoteProtocolError("peer closed")))
    with pytest.raises(RequestFailed):
        complete(make_client(script, retries=5))
    assert len(script.chat) == 6


@pytest.mark.parametrize(
    ("base_url", "hint"),
    [pytest.param("http://test", True, id="no /v1: the hint"),
     pytest.param("http://test/api", True, id="/api without a version: the hint"),
     pytest.param("http://test/v1", False, id="/v1 there: an unknown model")],
)
def test_404_without_a_model_named_suggests_a_missing_v1(base_url: str, hint: bool) -> None:
    script = Script(lambda: reply(404, {"detail": "Not Found"}), models=404)
    endpoint = Endpoint(provider="vllm", base_url=base_url, key_env=None)
    with pytest.raises(EndpointError) as info:
        complete(make_client(script, endpoint=endpoint), {**REQUEST, "model": "m"})
    assert info.value.status == 404
    if hint:
        assert type(info.value) is EndpointError
        assert str(info.value) == (
            f"{base_url}/chat/completions answered 404 (Not Found): nothing serves chat "
            "completions there. OpenAI-compatible servers serve them under /v1: try "
            f"--base-url {base_url}/v1")
    else:
        assert isinstance(info.value, UnknownModelError)
    assert len(script.chat) == 1


def test_repeated_429_shrink_the_limit_to_one() -> None:
    script = Script(lambda: reply(429, {"message": "Requests rate limit exceeded"}))
    client = make_client(script, retries=4, concurrency=8)
    with pytest.raises(RequestFailed):
        complete(client)
    assert client.stats.rate_limited == 5
    assert client.limiter.limit == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Retry-After": "3600"}, id="§7.2 Retry-After seconds capped at max_delay"),
        pytest.param({"retry-after-ms": "3600000"}, id="§7.2 retry-after-ms capped at max_delay"),
    ],
)
def test_retry_after_is_capped_by_max_delay(headers: dict[str, str]) -> None:
    script = Script(lambda: reply(503, b"", headers), ok)
    client = make_client(script, policy=RetryPolicy(max_retries=1, base_delay=0.001,
                                                    max_delay=0.05))
    started = time.perf_counter()
    assert complete(client, timeout=5).retries == 1
    assert time.perf_counter() - started < 5


def test_retry_after_replaces_the_backoff() -> None:
    # A 30 s back-off would time out; the server's "retry now" (§7.2) is used instead.
    script = Script(lambda: reply(429, {"message": "slow down"}, {"retry-after-ms": "1"}), ok)
    client = make_client(script, policy=RetryPolicy(max_retries=1, base_delay=30, max_delay=60))
    assert complete(client, timeout=5).retries == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "20"}, 20.0, id="§7.2 delay-seconds"),
        pytest.param({"Retry-After": "1.5"}, 1.5, id="fractional seconds"),
        pytest.param({"retry-after-ms": "1500", "Retry-After": "20"}, 1.5,
                     id="§7.2 retry-after-ms preferred"),
        pytest.param({"retry-after-ms": "soon", "Retry-After": "2"}, 2.0,
                     id="bad retry-after-ms falls back to Retry-After"),
        pytest.param({"Retry-After": "Wed, 01 Jan 2025 00:00:30 GMT"}, 0.0,
                     id="§7.2 HTTP-date in the past means now"),
        pytest.param({"Retry-After": "-5"}, 0.0, id="negative seconds clamp to 0"),
        pytest.param({"Retry-After": "tomorrow"}, None, id="unparseable"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], expected: float | None) -> None:
    assert _retry_after(httpx.Headers(headers)) == expected


def test_retry_after_http_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    wait = _retry_after(httpx.Headers({"Retry-After": when}))
    assert wait is not None
    assert 115 < wait <= 120


# ---------------------------------------------------------------------------------------------
# Errors that stop at once
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "server_says"),
    [
        pytest.param(401, {"detail": "Unauthorized"}, "Unauthorized", id="§5.4 Mistral {detail}"),
        pytest.param(401, {"message": "Unauthorized",
                           "request_id": "933f233947ff6d346065bb297e4a4d56"},
                     "Unauthorized", id="§5.4 Mistral {message, request_id}"),
        pytest.param(401, {"error": "Unauthorized"}, "Unauthorized", id="§2.8 vLLM string error"),
        pytest.param(401, {"error": {"message": "Incorrect API key provided: sk-secr*****-123.",
                                     "type": "invalid_request_error", "param": None,
                                     "code": "invalid_api_key"}},
                     "Incorrect API key provided: sk-secr*****-123.",
                     id="§7.1 OpenAI invalid_api_key (masked key)"),
        pytest.param(401, {"error": {"code": 401, "message": "No auth credentials found"}},
                     "No auth credentials found", id="§7.3 OpenRouter 401"),
        pytest.param(403, {"error": {"code": 403, "message": "Input flagged by moderation",
                                     "metadata": {"reasons": ["violence"]}}},
                     "Input flagged by moderation", id="§7.3 OpenRouter 403"),
    ],
)
def test_auth_error_is_not_retried(status: int, body: dict[str, Any], server_says: str) -> None:
    script = Script(lambda: reply(status, body))
    client = make_client(script)
    with pytest.raises(AuthError) as info:
        complete(client)
    message = str(info.value)
    assert info.value.status == status
    assert "MISTRAL_API_KEY" in message
    assert server_says in message
    assert "was rejected" in message
    assert KEY not in message
    assert len(script.chat) == 1
    assert script.model_requests == []
    assert (client.stats.sent, client.stats.retries) == (1, 0)


def test_auth_error_without_a_key_says_it_is_missing() -> None:
    endpoint = Endpoint(provider="openai", base_url="http://test/v1", key_env="OPENAI_API_KEY")
    script = Script(lambda: reply(401, {"error": "Unauthorized"}))
    with pytest.raises(AuthError) as info:
        complete(make_client(script, endpoint=endpoint))
    assert str(info.value) == (
        "http://test/v1 answered 401 (Unauthorized): the API key is missing. Set OPENAI_API_KEY "
        "to a valid key (provider 'openai'), or name another variable with --api-key-env VAR."
    )


def test_auth_error_with_no_key_variable_names_the_flag_once() -> None:
    endpoint = Endpoint(provider="custom", base_url="http://test/v1", key_env=None)
    script = Script(lambda: reply(401, {"error": "Unauthorized"}))
    with pytest.raises(AuthError) as info:
        complete(make_client(script, endpoint=endpoint))
    message = str(info.value)
    assert message.count("--api-key-env") == 1 and "the API key is missing" in message


MODELS_VLLM = {  # §8 vLLM listing, two served models
    "object": "list",
    "data": [
        {"id": "Qwen/Qwen3-8B", "object": "model", "created": 1735689600, "owned_by": "vllm",
         "root": "Qwen/Qwen3-8B", "parent": None, "max_model_len": 32768},
        {"id": "magistral-small-2509", "object": "model", "created": 1735689600,
         "owned_by": "vllm", "root": "magistral-small-2509", "parent": None,
         "max_model_len": 32768},
    ],
}


@pytest.mark.parametrize(
    ("status", "body", "server_says"),
    [
        pytest.param(404, {"error": {"message": "The model `magistral-smal-2509` does not exist.",
                                     "type": "NotFoundError", "param": None, "code": 404}},
                     "The model `magistral-smal-2509` does not exist.",
                     id="§7.3 vLLM >=0.10.1 404 nested"),
        pytest.param(404, {"object": "error",
                           "message": "The model `magistral-smal-2509` does not exist.",
                           "type": "NotFoundError", "param": None, "code": 404},
                     "The model `magistral-smal-2509` does not exist.",
                     id="§7.3 vLLM <0.10.1 404 flat"),
        pytest.param(404, {"error": {"message": "The model `magistral-smal-2509` does not exist "
                                     "or you do not have access to it.",
                                     "type": "invalid_request_error", "param": None,
                                     "code": "model_not_found"}},
                     "The model `magistral-smal-2509` does not exist or you do not have access "
                     "to it.", id="§7.1 OpenAI 404 model_not_found"),
        pytest.param(400, {"object": "error", "message": "Invalid model: magistral-smal-2509",
                           "type": "invalid_model", "param": None, "code": "1500"},
                     "Invalid model: magistral-smal-2509", id="§5.4 Mistral 400 invalid_model"),
        pytest.param(400, {"error": {"message": "magistral-smal-2509 is not a valid model ID",
                                     "code": 400}, "user_id": "user_123"},
                     "magistral-smal-2509 is not a valid model ID",
                     id="§7.3 OpenRouter 400 invalid model"),
    ],
)
def test_unknown_model_lists_the_offered_models(status: int, body: dict[str, Any],
                                                server_says: str) -> None:
    script = Script(lambda: reply(status, body), models=MODELS_VLLM)
    client = make_client(script)
    with pytest.raises(UnknownModelError) as info:
        complete(client, {**REQUEST, "model": "magistral-smal-2509"})
    assert info.value.status == status
    assert str(info.value) == (
        f"http://test/v1 does not serve model 'magistral-smal-2509' ({status}: {server_says}). "
        "The server offers: Qwen/Qwen3-8B, magistral-small-2509. Pass one of them with --model."
    )
    assert len(script.chat) == 1
    (listing,) = script.model_requests
    assert (listing.method, str(listing.url)) == ("GET", "http://test/v1/models")
    assert listing.headers["authorization"] == f"Bearer {KEY}"


def test_unknown_model_when_models_cannot_be_listed() -> None:
    body = {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError",
                      "param": None, "code": 404}}
    script = Script(lambda: reply(404, body), models=401)
    with pytest.raises(UnknownModelError, match=r"The server offers: \(the server does not "
                       r"list models\)\."):
        complete(make_client(script), {**REQUEST, "model": "x"})
    assert (len(script.chat), len(script.model_requests)) == (1, 1)


@pytest.mark.parametrize(
    ("status", "body", "server_says"),
    [
        pytest.param(400, {"error": {"message": "This model's maximum context length is 2048 "
                                     "tokens. However, you requested 2723 tokens (1699 in the "
                                     "messages, 1024 in the completion).",
                                     "type": "BadRequestError", "param": None, "code": 400}},
                     "This model's maximum context length is 2048 tokens.",
                     id="§7.3 vLLM 400 context too long"),
        pytest.param(400, {"error": {"code": 400, "type": "exceed_context_size_error",
                                     "message": "request (9412 tokens) exceeds the available "
                                     "context size (8192 tokens), try increasing it",
                                     "n_prompt_tokens": 9412, "n_ctx": 8192}},
                     "request (9412 tokens) exceeds the available context size",
                     id="§3.2 llama.cpp 400 exceed_context_size_error"),
        pytest.param(400, {"object": "error", "message": "Assistant message must have either "
                           "content or tool_calls, but not both.", "type": "invalid_request_error",
                           "param": None, "code": None},
                     "Assistant message must have either content or tool_calls",
                     id="§5.4 Mistral 400 validation"),
        pytest.param(402, {"error": {"code": 402, "message": "Insufficient credits"}},
                     "Insufficient credits", id="§7.3 OpenRouter 402"),
        pytest.param(422, {"error": {"message": "Invalid Parameters",
                                     "type": "invalid_request_error"}},
                     "Invalid Parameters", id="§4.1 DeepSeek 422"),
    ],
)
def test_other_4xx_raise_endpoint_error_at_once(status: int, body: dict[str, Any],
                                                server_says: str) -> None:
    script = Script(lambda: reply(status, body), models=MODELS_VLLM)
    with pytest.raises(EndpointError) as info:
        complete(make_client(script))
    assert type(info.value) is EndpointError
    assert info.value.status == status
    assert str(info.value).startswith(f"http://test/v1 refused the request with {status}: ")
    assert server_says in str(info.value)
    assert len(script.chat) == 1
    assert script.model_requests == []


def test_429_insufficient_quota_is_not_retried() -> None:
    body = {"error": {"message": "You exceeded your current quota, please check your plan and "
                      "billing details.", "type": "insufficient_quota", "param": None,
                      "code": "insufficient_quota"}}  # §7.1
    script = Script(lambda: reply(429, body, {"Retry-After": "0"}))
    client = make_client(script, concurrency=8)
    with pytest.raises(EndpointError) as info:
        complete(client)
    assert type(info.value) is EndpointError
    assert info.value.status == 429
    assert "out of quota (You exceeded your current quota" in str(info.value)
    assert len(script.chat) == 1
    assert (client.stats.rate_limited, client.limiter.limit) == (0, 8)


def test_429_request_too_large_is_not_retried() -> None:
    body = {"error": {"message": "Request too large for gpt-4o in organization org-abc on tokens "
                      "per min (TPM): Limit 30000, Requested 45000. The input or output tokens "
                      "must be reduced in order to run successfully.", "type": "tokens",
                      "param": None, "code": "rate_limit_exceeded"}}
    script = Script(lambda: reply(429, body))
    client = make_client(script, retries=2, concurrency=8)
    with pytest.raises(EndpointError):
        complete(client)
    assert len(script.chat) == 1
    assert client.limiter.limit == 8


@pytest.mark.parametrize(
    ("steps", "retries"),
    [
        pytest.param([(200, DEEPSEEK_BODY)], 0, id="200 json= body"),
        pytest.param([(503, {"error": {"message": "Server Overloaded"}}), (200, DEEPSEEK_BODY)], 1,
                     id="503 json= body then 200"),
    ],
)
def test_preloaded_response_body_is_read(steps: list[tuple[int, Any]], retries: int) -> None:
    """A handler may return ``httpx.Response(..., json=...)``, whose body httpx already read."""
    replies = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        code, body = next(replies)
        return httpx.Response(code, json=body)

    response = complete(make_client(handler))
    assert (response.text, response.retries) == ("42", retries)


def test_preloaded_error_body_is_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "Unauthorized"})

    with pytest.raises(AuthError, match=r"answered 401 \(Unauthorized\)"):
        complete(make_client(handler))


def test_preloaded_streaming_body_is_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=DEEPSEEK_STREAM.encode(),
                              headers={"content-type": "text/event-stream"})

    response = complete(make_client(handler), {**REQUEST, "stream": True})
    assert (response.text, response.reasoning) == ("42", "6*7: six sevens")


# ---------------------------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------------------------


def test_limiter_grows_back_one_per_limit_successes() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.on_rate_limited()
    assert limiter.limit == 4
    history = []
    for _ in range(24):
        limiter.on_success()
        history.append(limiter.limit)
    # 4 successes -> 5, 5 more -> 6, 6 more -> 7, 7 more -> 8, then it stays at the maximum.
    assert history == [4] * 3 + [5] * 5 + [6] * 6 + [7] * 7 + [8] * 3


def test_limiter_never_exceeds_maximum() -> None:
    limiter = AdaptiveLimiter(3)
    for _ in range(50):
        limiter.on_success()
    assert limiter.limit == 3


@pytest.mark.parametrize(("maximum", "halvings", "expected"),
                         [(8, 1, 4), (8, 2, 2), (8, 3, 1), (8, 10, 1), (3, 1, 1), (1, 1, 1),
                          (0, 0, 1), (-5, 1, 1)],
                         ids=lambda v: str(v))
def test_limiter_halves_and_never_goes_below_one(maximum: int, halvings: int,
                                                 expected: int) -> None:
    limiter = AdaptiveLimiter(maximum)
    for _ in range(halvings):
        limiter.on_rate_limited()
    assert limiter.limit == expected


def test_rate_limit_resets_the_success_count() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.on_rate_limited()  # 4
    for _ in range(3):
        limiter.on_success()
    limiter.on_rate_limited()  # 2, the 3 successes are forgotten
    limiter.on_success()
    assert limiter.limit == 2
    limiter.on_success()
    assert limiter.limit == 3


def test_limiter_blocks_at_the_limit_and_wakes_on_release() -> None:
    async def go() -> list[int]:
        limiter = AdaptiveLimiter(4)
        for _ in range(4):
            await limiter.acquire()
        limiter.on_rate_limited()  # limit 2 with 4 in flight
        waiter = asyncio.create_task(limiter.acquire())
        seen = []
        for _ in range(3):
            await asyncio.sleep(0.01)
            seen.append(int(waiter.done()))
            await limiter.release()
        await asyncio.wait_for(waiter, 1)
        seen.append(limiter.in_flight)
        return seen

    # still blocked at 4 and 3 in flight; at 2 the release leaves 1 and wakes it -> 2 in flight
    assert asyncio.run(go()) == [0, 0, 0, 2]


def test_client_keeps_at_most_concurrency_requests_in_flight() -> None:
    state = {"now": 0, "peak": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.005)
        state["now"] -= 1
        return reply(200, DEEPSEEK_BODY)

    async def go() -> list[Response]:
        async with make_client(handler, concurrency=3) as client:
            return await asyncio.gather(*(client.complete(REQUEST) for _ in range(12)))

    responses = asyncio.run(go())
    assert [r.text for r in responses] == ["42"] * 12
    assert state["peak"] == 3
