"""An httpx transport on asyncio protocols and httptools' HTTP/1.1 parser.

The client speaks httpx's API (``httpx.Request`` in, ``httpx.Response`` out,
``httpx.MockTransport`` in unit tests); this module is what sits underneath. Measured by
``bench/transport_loops.py`` on a 2-core machine at 200 ms latency and 64 in flight, a
bare loop spends 0.45 ms of CPU per request over aiohttp's client, 0.09 ms over an asyncio
protocol with httptools' parser (the llhttp C parser, kept by the uvloop authors) and
0.16 ms through this transport with httpx's objects.
At hundreds of requests in flight the transport decides whether the harness or the
endpoint is the bottleneck, so this one does only what a chat-completions client needs:

* HTTP/1.1 with keep-alive, one pool of idle connections per origin (LIFO);
* ``http`` and ``https`` (TLS through the event loop, certificates from ``certifi`` unless
  ``SSL_CERT_FILE``/``SSL_CERT_DIR`` name others); no cookies, no redirects, no proxies
  (``default_transport`` hands an endpoint behind a proxy to httpx's own transport);
* bodies framed by Content-Length, chunked, or the end of the connection; gzip and
  deflate bodies are decoded here (the header is dropped so nobody decodes twice);
* a request that fails on a reused connection before any byte of an answer arrived is
  sent once more on a fresh one (the server closed an idle connection: the request never
  reached it); every other failure is raised as the httpx exception callers expect.

A request whose ``extensions["evals.stream"]`` is false gets its whole body read before
the response is returned (as an unread ``httpx.ByteStream``); otherwise the body streams
as it arrives.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httptools
import httpx

__all__ = ["HttpTransport", "default_transport", "proxy_for"]

_DEFAULT_PORTS = {b"http": 80, b"https": 443}
ANY, HEAD, WHOLE = 0, 1, 2  # what a waiter on a connection needs before it is woken
_ENCODED_DROP = frozenset({b"content-encoding", b"content-length"})
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})  # we frame the body


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 connection, serving one request at a time.

    Parser callbacks fill ``status``/``headers``/``chunks``; ``data_received`` wakes the
    coroutine waiting on the connection once what it waits for has arrived. One timer per
    exchange enforces the read timeout: it re-arms itself from the last read.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.waiter: asyncio.Future[None] | None = None
        self.need = ANY
        self._timer: asyncio.TimerHandle | None = None
        self._reset(None)

    def _reset(self, request: httpx.Request | None) -> None:
        self.request = request
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.head_done = self.complete = self.keep_alive = self.got_bytes = False
        self.error: httpx.TransportError | None = None
        self._interim = False
        self.last_read = self.loop.time()

    # -- one exchange -----------------------------------------------------------------

    def begin(self, request: httpx.Request, data: bytes, timeout: float) -> None:
        self._reset(request)
        self._timeout = timeout
        self._timer = self.loop.call_later(timeout, self._check_silence)
        assert self.transport is not None
        self.transport.write(data)

    def finish(self) -> None:
        """The exchange is over (its connection pooled or dropped): stop its timer."""
        self.request = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def wait(self, need: int = ANY) -> None:
        """Until ``need`` holds (``ANY`` new bytes, the ``HEAD`` of the answer, or all of it:
        ``WHOLE``), or the exchange failed; raises what went wrong (ReadTimeout after the
        exchange's timeout without a byte). Waking only once ``need`` holds spares a long
        answer read whole one trip through the waiting coroutines per network read."""
        if self.error is None:
            self.waiter = self.loop.create_future()
            self.need = need
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.error is not None:
            raise self.error

    def _check_silence(self) -> None:
        if self.request is None or self.complete or self.error is not None:
            self._timer = None
            return
        silent = self.loop.time() - self.last_read
        if silent < self._timeout:  # bytes came meanwhile: wait on from the last one
            self._timer = self.loop.call_later(self._timeout - silent, self._check_silence)
            return
        self._timer = None
        self.error = httpx.ReadTimeout("timed out waiting for the answer",
                                       request=self.request)
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if (self.complete or self.error is not None or self.need == ANY
                or (self.need == HEAD and self.head_done)):
            waiter.set_result(None)

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = httpx.RemoteProtocolError(f"malformed HTTP answer: {exc}",
                                                   request=self.request)
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.request is not None and not self.complete and self.error is None:
            if self.head_done and _until_eof(self.headers):
                self.complete = True  # a body framed by the end of the connection
            elif self.head_done:
                self.error = httpx.RemoteProtocolError(
                    "the server closed the connection in the middle of the body",
                    request=self.request)
            else:
                self.error = httpx.RemoteProtocolError(
                    "server closed the connection without answering"
                    + (f" ({exc})" if exc else ""), request=self.request)
        self._wake()

    # -- httptools callbacks --------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # "100 Continue" and friends: the answer follows
            self._interim = True
            self.headers = []
            return
        self.status = status
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.keep_alive = self.parser.should_keep_alive()  # reset once this returns
        self.complete = True

    def take(self) -> bytes:
        chunks = self.chunks
        if not chunks:
            return b""
        self.chunks = []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _until_eof(headers: list[tuple[bytes, bytes]]) -> bool:
    names = {name.lower() for name, _ in headers}
    return b"content-length" not in names and b"transfer-encoding" not in names


def _decoder(headers: list[tuple[bytes, bytes]]) -> Callable[[bytes], bytes] | None:
    """A decompressor for a gzip/deflate body, or None for an identity body."""
    for name, value in headers:
        if name.lower() == b"content-encoding":
            coding = value.strip().lower()
            if coding in (b"gzip", b"x-gzip"):
                return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
            if coding == b"deflate":
                return _Deflate().decompress
    return None


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped per the RFC, or raw (as some do)."""

    def __init__(self) -> None:
        self._obj: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._obj is None:
            self._obj = zlib.decompressobj()
            try:
                return bytes(self._obj.decompress(data))
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._obj.decompress(data))


class _Body(httpx.AsyncByteStream):
    """A streamed body: chunks as they arrive; the connection goes back when it ends."""

    def __init__(self, owner: HttpTransport, conn: _Conn, key: tuple[bytes, bytes, int],
                 decode: Callable[[bytes], bytes] | None) -> None:
        self._owner, self._conn, self._key, self._decode = owner, conn, key, decode
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            data = conn.take()
            if data:
                yield self._decode(data) if self._decode else data
                continue
            if conn.complete:
                break
            await conn.wait()
        self._done = True
        self._owner._release(self._key, conn)

    async def aclose(self) -> None:
        if not self._done:  # abandoned half-read: the connection cannot be reused
            self._done = True
            self._owner._discard(self._conn)


class HttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over pooled HTTP/1.1 connections.

    Args:
        max_idle: idle connections kept per origin (set it to the concurrency; more
            may be open while busy, the caller bounds how many).
        connect_timeout: seconds to open a connection (TLS included).
        read_timeout: seconds of silence allowed while waiting for bytes (a streamed
            answer may take minutes in total, so there is no overall limit).
        ssl_context: for ``https``; default: verified, ``certifi``'s roots.

    A request's ``extensions["timeout"]`` (httpx's ``{"connect": s, "read": s}``)
    overrides the two timeouts.
    """

    def __init__(self, max_idle: int = 100, connect_timeout: float = 30.0,
                 read_timeout: float = 600.0, ssl_context: Any = None) -> None:
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl = ssl_context
        self._idle: dict[tuple[bytes, bytes, int], list[_Conn]] = {}
        self._open: set[_Conn] = set()
        # The header block of a request, keyed on httpx's raw headers: a client sends
        # every request with the same few.
        self._heads: dict[tuple[Any, ...], bytes] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        key = (scheme, url.raw_host, url.port or _DEFAULT_PORTS.get(scheme, 80))
        timeouts = request.extensions.get("timeout")
        read_timeout = (timeouts or {}).get("read") or self._read_timeout
        sent = request.stream
        if isinstance(sent, httpx.ByteStream):  # the client's: one bytes, no async read
            content = b"".join(sent)
        else:
            try:
                content = request.content
            except httpx.RequestNotRead:
                content = await request.aread()
        data = self._head(request, len(content)) + content
        whole = not request.extensions.get("evals.stream", True)
        need = WHOLE if whole else HEAD
        while True:
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, request, timeouts)
            conn.begin(request, data, read_timeout)
            try:
                while not (conn.complete if whole else conn.head_done):
                    await conn.wait(need)
            except httpx.RemoteProtocolError:
                self._discard(conn)
                if reused and not conn.got_bytes:
                    continue  # a stale keep-alive connection, closed: the server never saw it
                raise
            except httpx.TransportError:  # a timeout is not resent: the server may be busy
                self._discard(conn)
                raise
            except BaseException:  # cancelled: the answer would arrive on a reused line
                self._discard(conn)
                raise
            break
        decode = _decoder(conn.headers)
        headers = conn.headers
        if decode is not None:
            headers = [pair for pair in headers if pair[0].lower() not in _ENCODED_DROP]
        stream: httpx.AsyncByteStream
        if whole:
            # Read here and handed over as a stream (``Response(content=...)`` would copy
            # it through httpx's encoders again).
            body = conn.take()
            self._release(key, conn)
            stream = httpx.ByteStream(decode(body) if decode else body)
        else:
            stream = _Body(self, conn, key, decode)
        return httpx.Response(conn.status, headers=headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    def _head(self, request: httpx.Request, length: int) -> bytes:
        """The request line and headers; Content-Length is the only part that varies."""
        raw = request.headers.raw
        fixed = [pair for pair in raw if pair[0].lower() not in _FRAMING]
        cache_key = (request.method, request.url.raw_path, *fixed)
        prefix = self._heads.get(cache_key)
        if prefix is None:
            names = {name.lower() for name, _ in raw}
            lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"),
                                               request.url.raw_path)]
            if b"host" not in names:
                lines.append(b"Host: %s\r\n" % request.url.netloc)
            lines += [name + b": " + value + b"\r\n" for name, value in fixed]
            prefix = b"".join(lines)
            if len(self._heads) >= 256:
                self._heads.clear()
            self._heads[cache_key] = prefix
        if length or request.method in ("POST", "PUT", "PATCH"):
            return prefix + b"Content-Length: %d\r\n\r\n" % length
        return prefix + b"\r\n"

    def _take(self, key: tuple[bytes, bytes, int]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.lost:
                return conn
            self._open.discard(conn)
        return None

    def _release(self, key: tuple[bytes, bytes, int], conn: _Conn) -> None:
        conn.finish()
        if conn.lost or not conn.keep_alive:
            self._discard(conn)
            return
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self._max_idle:
            self._discard(conn)
        else:
            idle.append(conn)

    def _discard(self, conn: _Conn) -> None:
        conn.finish()
        conn.close()
        self._open.discard(conn)

    async def _connect(self, key: tuple[bytes, bytes, int], request: httpx.Request,
                       timeouts: dict[str, float | None] | None) -> _Conn:
        scheme, raw_host, port = key
        host = raw_host.decode("ascii")
        loop = asyncio.get_running_loop()
        ssl = self._ssl_context() if scheme == b"https" else None
        timeout = (timeouts or {}).get("connect") or self._connect_timeout
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(loop), host, port, ssl=ssl,
                                       server_hostname=host if ssl else None),
                timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"could not connect to {host}:{port} in {timeout} s",
                                       request=request) from exc
        except OSError as exc:  # refused, unreachable, name not known, TLS failure
            raise httpx.ConnectError(f"could not connect to {host}:{port}: {exc}",
                                     request=request) from exc
        self._open.add(conn)
        return conn

    def _ssl_context(self) -> Any:
        if self._ssl is None:
            import ssl

            if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
                self._ssl = ssl.create_default_context()
            else:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()


def proxy_for(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, any case;
    ``NO_PROXY`` respected) names for ``url``, or None."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the common case, without importing urllib.request
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all") or None


def default_transport(base_url: str, concurrency: int) -> httpx.AsyncBaseTransport:
    """``HttpTransport`` sized to ``concurrency``; httpx's own transport (slower with
    hundreds in flight, but it speaks to proxies) when the environment names a proxy for
    ``base_url``. Timeouts come with each request (httpx's ``timeout`` extension)."""
    proxy = proxy_for(base_url)
    if proxy is None:
        return HttpTransport(max_idle=concurrency)
    return httpx.AsyncHTTPTransport(
        proxy=proxy, limits=httpx.Limits(max_connections=concurrency,
                                         max_keepalive_connections=concurrency))
