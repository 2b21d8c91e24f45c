"""The per-attempt hot path: the client's pre-built request, the HTTP transport against a
real local server, and the store's writer thread."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web

from evals.client import ChatClient
from evals.providers import Endpoint
from evals.records import Response, Usage
from evals.store import Store, request_key

ENDPOINT = Endpoint(provider="openai", base_url="http://127.0.0.1:9/v1", key_env="K",
                    api_key="sk-x")
BODY = {"model": "m", "messages": [{"role": "user", "content": "What is 6*7?"}], "seed": 3}
ANSWER = {"choices": [{"message": {"content": "42"}, "finish_reason": "stop"}], "model": "m"}


def test_prebuilt_post_is_the_request_httpx_would_build() -> None:
    client = ChatClient(ENDPOINT, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    payload = orjson.dumps(BODY)
    fast = client._post(payload, stream=False)
    fast.read()  # left unread for the transport
    plain = httpx.Request("POST", client._url, headers=client._headers, content=payload)
    assert (fast.method, fast.url, fast.headers.raw, fast.content) == (
        plain.method, plain.url, plain.headers.raw, plain.content)
    assert fast.extensions["evals.stream"] is False
    assert fast.extensions["timeout"]["read"] == 600.0


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[str]:
    """A real aiohttp server: /plain (JSON), /gzip (compressed JSON), /sse (chunked)."""
    async def plain(request: web.Request) -> web.Response:
        assert request.headers["authorization"] == "Bearer sk-x"
        assert orjson.loads(await request.read()) == BODY
        return web.json_response(ANSWER, headers={"x-evals-simulator": "1"})

    async def zipped(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(orjson.dumps(ANSWER)),
                            headers={"content-encoding": "gzip",
                                     "content-type": "application/json"})

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for piece in (b'data: {"choices": [{"delta": {"content": "4"}}]}\n\n',
                      (b'data: {"choices": [{"delta": {"content": "2"}, '
                       b'"finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')):
            await resp.write(piece)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/plain", plain)
    app.router.add_post("/v1/gzip", zipped)
    app.router.add_post("/v1/sse", sse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def _client(base_url: str, path: str) -> ChatClient:
    client = ChatClient(Endpoint(provider="openai", base_url=base_url, key_env="K",
                                 api_key="sk-x"), concurrency=4)
    client._url = httpx.URL(base_url + path)
    client._post_headers = [(b"Host", client._url.netloc), *client._headers.raw]
    return client


async def _ask(path: str, body: dict[str, object], times: int = 1) -> list[Response]:
    async with serving() as server, _client(server, path) as client:
        return [await client.complete(body) for _ in range(times)]


def test_transport_sends_headers_and_reads_whole_bodies() -> None:
    first, second = asyncio.run(_ask("/plain", BODY, times=2))  # 2nd: cached header form
    assert first.text == second.text == "42" and first.simulated


def test_transport_undoes_gzip_once() -> None:
    assert asyncio.run(_ask("/gzip", BODY))[0].text == "42"


def test_transport_streams_and_measures_time_to_first_token() -> None:
    (response,) = asyncio.run(_ask("/sse", {**BODY, "stream": True}))
    assert response.text == "42" and response.ttft_s is not None


def _commit(store: Store, seed: int) -> asyncio.Future[None]:
    body = {**BODY, "seed": seed}
    return store.commit_soon(request_key(body, 0), task="t", sample_id="s", repeat=0,
                             seed=seed, request=body,
                             response=Response("42", None, "stop", Usage(1, 2)))


def _rows(path: Path) -> set[int]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT seed FROM responses")}


def test_a_commit_future_resolves_only_once_the_row_is_on_disk(tmp_path: Path) -> None:
    asyncio.run(_a_commit_future_resolves_only_once_the_row_is_on_disk(tmp_path))


async def _a_commit_future_resolves_only_once_the_row_is_on_disk(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    try:
        futures = [_commit(store, seed) for seed in range(5)]
        assert len({id(f) for f in futures}) == 1  # one turn of the loop, one transaction
        await futures[0]
        assert _rows(store.path) == set(range(5))  # another connection sees them
        later = [_commit(store, seed) for seed in range(5, 900)]  # over one statement's rows
        await asyncio.gather(*later)
        assert _rows(store.path) == set(range(900))
        key = request_key({**BODY, "seed": 7}, 0)
        assert key in store and store.get(key) == Response("42", None, "stop", Usage(1, 2))
    finally:
        store.close()


def test_answers_of_one_turn_share_a_transaction_and_then_runs_after_commit(
        tmp_path: Path) -> None:
    asyncio.run(_one_turn(tmp_path))


async def _one_turn(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    seen: list[tuple[int, set[int]]] = []
    try:
        futures = [store.commit_soon(
            request_key({**BODY, "seed": seed}, 0), task="t", sample_id="s", repeat=0,
            seed=seed, request={**BODY, "seed": seed},
            response=Response("42", None, "stop", Usage(1, 2)),
            then=lambda seed=seed: seen.append((seed, _rows(store.path))))
            for seed in range(3)]
        assert len({id(f) for f in futures}) == 1 and not seen and _rows(store.path) == set()
        await asyncio.sleep(0)  # no window to wait out: committed at the end of the turn
        assert futures[0].done()
        # Each callback ran once, after the commit: its row was already visible on disk.
        assert [s for s, _ in seen] == [0, 1, 2] and all(r == {0, 1, 2} for _, r in seen)
        later = _commit(store, 3)  # the next turn: the next transaction
        assert later is not futures[0] and not later.done()
        await later
        assert _rows(store.path) == {0, 1, 2, 3}
    finally:
        store.close()


def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    asyncio.run(_close_writes_what_is_still_queued(tmp_path))


async def _close_writes_what_is_still_queued(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    _commit(store, 1)  # queued, never awaited
    store.close()
    assert _rows(tmp_path / "s.sqlite") == {1}
    reopened = Store(tmp_path / "s.sqlite")
    try:
        assert request_key({**BODY, "seed": 1}, 0) in reopened
    finally:
        reopened.close()


def test_a_failed_transaction_fails_the_commit_future(tmp_path: Path) -> None:
    asyncio.run(_a_failed_transaction_fails_the_commit_future(tmp_path))


async def _a_failed_transaction_fails_the_commit_future(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    try:
        with sqlite3.connect(store.path) as db:
            db.execute("DROP TABLE responses")
        with pytest.raises(sqlite3.OperationalError):
            await _commit(store, 1)
        assert request_key({**BODY, "seed": 1}, 0) not in store
        with pytest.raises(sqlite3.OperationalError):  # and every later one, at once
            _commit(store, 2)
    finally:
        with pytest.raises(sqlite3.OperationalError):  # closing says so too
            store.close()


def test_a_store_of_the_earlier_schema_is_read_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    old = request_key({**BODY, "seed": 1}, 0)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, task TEXT NOT NULL, "
                   "sample_id TEXT NOT NULL, repeat INTEGER NOT NULL, seed INTEGER NOT NULL, "
                   "request BLOB NOT NULL, response BLOB NOT NULL, created REAL NOT NULL)")
        db.execute("INSERT INTO responses VALUES (?, 't', 's', 0, 1, ?, ?, 0)",
                   (old, orjson.dumps({**BODY, "seed": 1}),
                    orjson.dumps(Response("7", None, "stop", Usage(1, 2)))))

    async def extend() -> None:
        store = Store(path)
        try:
            assert store.get(old) == Response("7", None, "stop", Usage(1, 2))
            await _commit(store, 2)
            await _commit(store, 1)  # the same key again: replaced, and read back
            assert store.get(request_key({**BODY, "seed": 2}, 0)) is not None
            assert store.get(old) == Response("42", None, "stop", Usage(1, 2))
        finally:
            store.close()

    asyncio.run(extend())
    reopened = Store(path)
    try:
        assert reopened.get(old) == Response("42", None, "stop", Usage(1, 2))
        assert reopened.keys() == {old, request_key({**BODY, "seed": 2}, 0)}
    finally:
        reopened.close()
