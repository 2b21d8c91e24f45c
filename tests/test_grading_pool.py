"""The worker pool: a hard wall limit per call, hung or dead workers replaced, asyncio use.

The functions the workers run are defined at module level here so they pickle by name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from evals.errors import EvalsError
from evals.grading.math_compare import grade_math_answer
from evals.grading.pool import GradingPool, GradingTimeout, PoolClosed, WorkerDied

LIMIT = 1.5  # seconds; each hung call must end within LIMIT + 1


def square(x: int) -> int:
    return x * x


def spin(_: object = None) -> None:
    while True:
        pass


def pid() -> int:
    return os.getpid()


def die(code: int) -> None:
    os._exit(code)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def fail(message: str) -> None:
    raise ValueError(message)


def nap(seconds: float) -> tuple[int, float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return os.getpid(), start, time.monotonic()


def sympy_factorial_of_ten_million() -> object:
    import sympy

    return sympy.factorial(sympy.Integer(10) ** 7)  # minutes of work: the limit must stop it


@pytest.fixture(scope="module")
def pool() -> Iterator[GradingPool]:
    with GradingPool(2, timeout_s=LIMIT,
                     preimport=("sympy", "latex2sympy2_extended", "evals.grading.math_compare")) as p:
        p.start()
        yield p


def _assert_still_usable(pool: GradingPool) -> None:
    verdict = pool.call_sync(grade_math_answer, "\\frac{1}{2}", "so $\\boxed{0.5}$")
    assert verdict["correct"] is True
    assert pool.call_sync(square, 12) == 144


def test_call_sync_returns_the_result(pool: GradingPool) -> None:
    assert pool.call_sync(square, 7) == 49
    assert pool.call_sync(grade_math_answer, "(2,\\infty)", "\\boxed{x>2}")["correct"] is True


def test_errors_raised_by_the_function_come_back_unchanged(pool: GradingPool) -> None:
    with pytest.raises(ValueError, match="bad input"):
        pool.call_sync(fail, "bad input")
    _assert_still_usable(pool)


def test_a_hung_call_times_out_and_its_worker_is_replaced(pool: GradingPool) -> None:
    before = set(pool.worker_pids())
    start = time.monotonic()
    with pytest.raises(GradingTimeout) as caught:
        pool.call_sync(spin)
    elapsed = time.monotonic() - start
    assert LIMIT <= elapsed < LIMIT + 1
    assert isinstance(caught.value, EvalsError) and isinstance(caught.value, TimeoutError)
    assert caught.value.timeout_s == LIMIT
    assert "was killed" in str(caught.value)
    assert len(pool.worker_pids()) == len(before) - 1  # the hung one is gone ...
    _assert_still_usable(pool)  # ... and a fresh one takes its place
    assert len(pool.worker_pids()) <= 2


@pytest.mark.parametrize("response", [
    "\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}",
    "\\boxed{" + "{" * 1_000_000 + "5" + "}" * 1_000_000 + "}",
    "{" * 1_000_000,
    "\\boxed{10^{10^{10}}!}",
    "\\boxed{(10^{100})!}",
    "\\boxed{\\frac{2^{2^{2^{2^{2}}}}}{3^{3^{3^{3}}}}}",
    "\\boxed{\\sqrt[10^{10}]{2}^{10^{10}}}",
])
def test_pathological_answers_end_within_the_limit(pool: GradingPool, response: str) -> None:
    start = time.monotonic()
    try:
        verdict = pool.call_sync(grade_math_answer, "2", response)
    except GradingTimeout:
        pass
    else:
        assert verdict["correct"] is False
    assert time.monotonic() - start < LIMIT + 1
    _assert_still_usable(pool)


def test_sympy_that_would_run_for_minutes_is_stopped(pool: GradingPool) -> None:
    start = time.monotonic()
    with pytest.raises(GradingTimeout):
        pool.call_sync(sympy_factorial_of_ten_million)
    assert time.monotonic() - start < LIMIT + 1
    _assert_still_usable(pool)


def test_a_worker_killed_from_outside_is_replaced(pool: GradingPool) -> None:
    _assert_still_usable(pool)
    victims = pool.worker_pids()
    for victim in victims:
        os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    pids = {pool.call_sync(pid) for _ in range(6)}
    assert pids.isdisjoint(victims)
    _assert_still_usable(pool)


@pytest.mark.parametrize(("kill", "args", "exit_text"), [
    (die, (3,), "exit code 3"),
    (segfault, (), "killed by SIGSEGV"),
])
def test_a_worker_dying_during_a_call_is_a_clear_error(pool: GradingPool, kill: object,
                                                       args: tuple[object, ...],
                                                       exit_text: str) -> None:
    with pytest.raises(WorkerDied, match=exit_text):
        pool.call_sync(kill, *args)  # type: ignore[arg-type]
    _assert_still_usable(pool)


def test_many_concurrent_async_calls_never_exceed_the_process_count(pool: GradingPool
                                                                     ) -> None:
    async def main() -> list[tuple[int, float, float]]:
        return await asyncio.gather(*(pool.call(nap, 0.02) for _ in range(40)))

    spans = asyncio.run(main())
    assert len(spans) == 40
    events = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak <= pool.processes
    assert len({p for p, _, _ in spans}) <= pool.processes


def test_async_timeouts_do_not_disturb_other_calls(pool: GradingPool) -> None:
    async def main() -> list[object]:
        calls = [pool.call(spin) if i == 3 else pool.call(square, i) for i in range(12)]
        calls.append(pool.call(grade_math_answer, "1 \\pm \\sqrt{19}",
                               "so $x = \\boxed{1 - \\sqrt{19}, 1 + \\sqrt{19}}$"))
        return await asyncio.gather(*calls, return_exceptions=True)

    start = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - start < LIMIT + 3
    assert isinstance(results[3], GradingTimeout)
    assert [r for i, r in enumerate(results[:12]) if i != 3] == [
        i * i for i in range(12) if i != 3]
    last = results[12]
    assert isinstance(last, dict) and last["correct"] is True
    _assert_still_usable(pool)


def test_a_cancelled_async_call_frees_its_worker(pool: GradingPool) -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.call(spin), 0.2)
        assert await pool.call(square, 5) == 25

    asyncio.run(main())
    _assert_still_usable(pool)


def test_a_worker_handed_over_as_its_waiter_is_cancelled_is_not_lost() -> None:
    single = GradingPool(1, timeout_s=LIMIT, preimport=())

    async def main() -> None:
        held = await single._acquire_async()  # the only worker
        waiting = asyncio.create_task(single._acquire_async())
        await asyncio.sleep(0)  # it waits for a worker
        single._release(held)  # handed to the waiter on the loop's next turn...
        await asyncio.sleep(0)
        waiting.cancel()  # ...and cancelled before it could take it
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await asyncio.wait_for(single.call(square, 3), LIMIT + 5) == 9

    try:
        asyncio.run(main())
    finally:
        single.close()


def test_map_sync_keeps_order_and_failures_in_place(pool: GradingPool) -> None:
    results = pool.map_sync(square, [(1,), (2,), (3,), (4,)])
    assert results == [1, 4, 9, 16]
    mixed = pool.map_sync(fail, [("a",)])
    assert isinstance(mixed[0], ValueError)


def test_close_stops_workers_and_refuses_calls() -> None:
    small = GradingPool(1, timeout_s=LIMIT, preimport=())
    assert small.call_sync(square, 3) == 9
    (worker,) = small.worker_pids()
    small.close()
    with pytest.raises(PoolClosed):
        small.call_sync(square, 3)
    with pytest.raises(OSError):
        os.kill(worker, 0)  # the worker process is gone


def test_invalid_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GradingPool(0)
    with pytest.raises(ValueError, match="positive"):
        GradingPool(1, timeout_s=0)


class _RacyPool(GradingPool):
    """Its next worker dies between being taken (checked alive) and being sent the call:
    the race, made deterministic."""

    die_next = False

    def _acquire_sync(self):  # type: ignore[no-untyped-def]
        worker = super()._acquire_sync()
        if self.die_next:
            self.die_next = False
            os.kill(worker.pid, signal.SIGKILL)
            worker.process.join(5)
        return worker


def test_a_worker_that_dies_just_before_the_send_is_replaced_not_returned() -> None:
    """The call fails with WorkerDied, and the dead worker is replaced, never given back:
    the pool keeps exactly its size and serves the next calls."""
    small = _RacyPool(1, timeout_s=LIMIT, preimport=())
    try:
        assert small.call_sync(pow, 2, 5) == 32
        small.die_next = True
        with pytest.raises(WorkerDied, match="gone before the call"):
            small.call_sync(pow, 2, 5)
        assert [small.call_sync(pow, 3, k) for k in (1, 2, 3)] == [3, 9, 27]
        assert len(small.worker_pids()) == 1
        with small._lock:  # the slot count matches the workers: the pool cannot outgrow 1
            assert small._count == len(small._idle) + len(small._busy) == 1
    finally:
        small.close()
