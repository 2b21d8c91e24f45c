"""An httpx transport that sends through aiohttp's connection pool.

httpx 0.28's own pool costs several milliseconds of CPU per request once hundreds are in
flight (measured in DESIGN.md and in bench/throughput.py); aiohttp's pool stays near 0.2 ms.
This keeps httpx's API (``httpx.Request``/``httpx.Response``, ``MockTransport`` in unit
tests) and puts aiohttp underneath. It is deliberately small: HTTP/1.1, no proxies, no
cookies; a chat-completions client needs none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

# Headers aiohttp computes itself (request) or has already applied (response).
_HOP_HEADERS = frozenset({b"host", b"content-length", b"content-encoding", b"transfer-encoding"})


# What ``_to_httpx`` maps; any other exception propagates untouched.
_MAPPED = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
           aiohttp.ClientResponseError, TimeoutError)


def _to_httpx(exc: BaseException, request: httpx.Request | None) -> BaseException:
    """aiohttp's failure as the httpx exception callers of a transport expect.

    A function called from ``except _MAPPED`` rather than a context manager: it runs on
    every request, and a generator-based context manager costs two extra calls each time.
    Anything ``_MAPPED`` does not list is returned unchanged.
    """
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(
            "server closed the connection without answering", request=request
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"body cut short: {exc}", request=request)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.ReadError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout("timed out waiting for the answer", request=request)
    return exc


class _Body(httpx.AsyncByteStream):
    __slots__ = ("_resp",)

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except _MAPPED as exc:
            raise _to_httpx(exc, None) from exc

    async def aclose(self) -> None:
        self._resp.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over one ``aiohttp.ClientSession``.

    A request whose ``extensions["evals.stream"]`` is false gets its body read before
    the response is returned (as an unread ``httpx.ByteStream``: read it with
    ``aread()``, or iterate ``response.stream``); otherwise the body streams.

    Args:
        max_connections: size of the connection pool (set it to the concurrency).
        connect_timeout: seconds to open a connection.
        read_timeout: seconds of silence allowed while waiting for bytes (a streamed
            answer may take minutes in total, so there is no overall limit).

    The session is created on first use, inside the running event loop.
    """

    def __init__(
        self,
        max_connections: int = 100,
        connect_timeout: float = 30.0,
        read_timeout: float = 600.0,
    ) -> None:
        self._limit = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        # A client sends every request with the same few headers: their aiohttp form is
        # made once, keyed on what httpx holds. (URLs need no such cache: yarl keeps one.)
        self._headers: dict[tuple[tuple[bytes, bytes], ...], list[tuple[str, str]]] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit, keepalive_timeout=30
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _send_headers(self, raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        key = tuple([pair for pair in raw if pair[0].lower() not in _HOP_HEADERS])
        found = self._headers.get(key)
        if found is None:
            if len(self._headers) >= 64:
                self._headers.clear()
            found = self._headers[key] = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in key
            ]
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None or session.closed:
            session = self._get_session()
        try:
            resp = await session.request(
                request.method,
                str(request.url),
                headers=self._send_headers(request.headers.raw),
                data=request.content,
                allow_redirects=False,
            )
        except _MAPPED as exc:
            raise _to_httpx(exc, request) from exc
        # aiohttp has already decompressed the body and framed it: drop the encoding and
        # the framing so httpx does not try again.
        raw_headers = [pair for pair in resp.raw_headers if pair[0].lower() not in _HOP_HEADERS]
        stream: httpx.AsyncByteStream
        if request.extensions.get("evals.stream", True):
            stream = _Body(resp)
        else:
            # A whole-body answer: read it here, one call instead of an async iteration,
            # and hand it over as a stream (``Response(content=...)`` would copy it through
            # httpx's decoders once more).
            try:
                stream = httpx.ByteStream(await resp.read())
            except _MAPPED as exc:
                raise _to_httpx(exc, request) from exc
            finally:
                resp.release()
        return httpx.Response(resp.status, headers=raw_headers, stream=stream, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
