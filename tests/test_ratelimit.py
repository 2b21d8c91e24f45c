"""Rate limits as providers enforce them: the simulator's ``limit_concurrent`` and
``limit_rps``, and the client learning the limit from where the 429s begin (real HTTP on
loopback; ``AdaptiveLimiter`` alone for the arithmetic)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from evals.client import ChatClient, RetryPolicy
from evals.endpoints import AdaptiveLimiter
from evals.providers import Endpoint
from evals.simulator import AnswerBook, SimConfig, SimulatorThread

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1}


@contextmanager
def _sim(**config: Any) -> Iterator[SimulatorThread]:
    with SimulatorThread(SimConfig(**config), AnswerBook()) as sim:
        yield sim


async def _burst(url: str, count: int) -> list[tuple[int, dict[str, str]]]:
    async with aiohttp.ClientSession() as session:
        async def one() -> tuple[int, dict[str, str]]:
            async with session.post(url + "/chat/completions", data=orjson.dumps(BODY),
                                    headers={"content-type": "application/json"}) as r:
                await r.read()
                return r.status, dict(r.headers)

        return await asyncio.gather(*(one() for _ in range(count)))


def test_the_simulator_refuses_requests_beyond_limit_concurrent_with_retry_after() -> None:
    with _sim(latency_ms=200, limit_concurrent=5, retry_after_s=0.5) as sim:
        answers = asyncio.run(_burst(sim.base_url, 12))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 5 + [429] * 7
    refused = [h for status, h in answers if status == 429]
    assert all(h["Retry-After"] == "0.5" and h["retry-after-ms"] == "500" for h in refused)


def test_the_simulator_refuses_requests_beyond_limit_rps() -> None:
    with _sim(limit_rps=10) as sim:
        answers = asyncio.run(_burst(sim.base_url, 15))
    assert sorted(status for status, _ in answers) == [200] * 10 + [429] * 5
    waits = [float(h["retry-after-ms"]) for status, h in answers if status == 429]
    assert all(0 < w <= 1000 for w in waits)  # until the oldest of the second expires


def test_the_client_settles_at_the_concurrency_limit_not_below_it() -> None:
    """64 allowed in flight against an endpoint that allows 8: the limit is learned where
    the 429s began (8), not halved to 4 and crept back."""
    async def go() -> ChatClient:
        client = ChatClient(Endpoint("simulator", sim.base_url, None), concurrency=64,
                            retry=RetryPolicy(max_retries=30))
        todo = iter(range(240))

        async def worker() -> None:
            for i in todo:
                await client.complete({**BODY, "seed": i})

        async with client:
            await asyncio.gather(*(worker() for _ in range(64)))
        return client

    with _sim(latency_ms=30, limit_concurrent=8, retry_after_s=0.05) as sim:
        client = asyncio.run(go())
    assert client.limiter.limit in (8, 9)  # 9: probing one above, every 4 x 8 answers
    assert client.stats.rate_limited <= 0.2 * 240
    (report,) = client.endpoint_report()
    assert report["answered"] == 240 and report["learned_rps"] is None


@pytest.mark.parametrize(("positions", "expected"), [
    pytest.param([33], 32, id="one 429 at the 33rd in flight: 32"),
    pytest.param([50, 40, 33, 60], 32, id="a burst: the lowest position of the round"),
    pytest.param([2], 32, id="low position: no deeper than one halving"),
    pytest.param([20, 10], 32, id="the same round: the floor holds"),
])
def test_the_limit_drops_to_where_the_429s_began(positions: list[int], expected: int) -> None:
    limiter = AdaptiveLimiter(64)
    for position in positions:
        limiter.on_rate_limited(position, epoch=0)  # all sent before the first cut
    assert limiter.limit == expected


def test_growth_above_a_learned_ceiling_is_four_times_slower() -> None:
    limiter = AdaptiveLimiter(64)
    limiter.on_rate_limited(33, epoch=0)
    assert (limiter.limit, limiter.ceiling) == (32, 32)
    grown = [limiter.on_success() for _ in range(4 * 32)]
    assert grown.count(True) == 1 and grown[-1] and limiter.limit == 33


def test_a_429_below_a_position_that_succeeded_switches_to_pacing() -> None:
    limiter = AdaptiveLimiter(64)
    for i in range(50):
        limiter.sent(10.0 + i * 0.01)
        limiter.on_success(position=40, epoch=0)
    limiter.on_rate_limited(10, epoch=0, sent_at=10.5)  # 10 < 0.75 x 40: not concurrency
    assert limiter.rate is not None and limiter.limit == 64
    assert limiter.rate == pytest.approx(0.98 * 50)  # accepted over the second before
    assert limiter.pace(11.0) == 0.0 and limiter.pace(11.0) == pytest.approx(1 / limiter.rate)


def test_slow_start_doubles_until_the_first_429() -> None:
    limiter = AdaptiveLimiter(64, start=8)
    steps = []
    for i in range(5):
        limiter.ramp(i * 0.1)
        steps.append(limiter.limit)
    assert steps == [16, 32, 64, 64, 64] and not limiter.ramping
    limiter = AdaptiveLimiter(64, start=8)
    limiter.on_rate_limited(9, epoch=0)
    assert not limiter.ramping and limiter.ramp(1.0) is False
