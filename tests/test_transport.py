"""The HTTP/1.1 transport against real sockets: a scripted asyncio server answers each
request with exactly the bytes a test gives it, so framing, keep-alive, stale connections,
broken answers, timeouts and TLS are exercised on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from evals.transport import HttpTransport

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


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
async def scripted(handler: Handler, ssl_ctx: ssl.SSLContext | None = None
                   ) -> AsyncIterator[Server]:
    """Serve: each request is passed to ``handler(request, writer)``, which writes the
    answer and returns whether to keep the connection open."""
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

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=ssl_ctx)
    port = server.sockets[0].getsockname()[1]
    state.url = f"{'https' if ssl_ctx else 'http'}://localhost:{port}/v1/chat/completions"
    try:
        yield state
    finally:
        server.close()


def answer(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def post(url: str, body: bytes = b'{"q": 1}', stream: bool = False) -> httpx.Request:
    request = httpx.Request("POST", url, content=body, extensions={"evals.stream": stream})
    return request


async def fetch(transport: HttpTransport, url: str, stream: bool = False) -> httpx.Response:
    response = await transport.handle_async_request(post(url, stream=stream))
    await response.aread()
    return response


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b'{"n": %d}' % len(request)))
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport(max_idle=4)
            bodies = [(await fetch(transport, server.url)).content for _ in range(5)]
            await transport.aclose()
        assert server.connections == 1 and len(server.requests) == 5
        assert len(set(bodies)) == 1 and bodies[0].startswith(b'{"n": ')
        first = server.requests[0]
        assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert b"\r\nHost: localhost:" in first and b'\r\n\r\n{"q": 1}' in first
        assert b"\r\nContent-Length: 8\r\n" in first

    run(main())


def test_chunked_answer_is_read_whole_and_streamed() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"data: a\n\n", b"data: b\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            whole = await fetch(transport, server.url)
            response = await transport.handle_async_request(post(server.url, stream=True))
            pieces = [chunk async for chunk in response.stream]  # type: ignore[union-attr]
            await response.aclose()
            again = await fetch(transport, server.url)
            await transport.aclose()
        assert whole.content == again.content == b"data: a\n\ndata: b\n\n"
        assert pieces == [b"data: a\n\n", b"data: b\n\n"]  # as they arrived
        assert server.connections == 1

    run(main())


def test_a_body_framed_by_the_end_of_the_connection() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"all\": true}")
        return False

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            first = await fetch(transport, server.url)
            second = await fetch(transport, server.url)
            await transport.aclose()
        assert first.content == second.content == b'{"all": true}'
        assert server.connections == 2  # "Connection: close" is not reused

    run(main())


def test_a_stale_idle_connection_is_replaced_without_sending_twice() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"{}"))
        await writer.drain()
        return False  # closes after answering, without saying so

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            await fetch(transport, server.url)
            await asyncio.sleep(0.05)
            conn = transport._idle[next(iter(transport._idle))]
            # Whether or not the close has been noticed yet, the next request succeeds.
            assert len(conn) <= 1
            await fetch(transport, server.url)
            await transport.aclose()
        assert len(server.requests) == 2 and server.connections == 2

    run(main())


def test_a_reused_connection_that_dies_unnoticed_is_retried_once_on_a_fresh_one() -> None:
    async def main() -> None:
        async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(answer(b"{}"))
            return True

        async with scripted(handler) as server:
            transport = HttpTransport()
            await fetch(transport, server.url)
            (conn,) = transport._idle[next(iter(transport._idle))]
            # Pretend the server's close is still in flight: the pool has not seen it.
            assert conn.transport is not None
            conn.transport.abort()
            conn.lost = False
            response = await fetch(transport, server.url)
            await transport.aclose()
        assert response.status_code == 200 and server.connections == 2

    run(main())


@pytest.mark.parametrize("raw, says", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"cut\": ", "middle of the body"),
    (b"", "without answering"),
    (b"NOT HTTP AT ALL\r\n\r\n", "malformed HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "middle of the body"),
])
def test_broken_answers_raise_remote_protocol_error(raw: bytes, says: str) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        return False

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            with pytest.raises(httpx.RemoteProtocolError, match=says) as info:
                await fetch(transport, server.url)
            assert info.value.request.url == httpx.URL(server.url)
            await transport.aclose()
        assert len(server.requests) == 1  # a fresh connection's failure is not retried here

    run(main())


def test_silence_beyond_the_read_timeout_raises_read_timeout() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport(read_timeout=0.2)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(httpx.ReadTimeout):
                await fetch(transport, server.url)
            assert loop.time() - started < 2
            assert not transport._open  # the connection was dropped, not pooled
            await transport.aclose()

    run(main())


def test_interim_100_continue_is_skipped() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done"))
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            response = await fetch(transport, server.url)
            await transport.aclose()
        assert (response.status_code, response.content) == (200, b"done")

    run(main())


@pytest.mark.parametrize("coding, compress", [
    (b"gzip", gzip.compress),
    (b"deflate", zlib.compress),
    (b"deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some send it
])
@pytest.mark.parametrize("stream", [False, True])
def test_compressed_bodies_are_decoded_once(coding: bytes, compress: Callable[[bytes], bytes],
                                            stream: bool) -> None:
    text = b'{"choices": [{"message": {"content": "' + b"x" * 5000 + b'"}}]}'

    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        packed = compress(text)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" % coding
                     + chunked(packed[:len(packed) // 2], packed[len(packed) // 2:]))
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            response = await transport.handle_async_request(post(server.url, stream=stream))
            body = b"".join([c async for c in response.stream])  # type: ignore[union-attr]
            await response.aclose()
            await transport.aclose()
        assert body == text and "content-encoding" not in response.headers

    run(main())


def test_an_abandoned_stream_does_not_poison_the_pool() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            response = await transport.handle_async_request(post(server.url, stream=True))
            async for _ in response.stream:  # type: ignore[union-attr]
                break
            await response.aclose()
            again = await fetch(transport, server.url)
            await transport.aclose()
        assert again.content == b"firstsecond" and server.connections == 2

    run(main())


def test_refused_connection_is_connect_error_naming_the_address() -> None:
    async def main() -> None:
        transport = HttpTransport(connect_timeout=2)
        with pytest.raises(httpx.ConnectError, match="127.0.0.1:9") as info:
            await fetch(transport, "http://127.0.0.1:9/v1/chat/completions")
        assert isinstance(info.value.__cause__, OSError)
        await transport.aclose()

    run(main())


def test_a_get_without_body_sends_no_content_length() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b'{"data": []}'))
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            url = server.url.replace("chat/completions", "models")
            response = await transport.handle_async_request(httpx.Request("GET", url))
            await response.aread()
            await transport.aclose()
        assert response.json() == {"data": []}
        assert server.requests[0].startswith(b"GET /v1/models HTTP/1.1\r\n")
        assert b"content-length" not in server.requests[0].lower()

    run(main())


def test_tls_with_a_verified_certificate(tmp_path: object) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b'{"secure": true}'))
        return True

    async def main() -> None:
        async with scripted(handler, server_ctx) as server:
            trusted = HttpTransport(ssl_context=client_ctx)
            ok = [(await fetch(trusted, server.url)).content for _ in range(2)]
            await trusted.aclose()
            untrusted = HttpTransport(connect_timeout=5)  # certifi's roots: not our CA
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await fetch(untrusted, server.url)
            await untrusted.aclose()
        assert ok == [b'{"secure": true}'] * 2 and server.connections == 1

    run(main())


@pytest.mark.parametrize("stream", [False, True])
def test_the_read_timeout_counts_silence_not_the_length_of_the_answer(stream: bool) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):  # 0.6 s in all, never 0.3 s of silence
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
        writer.write(b"0\r\n\r\n")
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport(read_timeout=0.3)
            response = await transport.handle_async_request(post(server.url, stream=stream))
            body = b"".join([c async for c in response.stream])  # type: ignore[union-attr]
            await response.aclose()
            await transport.aclose()
        assert body == b"x" * 6

    run(main())


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def test_proxy_for_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.transport import proxy_for

    _clear_proxies(monkeypatch)
    assert proxy_for("https://api.mistral.ai/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,internal.example")
    assert proxy_for("https://api.mistral.ai/v1") == "http://proxy.example:3128"
    assert proxy_for("http://api.mistral.ai/v1") is None  # HTTPS_PROXY is for https only
    assert proxy_for("https://gpu.internal.example/v1") is None
    monkeypatch.setenv("all_proxy", "http://other.example:8080")
    assert proxy_for("http://api.mistral.ai/v1") == "http://other.example:8080"


def test_an_endpoint_behind_a_proxy_is_reached_through_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.client import ChatClient
    from evals.providers import Endpoint

    proxied: list[bytes] = []

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A forward proxy for plain http: absolute-form in, origin-form out."""
        request = await _read_request(reader)
        assert request is not None
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

    async def upstream(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b'{"choices": [{"message": {"content": "42"}, '
                            b'"finish_reason": "stop"}]}', b"Connection: close"))
        return False

    async def main() -> None:
        proxy = await asyncio.start_server(forward, "127.0.0.1", 0)
        proxy_port = proxy.sockets[0].getsockname()[1]
        try:
            async with scripted(upstream) as server:
                base = server.url.removesuffix("/chat/completions").replace(
                    "localhost", "127.0.0.1")
                monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
                client = ChatClient(Endpoint(provider="vllm", base_url=base, key_env=None,
                                             api_key=None))
                assert isinstance(client.transport, httpx.AsyncHTTPTransport)
                response = await client.complete({"model": "m", "messages": []})
                await client.aclose()
        finally:
            proxy.close()
        assert response.text == "42"
        assert proxied == [base.encode() + b"/chat/completions"]

    _clear_proxies(monkeypatch)
    run(main())


def test_a_timeout_on_a_reused_connection_is_not_sent_again() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(served) == 0:
            writer.write(answer(b"{}"))
        served.append(request)
        return True  # the second request is read and never answered

    served: list[bytes] = []

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport(read_timeout=0.3)
            await fetch(transport, server.url)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(httpx.ReadTimeout):
                await fetch(transport, server.url)
            assert loop.time() - started < 0.55  # one timeout, not two
            await transport.aclose()
        assert len(server.requests) == 2  # the server saw the slow request once

    run(main())


def test_the_transport_frames_the_body_whatever_headers_say() -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"{}"))
        return True

    async def main() -> None:
        async with scripted(handler) as server:
            transport = HttpTransport()
            request = httpx.Request("POST", server.url, content=b'{"q": 1}',
                                    headers={"Content-length": "99",
                                             "Transfer-Encoding": "chunked"})
            response = await transport.handle_async_request(request)
            await response.aread()
            await transport.aclose()
        sent = server.requests[0].lower()
        assert sent.count(b"content-length") == 1 and b"content-length: 8\r\n" in sent
        assert b"transfer-encoding" not in sent

    run(main())
