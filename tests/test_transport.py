"""The client's HTTP layer (httpx's API over httpx-aiohttp) against scripted sockets.

A scripted asyncio server answers each request with exactly the bytes a test gives it and
counts what it receives, so the cases a real server produces only by bad luck (a keep-alive
connection closed just as a request arrives, a reset in the middle of a body, a false
``Content-Encoding``, a HEAD answer with a length) are exercised on the wire, through
``ChatClient`` and its default transport. The same behaviours against real servers
(uvicorn, hypercorn, aiohttp.web, http.server) are in ``test_transport_servers.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from evals.client import ChatClient, RetryPolicy, default_transport, tls_context
from evals.errors import ConfigError, RequestFailed
from evals.providers import Endpoint, proxy_for

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
ANSWER = orjson.dumps({"choices": [{"message": {"content": "42"}, "finish_reason": "stop"}]})
BODY = {"model": "m", "messages": [{"role": "user", "content": "6*7?"}]}


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@contextlib.asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[Server]:
    """Serve on loopback: each request is passed to ``handler(request, writer)``, which
    writes the answer and returns whether to keep the connection open."""
    state = Server(url="")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while (request := await _read_request(reader)) is not None:
                state.requests.append(request)
                if not await handler(request, writer):
                    break
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.close()


def answer(body: bytes, *headers: bytes, version: bytes = b"1.1") -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/%s 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (version, len(body), extra,
                                                                 body)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed server or a middlebox does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def client(url: str, *, retries: int = 3, concurrency: int = 8,
           timeout: float = 10.0) -> ChatClient:
    return ChatClient(Endpoint(provider="custom", base_url=url, key_env=None),
                      concurrency=concurrency, timeout=timeout,
                      retry=RetryPolicy(max_retries=retries, base_delay=0.01, max_delay=0.05))


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(ANSWER))
        return True

    async def main() -> None:
        async with scripted(handler) as server, client(server.url) as chat:
            for _ in range(5):
                assert (await chat.complete(BODY)).text == "42"
        assert (server.connections, len(server.requests)) == (1, 5)
        head = server.requests[0].split(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"post /v1/chat/completions http/1.1\r\n")
        assert b"accept-encoding: gzip, deflate\r\n" in head
        assert b"content-length: %d\r\n" % len(orjson.dumps(BODY)) in head

    run(main())


def test_a_post_on_a_keep_alive_connection_the_server_drops_is_a_counted_retry() -> None:
    """The server takes the request and closes the connection without a word (an idle
    keep-alive connection it expired just then). aiohttp must not resend the POST by itself
    (it retries only idempotent methods); the client resends it once, as a counted retry.
    Before: one request with 8 idle connections reached a server 9 times, 1 recorded."""
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        seen[id(writer)] = seen.get(id(writer), 0) + 1
        if seen[id(writer)] == 1:  # a connection's first request is answered
            writer.write(answer(ANSWER))
            return True
        return False  # later ones: read, then the connection is closed

    seen: dict[int, int] = {}

    async def main() -> None:
        async with scripted(handler) as server, client(server.url, retries=20) as chat:
            await asyncio.gather(*(chat.complete(BODY) for _ in range(8)))  # 8 idle conns
            assert server.connections == 8
            response = await chat.complete(BODY)
            assert response.text == "42"
            assert len(server.requests) == chat.stats.sent == 9 + response.retries
            assert response.retries == chat.stats.retries >= 1

    run(main())


def test_a_reset_in_the_middle_of_a_close_delimited_body_is_an_error_not_an_answer() -> None:
    """aiohttp ends a body framed by the end of the connection at a reset as at a clean
    close, so HTTP cannot tell; the answer's own framing can: a cut JSON body does not
    parse, a cut SSE stream has no finish (test_client's "§7.4" cases)."""
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + ANSWER[:20])
        await writer.drain()
        await asyncio.sleep(0.05)
        reset(writer)
        return False

    async def main() -> None:
        async with scripted(handler) as server, client(server.url, retries=1) as chat:
            with pytest.raises(RequestFailed) as info:
                await chat.complete(BODY)
        assert len(server.requests) == 2 == chat.stats.sent
        assert info.value.kind.startswith(("truncated body", "malformed body (not JSON"))

    run(main())


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_body_shorter_than_its_content_length_is_a_truncated_body(stream: bool) -> None:
    sse = b'data: {"choices": [{"delta": {"content": "42"}, "finish_reason": "stop"}]}\n\n'
    body = sse if stream else ANSWER

    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body) + 50, body))  # all of it, but 50 bytes short of its length
        await writer.drain()
        return False

    async def main() -> None:
        async with scripted(handler) as server, client(server.url, retries=1) as chat:
            with pytest.raises(RequestFailed) as info:
                await chat.complete({**BODY, "stream": stream})
        assert info.value.kind.startswith("truncated body (Response payload is not completed")
        assert len(server.requests) == 2

    run(main())


def test_a_false_content_encoding_is_a_decoding_error_retried_then_reported() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(ANSWER, b"Content-Encoding: gzip"))  # it is not gzip
        return True

    async def main() -> None:
        async with scripted(handler) as server, client(server.url, retries=2) as chat:
            with pytest.raises(RequestFailed) as info:
                await chat.complete(BODY)
        assert info.value.kind.startswith("undecodable body")
        assert len(server.requests) == 3 == chat.stats.sent

    run(main())


def test_gzip_is_decoded_once() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(gzip.compress(ANSWER), b"Content-Encoding: gzip"))
        return True

    async def main() -> None:
        async with scripted(handler) as server, client(server.url) as chat:
            assert (await chat.complete(BODY)).text == "42"

    run(main())


def test_head_with_a_content_length_does_not_wait_for_a_body() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")  # and no body
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = default_transport(server.url, 4)
            started = time.perf_counter()
            for _ in range(2):  # and the connection is reusable after it
                request = httpx.Request("HEAD", server.url + "/models",
                                        extensions={"timeout": {"read": 5.0}})
                response = await transport.handle_async_request(request)
                assert (response.status_code, await response.aread()) == (200, b"")
                await response.aclose()
            await transport.aclose()
            assert time.perf_counter() - started < 1
        assert (server.connections, len(server.requests)) == (1, 2)

    run(main())


def test_a_timeout_is_retried_as_counted_and_never_resent_by_the_transport() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return True  # read and never answered

    async def main() -> None:
        async with scripted(handler) as server, client(server.url, retries=1,
                                                        timeout=0.2) as chat:
            started = time.perf_counter()
            with pytest.raises(RequestFailed, match="last failure: timeout"):
                await chat.complete(BODY)
            assert time.perf_counter() - started < 1.5
        assert len(server.requests) == 2 == chat.stats.sent

    run(main())


def test_tls_context_reads_ssl_cert_file(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"SSL_CERT_FILE=.*missing\.pem cannot be loaded"):
        tls_context()
    with pytest.raises(ConfigError):  # and constructing a client says so, before any request
        ChatClient(Endpoint(provider="custom", base_url="https://x/v1", key_env=None))
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert tls_context().cert_store_stats()["x509_ca"] > 100  # certifi's bundle


def test_proxy_for_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for("https://api.mistral.ai/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,internal.example")
    assert proxy_for("https://api.mistral.ai/v1") == "http://proxy.example:3128"
    assert proxy_for("http://api.mistral.ai/v1") is None  # HTTPS_PROXY is for https only
    assert proxy_for("https://gpu.internal.example/v1") is None
    monkeypatch.setenv("all_proxy", "http://other.example:8080")
    assert proxy_for("http://api.mistral.ai/v1") == "http://other.example:8080"


@contextlib.asynccontextmanager
async def forward_proxy() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A forward proxy for plain http: absolute-form in, origin-form out, one request per
    connection. Yields its URL and the targets it forwarded."""
    proxied: list[bytes] = []

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request is None:
            writer.close()
            return
        head, _, body = request.partition(b"\r\n\r\n")
        first, *lines = head.split(b"\r\n")
        method, target, _ = first.split(b" ")
        proxied.append(target)
        url = httpx.URL(target.decode())
        up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
        kept = [line for line in lines
                if not line.lower().startswith((b"connection:", b"proxy-"))]
        up_writer.write(method + b" " + url.raw_path + b" HTTP/1.1\r\n"
                        + b"".join(line + b"\r\n" for line in kept)
                        + b"Connection: close\r\n\r\n" + body)
        writer.write(await up_reader.read())
        await writer.drain()
        writer.close()
        up_writer.close()

    proxy = await asyncio.start_server(forward, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}", proxied
    finally:
        proxy.close()


@pytest.mark.parametrize("no_proxy", [False, True], ids=["through the proxy", "NO_PROXY"])
def test_an_endpoint_behind_a_proxy_is_reached_through_it_and_gzip_still_decodes(
        monkeypatch: pytest.MonkeyPatch, no_proxy: bool) -> None:
    async def upstream(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(gzip.compress(ANSWER), b"Content-Encoding: gzip",
                            b"Connection: close"))
        return False

    async def main() -> None:
        async with forward_proxy() as (proxy_url, proxied), scripted(upstream) as server:
            monkeypatch.setenv("HTTP_PROXY", proxy_url)
            if no_proxy:
                monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            async with client(server.url) as chat:
                assert (await chat.complete(BODY)).text == "42"
        assert proxied == ([] if no_proxy else [server.url.encode() + b"/chat/completions"])
        assert len(server.requests) == 1

    run(main())
