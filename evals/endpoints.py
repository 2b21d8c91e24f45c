"""Several endpoints behind one client: routing, health and the in-flight limits.

``EndpointPool`` holds one ``Target`` per endpoint (replicas of one local server, or a
single hosted API) and answers one question per send: where should this request go?

* **Least outstanding first.** A send goes to the live target with the fewest requests in
  flight that still has room under its own adaptive limit (ties: the least recently
  picked). When none has room, the send waits for a slot.
* **Taken out, probed, put back.** A target that refuses a connection once it has answered
  (a restart), or fails ``take_out_after`` sends in a row (5xx, dropped connections,
  timeouts; a 429 is not a failure) while another is live, is taken out: nothing is
  routed to it, and a probe
  (``GET /models``; any answer below 500 will do) runs every 0.1 s, backing off to 2 s,
  until it answers; then it is put back.
* **Down time is bounded.** While no target is live, sends wait for one, at most
  ``max_downtime`` seconds from the moment the last one went down; then the run stops with
  ``EndpointError`` (everything answered so far is stored; rerunning resumes).

Each target's ``AdaptiveLimiter`` learns that endpoint's concurrency limit from where its
429s begin (see ``AdaptiveLimiter``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx

from evals.errors import EndpointError
from evals.providers import Endpoint

__all__ = ["AdaptiveLimiter", "EndpointPool", "LimiterView", "Slot", "Target"]


class AdaptiveLimiter:
    """An endpoint's in-flight limit, learned from where its 429s begin.

    A 429 to a request that was sent as the ``position``-th in flight says the endpoint
    allows fewer than ``position`` at once, so the limit drops to ``position - 1``: to the
    place the 429s began, not to half. Guards keep it from collapsing when the 429s come
    from a requests-per-second limit, where the position says little:

    * the first 429 of a round opens it and fixes a floor at half the limit then; no 429 of
      the round goes below that floor (a round ends with the next 429 to a request sent
      after it began), so one burst of 429s cuts at most as deep as one halving;
    * a 429 well below a position that succeeded in the same round (under three quarters
      of it) cannot come from a concurrency limit: the limiter switches to pacing (``rate``):
      sends are spaced at the rate the endpoint accepted over the last second (less 2%),
      which grows by one request per second each second until the next 429;
    * a 429 without a position (``on_rate_limited()``) halves, as classic AIMD does.

    Each run of ``limit`` successes adds one back, up to ``maximum``; at the learned ceiling
    (a cut that followed the 429s' position) it takes four times as many, so an endpoint
    with a fixed concurrency limit sees one probing 429 per ``4 * limit`` answers, while a
    limit that was raised, or was underestimated, is still found again.

    ``start`` below ``maximum`` starts slowly: until the first 429, the limit doubles every
    ``ramp_s`` seconds and grows by one per success (doubling per round trip), so a limit is
    met by a few 429s rather than by ``maximum`` at once (``EndpointPool`` drives this).

    Args:
        maximum: the configured concurrency; the limit never exceeds it.
        start: the limit at first (default ``maximum``: no slow start).
    """

    ramp_s = 0.1

    def __init__(self, maximum: int, start: int | None = None) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum if start is None else max(1, min(start, self.maximum))
        self.ramping = self.limit < self.maximum
        self.next_ramp = 0.0
        self.in_flight = 0
        self.epoch = 0  # rounds of 429s so far; a send records the round it was sent in
        self.ceiling: int | None = None
        self.rate: float | None = None  # requests per second, once pacing
        self._next_send = 0.0
        self._floor = 1
        self._ok_high = 0  # the highest position that succeeded in this round
        self._successes = 0
        self._sends: deque[float] = deque()  # send times within the last second
        self._refused: deque[float] = deque()  # ... of those answered 429
        self._waiters: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._waiters is None:
            self._waiters = asyncio.Condition()
        return self._waiters

    async def acquire(self) -> int:
        """Wait for room, take a slot and return its position (in flight, itself included)."""
        if self.in_flight < self.limit:  # fast path: no lock when there is room
            self.in_flight += 1
            return self.in_flight
        cond = self._cond()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            return self.in_flight

    async def release(self) -> None:
        self.in_flight -= 1
        cond = self._waiters
        if cond is not None and cond._waiters:
            async with cond:
                cond.notify(self.limit - self.in_flight)

    def ramp(self, now: float) -> bool:
        """Slow start: double the limit if ``ramp_s`` passed since the last step; return
        whether it grew."""
        if not self.ramping or now < self.next_ramp:
            return False
        self.next_ramp = now + self.ramp_s
        grown = min(self.maximum, 2 * self.limit)
        self.ramping = grown < self.maximum
        if grown == self.limit:
            return False
        self.limit = grown
        return True

    def pace(self, now: float) -> float:
        """Reserve the next send time; return the wait (0 unless pacing)."""
        if self.rate is None:
            return 0.0
        at = max(now, self._next_send)
        self._next_send = at + 1.0 / self.rate
        return at - now

    def sent(self, at: float) -> None:
        """Note a send (the rate accepted over the last second is measured from these)."""
        sends = self._sends
        sends.append(at)
        while sends[0] < at - 2.0:
            sends.popleft()

    def on_success(self, position: int | None = None, epoch: int | None = None) -> bool:
        """Count an answer; return whether the limit grew."""
        if position is not None and epoch == self.epoch:
            self._ok_high = max(self._ok_high, position)
        if self.rate is not None:
            self.rate += 1.0 / self.rate  # one more per second, each second
            return False
        if self.limit >= self.maximum:
            return False
        if self.ramping:
            self.limit += 1
            return True
        self._successes += 1
        need = self.limit if self.ceiling is None or self.limit < self.ceiling else 4 * self.limit
        if self._successes < need:
            return False
        self._successes = 0
        self.limit += 1
        return True

    def on_rate_limited(self, position: int | None = None, epoch: int | None = None,
                        sent_at: float | None = None) -> None:
        """A 429 to a request sent as the ``position``-th in flight, in round ``epoch``, at
        ``sent_at`` (``time.monotonic()``; ``position`` None: unknown, which halves)."""
        self._successes = 0
        self.ramping = False
        if position is None:
            self.epoch += 1
            self.limit = max(1, self.limit // 2)
            self.ceiling = None
            return
        if sent_at is not None:
            self._refused.append(sent_at)
        if self.rate is None and epoch == self.epoch and position <= 0.75 * self._ok_high:
            # Refused below a position that succeeded: a rate limit, not a concurrency one.
            self.limit, self.ceiling = self.maximum, None
            self.rate = float(self.maximum)
        if self.rate is not None:
            if sent_at is not None:
                self.rate = max(1.0, 0.98 * self._accepted(sent_at))
            return
        if epoch is None or epoch >= self.epoch:  # sent after the last round began: a new one
            self.epoch += 1
            self._floor = max(1, self.limit // 2)
            self._ok_high = 0
        learned = max(self._floor, position - 1)
        if learned < self.limit:
            self.limit = learned
            self.ceiling = learned if position - 1 >= self._floor else None

    def _accepted(self, now: float) -> int:
        """Sends of the second before ``now`` that were not answered 429."""
        for times in (self._sends, self._refused):
            while times and times[0] < now - 1.0:
                times.popleft()
        return sum(1 for t in self._sends if t < now) - sum(
            1 for t in self._refused if t < now)


@dataclass(frozen=True, slots=True)
class LimiterView:
    """The pool's limiters summed (what a progress bar shows for several endpoints)."""

    in_flight: int
    limit: int
    maximum: int


@dataclass(slots=True, eq=False)
class Target:
    """One endpoint of the pool, with its own connection pool, limiter and health.

    ``post_headers``: the chat POST's headers, built once (see ``ChatClient._post``).
    """

    endpoint: Endpoint
    url: httpx.URL
    post_headers: list[tuple[bytes, bytes]]
    transport: httpx.AsyncBaseTransport
    limiter: AdaptiveLimiter
    up: bool = True
    answered: int = 0  # HTTP answers of any status
    completed: int = 0  # requests answered in full (200, parsed)
    sent: int = 0
    rate_limited: int = 0
    failures: int = 0  # failed sends in a row (429s apart)
    taken_out: int = 0
    down_s: float = 0.0
    down_since: float | None = None
    picked: int = 0
    prober: asyncio.Task[None] | None = field(default=None, repr=False)

    def report(self) -> dict[str, Any]:
        """What the manifest records about this endpoint (no key)."""
        down = self.down_s + (time.monotonic() - self.down_since if self.down_since else 0.0)
        return {"base_url": self.endpoint.base_url, "answered": self.completed,
                "sent": self.sent, "rate_limited": self.rate_limited,
                "taken_out": self.taken_out, "down_s": round(down, 3),
                "learned_limit": self.limiter.limit,
                "learned_rps": round(self.limiter.rate, 1) if self.limiter.rate else None}


Probe = Callable[[Target], Awaitable[bool]]


class Slot(NamedTuple):
    """A send's place: where it goes, its position there (in flight, itself included), the
    limiter's round and when it was sent (``time.monotonic()``)."""

    target: Target
    position: int
    epoch: int
    sent_at: float


class EndpointPool:
    """Routes sends among ``targets`` (see the module docstring).

    Args:
        targets: at least one.
        probe: answers whether a taken-out target answers again (``ChatClient._probe``).
        max_downtime: seconds sends may wait while no target is live before the run stops.
        take_out_after: failed sends in a row that take a target out.
        probe_delays: the first and the longest pause between two probes of a target.
    """

    def __init__(self, targets: Sequence[Target], probe: Probe, *, max_downtime: float = 300.0,
                 take_out_after: int = 5, probe_delays: tuple[float, float] = (0.1, 2.0)
                 ) -> None:
        if not targets:
            raise ValueError("an endpoint pool needs at least one target")
        self.targets = list(targets)
        self.max_downtime = max_downtime
        self.take_out_after = take_out_after
        self.probe_delays = probe_delays
        self._probe = probe
        self._cond: asyncio.Condition | None = None
        self._picks = 0
        self._all_down_since: float | None = None
        self._closed = False

    # -- routing ---------------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        """Some target has answered an HTTP request."""
        return any(t.answered for t in self.targets)

    def _pick(self) -> Target | None:
        best: Target | None = None
        for t in self.targets:
            lim = t.limiter
            if t.up and lim.in_flight < lim.limit and (
                    best is None or (lim.in_flight, t.picked)
                    < (best.limiter.in_flight, best.picked)):
                best = t
        return best

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> Slot:
        """Wait for a live target with room (and, when it paces, for its next send time)
        and take a slot there.

        Raises:
            EndpointError: no target has been live for ``max_downtime`` seconds.
        """
        target = self._pick()
        if target is None:
            cond = self._condition()
            async with cond:
                while (target := self._pick()) is None:
                    await self._wait(cond)
        lim = target.limiter
        lim.in_flight += 1
        position = lim.in_flight
        self._picks += 1
        target.picked = self._picks
        target.sent += 1
        now = time.monotonic()
        wait = lim.pace(now)
        if wait > 0:
            await asyncio.sleep(wait)
        lim.sent(now + wait)
        return Slot(target, position, lim.epoch, now + wait)

    async def _wait(self, cond: asyncio.Condition) -> None:
        if any(t.up for t in self.targets) or self._all_down_since is None:
            ramping = [t.limiter for t in self.targets if t.up and t.limiter.ramping]
            if not ramping:
                await cond.wait()
                return
            # Slow start: no room yet, but the limit doubles at the next step.
            now = time.monotonic()
            step = min(lim.next_ramp for lim in ramping)
            if step > now:
                try:
                    async with asyncio.timeout(step - now):
                        await cond.wait()
                except TimeoutError:
                    pass
            now = time.monotonic()
            for lim in ramping:
                lim.ramp(now)
            return
        left = self._all_down_since + self.max_downtime - time.monotonic()
        if left > 0:
            try:
                async with asyncio.timeout(left):
                    await cond.wait()
            except TimeoutError:
                pass
            return
        urls = ", ".join(t.endpoint.base_url for t in self.targets)
        raise EndpointError(
            f"No endpoint answered for {self.max_downtime:g} s ({urls}: connections refused "
            "or failing, probed every few seconds). Everything answered so far is stored; "
            "once the server is back, rerun the same command to resume (--max-downtime "
            "SECONDS waits longer)."
        )

    def _wake(self, n: int | None = None) -> None:
        cond = self._cond
        if cond is None or not cond._waiters:
            return
        # Called outside any coroutine holding the lock: take it in a task.
        asyncio.get_running_loop().create_task(self._notify(cond, n))

    @staticmethod
    async def _notify(cond: asyncio.Condition, n: int | None) -> None:
        async with cond:
            if n is None:
                cond.notify_all()
            else:
                cond.notify(n)

    async def release(self, target: Target) -> None:
        target.limiter.in_flight -= 1
        cond = self._cond
        if cond is not None and cond._waiters:
            async with cond:
                cond.notify(1)

    # -- outcomes --------------------------------------------------------------------------

    def answered_by(self, target: Target) -> None:
        """An HTTP answer of any status came back from ``target``."""
        target.answered += 1

    def succeeded(self, slot: Slot) -> None:
        target = slot.target
        target.completed += 1
        target.failures = 0
        if target.limiter.on_success(slot.position, slot.epoch):
            self._wake(1)

    def rate_limited(self, slot: Slot) -> None:
        slot.target.rate_limited += 1
        slot.target.limiter.on_rate_limited(slot.position, slot.epoch, slot.sent_at)

    def failed(self, target: Target, *, refused: bool, keep_last: bool = False) -> None:
        """A send to ``target`` failed. ``refused``: no connection could be opened (taken
        out at once); else after ``take_out_after`` in a row. ``keep_last``: never take out
        the last live target (while nothing has answered, the client reports an unreachable
        endpoint instead of waiting for it)."""
        target.failures += 1
        if not target.up or (not refused and target.failures < self.take_out_after):
            return
        # Failing answers (5xx, drops, timeouts) move the load to the other endpoints; the
        # last live one stays in and its requests back off and retry: a probe cannot tell
        # more than a retry would. A refused connection takes even the last one out.
        if (keep_last or not refused) and sum(t.up for t in self.targets) <= 1:
            return
        self._take_out(target)

    def _take_out(self, target: Target) -> None:
        target.up = False
        target.taken_out += 1
        now = time.monotonic()
        target.down_since = now
        if not any(t.up for t in self.targets) and self._all_down_since is None:
            self._all_down_since = now
        if not self._closed:
            target.prober = asyncio.get_running_loop().create_task(self._probe_until_up(target))
        self._wake()  # waiters re-check: the bound on down time now applies

    def _put_back(self, target: Target) -> None:
        target.up = True
        target.failures = 0
        if target.down_since is not None:
            target.down_s += time.monotonic() - target.down_since
            target.down_since = None
        target.prober = None
        self._all_down_since = None
        self._wake()

    async def _probe_until_up(self, target: Target) -> None:
        delay, longest = self.probe_delays
        while True:
            await asyncio.sleep(delay)
            if await self._probe(target):
                self._put_back(target)
                return
            delay = min(longest, delay * 1.5)

    # -- reporting and closing -------------------------------------------------------------

    def view(self) -> LimiterView:
        lims = [t.limiter for t in self.targets]
        return LimiterView(sum(x.in_flight for x in lims), sum(x.limit for x in lims),
                           sum(x.maximum for x in lims))

    def report(self) -> list[dict[str, Any]]:
        return [t.report() for t in self.targets]

    async def aclose(self) -> None:
        self._closed = True
        probers = [t.prober for t in self.targets if t.prober is not None]
        for task in probers:
            task.cancel()
        # A probe's own failure means only "not back yet": nothing to report when closing.
        await asyncio.gather(*probers, return_exceptions=True)
        for t in self.targets:
            t.prober = None
