"""The client against real HTTP servers on loopback: conformance of the whole HTTP path.

Each server runs in its own thread and event loop, serving the same small
OpenAI-compatible app and counting every chat request it receives (by the request's seed):

* uvicorn with h11 and with httptools, hypercorn (ASGI);
* aiohttp.web;
* Python's ``http.server`` speaking HTTP/1.0, whose bodies end with the connection.

The request's ``model`` picks the answer (see ``respond``): plain JSON, gzip, ``Connection:
close``, SSE streams (one byte per write, a 1 MB stream), a false ``Content-Encoding``.
What each test checks on the server's side: every request the client sends arrives once,
and nothing arrives that the client did not count (``stats.sent`` is attempts plus
retries).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gzip
import http.server
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from evals.client import ChatClient, RetryPolicy
from evals.errors import CertificateError, RequestFailed
from evals.providers import Endpoint
from evals.records import Response

SERVERS = ["uvicorn-h11", "uvicorn-httptools", "hypercorn", "aiohttp", "http.server"]
KEEP_ALIVE_SERVERS = SERVERS[:4]  # http.server speaks HTTP/1.0: one request per connection

Headers = list[tuple[bytes, bytes]]


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


MB_PIECES = 1024
MB_PIECE = "x" * 1000


def respond(scenario: str) -> tuple[Headers, list[bytes]]:
    """Headers (no framing: each server frames the body itself) and the body's writes."""
    answer = orjson.dumps({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
    json_type = [(b"content-type", b"application/json")]
    sse_type = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    stream = [_event({"role": "assistant", "reasoning_content": "6*7"}),
              _event({"content": "4"}), _event({"content": "2"}, "stop"), b"data: [DONE]\n\n"]
    if scenario == "plain":
        return json_type, [answer]
    if scenario == "gzip":
        return [*json_type, (b"content-encoding", b"gzip")], [gzip.compress(answer)]
    if scenario == "false-gzip":
        return [*json_type, (b"content-encoding", b"gzip")], [answer]
    if scenario == "close":
        return [*json_type, (b"connection", b"close")], [answer]
    if scenario == "sse":
        return sse_type, stream
    if scenario == "sse-bytes":
        data = b"".join(stream)
        return sse_type, [data[i:i + 1] for i in range(len(data))]
    if scenario == "sse-1mb":
        pieces = [_event({"content": MB_PIECE}) for _ in range(MB_PIECES)]
        return sse_type, [*stream[:1], *pieces, *stream[1:]]
    raise AssertionError(scenario)


@dataclass
class Served:
    base_url: str
    received: list[int] = field(default_factory=list)  # the seed of every chat request
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, body: bytes) -> str:
        request = orjson.loads(body)
        with self.lock:
            self.received.append(request["seed"])
        return str(request["model"])


# -- the apps ---------------------------------------------------------------------------------


def asgi_app(served: list[Served]) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        scenario = served[0].count(body)
        headers, writes = respond(scenario)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for data in writes:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def aiohttp_app(served: list[Served]) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        scenario = served[0].count(await request.read())
        headers, writes = respond(scenario)
        response = web.StreamResponse(headers={k.decode(): v.decode() for k, v in headers})
        if scenario in ("plain", "gzip", "false-gzip", "close"):
            response.content_length = sum(map(len, writes))
        if scenario == "close":
            response.force_close()
        await response.prepare(request)
        for data in writes:
            await response.write(data)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def http10_handler(served: list[Served]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no Content-Length: the body ends with the connection

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            headers, writes = respond(served[0].count(body))
            self.send_response(200)
            for name, value in headers:
                self.send_header(name.decode(), value.decode())
            self.end_headers()
            for data in writes:
                self.wfile.write(data)
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# -- the servers ------------------------------------------------------------------------------


class _Http10Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops a burst's connects (a 1 s SYN retry)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def serving(kind: str, *, keep_alive: float = 5.0,
            tls: ssl.SSLContext | None = None, cert_files: tuple[str, str] | None = None
            ) -> Iterator[Served]:
    """Run server ``kind`` in a thread; yield its ``Served`` (base URL and request count).
    ``keep_alive``: seconds the server keeps an idle connection open."""
    holder: list[Served] = []
    port = _free_port()
    scheme = "https" if tls or cert_files else "http"
    holder.append(Served(f"{scheme}://127.0.0.1:{port}/v1"))
    if kind.startswith("uvicorn"):
        import uvicorn

        config = uvicorn.Config(asgi_app(holder), host="127.0.0.1", port=port,
                                http=kind.split("-")[1], ws="none", loop="asyncio",
                                lifespan="off", log_level="critical", access_log=False,
                                timeout_keep_alive=keep_alive,  # type: ignore[arg-type]
                                ssl_certfile=cert_files[0] if cert_files else None,
                                ssl_keyfile=cert_files[1] if cert_files else None)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        _wait_listening(port)
        try:
            yield holder[0]
        finally:
            server.should_exit = True
            thread.join(10)
    elif kind == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        hconfig = Config()
        hconfig.bind = [f"127.0.0.1:{port}"]
        hconfig.keep_alive_timeout = keep_alive
        hconfig.accesslog = None
        hconfig.errorlog = None
        stop = threading.Event()

        async def until_stopped() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.02)

        def main() -> None:
            asyncio.run(serve(asgi_app(holder), hconfig,
                              shutdown_trigger=until_stopped))

        thread = threading.Thread(target=main, daemon=True)
        thread.start()
        _wait_listening(port)
        try:
            yield holder[0]
        finally:
            stop.set()
            thread.join(10)
    elif kind == "aiohttp":
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(aiohttp_app(holder), keepalive_timeout=keep_alive,
                               access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls)
        loop.run_until_complete(site.start())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield holder[0]
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
    elif kind == "http.server":
        httpd = _Http10Server(("127.0.0.1", port), http10_handler(holder))
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield holder[0]
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(10)
    else:
        raise AssertionError(kind)


# -- the client side --------------------------------------------------------------------------


def chat_client(base_url: str, *, concurrency: int = 8, retries: int = 5,
                timeout: float = 10.0) -> ChatClient:
    return ChatClient(Endpoint(provider="custom", base_url=base_url, key_env=None),
                      concurrency=concurrency, timeout=timeout,
                      retry=RetryPolicy(max_retries=retries, base_delay=0.05, max_delay=0.2))


def body(scenario: str, seed: int) -> dict[str, Any]:
    return {"model": scenario, "seed": seed, "stream": scenario.startswith("sse"),
            "messages": [{"role": "user", "content": "What is 6*7?"}]}


def assert_counted(served: Served, client: ChatClient, responses: list[Response]) -> None:
    """Every request arrived, and nothing arrived beyond the sends the client counted (a
    send on a connection the server had just closed counts, though it never arrived)."""
    assert len(set(served.received)) == len(responses) <= len(served.received)
    assert len(served.received) <= client.stats.sent
    assert client.stats.sent == len(responses) + client.stats.retries
    assert sum(r.retries for r in responses) == client.stats.retries


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, Served]]:
    with serving(request.param) as served:
        yield request.param, served


@pytest.mark.parametrize("scenario", ["plain", "gzip", "close", "sse", "sse-bytes"])
def test_answers_arrive_whole_and_each_request_once(server: tuple[str, Served],
                                                    scenario: str) -> None:
    _kind, served = server
    served.received.clear()

    async def main() -> tuple[ChatClient, list[Response]]:
        async with chat_client(served.base_url) as client:
            responses = await asyncio.gather(*(client.complete(body(scenario, seed))
                                               for seed in range(12)))
            responses += [await client.complete(body(scenario, 100 + i)) for i in range(3)]
        return client, responses

    client, responses = asyncio.run(main())
    assert [r.text for r in responses] == ["42"] * 15
    if scenario.startswith("sse"):
        assert all(r.reasoning == "6*7" and r.ttft_s is not None for r in responses)
    assert client.stats.retries == 0  # nothing here warrants a retry
    assert sorted(served.received) == [*range(12), 100, 101, 102]
    assert_counted(served, client, responses)


def test_a_megabyte_stream_arrives_whole(server: tuple[str, Served]) -> None:
    _kind, served = server
    served.received.clear()

    async def main() -> Response:
        async with chat_client(served.base_url) as client:
            return await client.complete(body("sse-1mb", 1))

    response = asyncio.run(main())
    assert response.text == MB_PIECE * MB_PIECES + "42"
    assert served.received == [1]


def test_a_false_content_encoding_is_retried_then_reported(server: tuple[str, Served]) -> None:
    _kind, served = server
    served.received.clear()

    async def main() -> tuple[ChatClient, RequestFailed]:
        async with chat_client(served.base_url, retries=2) as client:
            with pytest.raises(RequestFailed) as info:
                await client.complete(body("false-gzip", 1))
        return client, info.value

    client, error = asyncio.run(main())
    assert error.kind.startswith("undecodable body")
    assert served.received == [1, 1, 1] and client.stats.sent == 3


@pytest.mark.parametrize("kind", KEEP_ALIVE_SERVERS)
def test_keep_alive_expiring_as_the_client_reuses_loses_and_doubles_nothing(kind: str) -> None:
    """The server keeps an idle connection 1 s; the client pauses about 1 s between bursts,
    so connections expire around the moment they are reused. Whatever the race does, the
    server receives each request once, plus the client's counted retries."""
    with serving(kind, keep_alive=1.0) as served:
        async def main() -> tuple[ChatClient, list[Response]]:
            responses: list[Response] = []
            async with chat_client(served.base_url, concurrency=8, retries=10) as client:
                seed = 0
                for pause in (0.97, 1.0, 1.03, 0):
                    burst = [client.complete(body("plain", seed + i)) for i in range(8)]
                    seed += 8
                    responses += await asyncio.gather(*burst)
                    await asyncio.sleep(pause)
            return client, responses

        client, responses = asyncio.run(main())
    assert [r.text for r in responses] == ["42"] * 32
    assert_counted(served, client, responses)
    per_seed = collections.Counter(served.received)
    assert set(per_seed) == set(range(32))  # nothing lost
    for seed, response in enumerate(responses):  # nothing twice beyond counted retries
        assert 1 <= per_seed[seed] <= 1 + response.retries


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return pem, server_ctx


def test_tls_with_the_ca_in_ssl_cert_file_verifies(
        certificates: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch) -> None:
    pem, server_ctx = certificates
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    with serving("aiohttp", tls=server_ctx) as served:
        async def main() -> list[Response]:
            async with chat_client(served.base_url) as client:
                return [await client.complete(body("plain", i)) for i in range(3)]

        responses = asyncio.run(main())
    assert [r.text for r in responses] == ["42"] * 3 and served.received == [0, 1, 2]


def test_tls_without_the_ca_stops_at_once_naming_ssl_cert_file(
        certificates: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch) -> None:
    _, server_ctx = certificates
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with serving("aiohttp", tls=server_ctx) as served:
        async def main() -> tuple[ChatClient, CertificateError]:
            async with chat_client(served.base_url) as client:
                with pytest.raises(CertificateError) as info:
                    await client.complete(body("plain", 1))
            return client, info.value

        client, error = asyncio.run(main())
    assert (client.stats.sent, client.stats.retries, served.received) == (1, 0, [])
    message = str(error)
    assert message.startswith(f"{served.base_url}: the server's TLS certificate does not "
                              "verify (unable to get local issuer certificate)")
    assert "SSL_CERT_FILE" in message and "certifi" in message


def test_headers_then_silence_is_a_read_timeout_retried_and_counted() -> None:
    received: list[float] = []

    async def silent(request: web.Request) -> web.StreamResponse:
        await request.read()
        received.append(time.monotonic())
        response = web.StreamResponse(headers={"content-type": "application/json"})
        await response.prepare(request)  # the headers go out; the body never comes
        await asyncio.sleep(5)
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", silent)

    async def main() -> tuple[ChatClient, RequestFailed, float]:
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with chat_client(f"http://127.0.0.1:{port}/v1", retries=1,
                                   timeout=0.3) as client:
                started = time.monotonic()
                with pytest.raises(RequestFailed) as info:
                    await client.complete(body("plain", 1))
                return client, info.value, time.monotonic() - started
        finally:
            await runner.cleanup()

    client, error, took = asyncio.run(main())
    assert error.kind == "timeout" and took < 2
    assert len(received) == 2 == client.stats.sent


def test_a_reset_mid_body_is_a_truncated_body_retried_then_answered() -> None:
    calls: list[int] = []

    async def flaky(request: web.Request) -> web.StreamResponse:
        await request.read()
        calls.append(1)
        headers, (answer,) = respond("plain")
        response = web.StreamResponse(headers={k.decode(): v.decode() for k, v in headers})
        response.content_length = len(answer)
        await response.prepare(request)
        if len(calls) == 1:  # the first answer: half of it, then a reset
            await response.write(answer[: len(answer) // 2])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            request.transport.abort()
            return response
        await response.write(answer)
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", flaky)

    async def main() -> tuple[ChatClient, Response]:
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with chat_client(f"http://127.0.0.1:{port}/v1") as client:
                return client, await client.complete(body("plain", 1))
        finally:
            await runner.cleanup()

    client, response = asyncio.run(main())
    assert (response.text, response.retries) == ("42", 1)
    assert len(calls) == 2 == client.stats.sent
