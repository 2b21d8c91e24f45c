"""An httpx transport that sends through aiohttp's connection pool.

httpx 0.28's own pool costs several milliseconds of CPU per request once hundreds are in
flight (measured in DESIGN.md and in bench/throughput.py); aiohttp's pool stays near 0.2 ms.
This keeps httpx's API (``httpx.Request``/``httpx.Response``, ``MockTransport`` in unit
tests) and puts aiohttp underneath. It is deliberately small: HTTP/1.1, no proxies, no
cookies; a chat-completions client needs none of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

# Headers aiohttp computes itself (request) or has already applied (response).
_HOP_HEADERS = frozenset({b"host", b"content-length", b"content-encoding", b"transfer-encoding"})


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request | None = None) -> Iterator[None]:
    """Raise aiohttp's failures as the httpx exceptions callers of a transport expect."""
    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(
            "server closed the connection without answering", request=request
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        raise httpx.RemoteProtocolError(f"body cut short: {exc}", request=request) from exc
    except aiohttp.ClientConnectionError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientResponseError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from exc


class _Body(httpx.AsyncByteStream):
    __slots__ = ("_resp",)

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._resp.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._resp.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over one ``aiohttp.ClientSession``.

    A request whose ``extensions["evals.stream"]`` is false gets its body read before
    the response is returned; otherwise the body streams.

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

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._get_session()
        headers: Any = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _HOP_HEADERS
        ]
        with _as_httpx_errors(request):
            resp = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=request.content,
                allow_redirects=False,
            )
        raw_headers = resp.raw_headers
        if any(k.lower() in _HOP_HEADERS for k, _ in raw_headers):
            # aiohttp has already decompressed the body: drop the encoding so httpx does not
            # try again.
            raw_headers = tuple((k, v) for k, v in raw_headers if k.lower() not in _HOP_HEADERS)
        if request.extensions.get("evals.stream", True):
            return httpx.Response(resp.status, headers=list(raw_headers), stream=_Body(resp),
                                  request=request)
        # A whole-body answer: read it here, one call instead of an async iteration.
        try:
            with _as_httpx_errors(request):
                content = await resp.read()
        finally:
            resp.release()
        return httpx.Response(resp.status, headers=list(raw_headers), content=content,
                              request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
