from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracker_sim.clock import AcceleratedClock, SimulatedClock

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


async def test_virtual_time_jumps_ahead_without_waiting() -> None:
    real_waits: list[float] = []

    async def real_sleep(seconds: float) -> None:
        real_waits.append(seconds)

    clock = SimulatedClock(START, speed=None, real_sleep=real_sleep)
    await clock.sleep(3 * 24 * 3600)
    await clock.sleep_until(START + timedelta(days=3, hours=1))
    assert clock.now() == START + timedelta(days=3, hours=1)
    assert real_waits == [0, 0]


async def test_accelerated_time_is_real_time_times_the_speed() -> None:
    real_now = [100.0]
    real_waits: list[float] = []

    async def real_sleep(seconds: float) -> None:
        real_waits.append(seconds)
        real_now[0] += seconds

    clock = SimulatedClock(START, speed=3600.0, monotonic=lambda: real_now[0], real_sleep=real_sleep)
    await clock.sleep(2 * 3600)
    assert real_waits == [2.0]
    assert clock.now() == START + timedelta(hours=2)
    await clock.sleep_until(START + timedelta(hours=1))  # already past: no wait
    assert real_waits == [2.0, 0.0]


def test_a_clock_needs_an_aware_start_and_a_positive_speed() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimulatedClock(datetime(2026, 3, 2), speed=None)  # noqa: DTZ001
    with pytest.raises(ValueError, match="positive"):
        SimulatedClock(START, speed=0)


async def test_a_trip_in_the_worlds_past_catches_up_at_once_then_lives_on_the_world_clock() -> None:
    real_now = [0.0]
    real_waits: list[float] = []

    async def real_sleep(seconds: float) -> None:
        real_waits.append(seconds)
        real_now[0] += seconds

    world = AcceleratedClock(START + timedelta(hours=5), speed=60.0, monotonic=lambda: real_now[0])
    clock = SimulatedClock(START, speed=60.0, world=world.now, real_sleep=real_sleep)
    assert not clock.caught_up
    await clock.sleep(4 * 3600)  # still in the world's past: no real wait
    assert clock.now() == START + timedelta(hours=4)
    assert real_waits == [0]
    await clock.sleep(2 * 3600)  # one hour of it lies in the world's future: 60 real seconds at 60x
    assert clock.caught_up
    assert real_waits == [0, 60.0]
    assert clock.now() == START + timedelta(hours=6) == world.now()
    await clock.sleep(600)
    assert real_waits[-1] == 10.0
    assert clock.now() == world.now() == START + timedelta(hours=6, minutes=10)


def test_a_world_clock_needs_a_speed_and_runs_that_much_faster_than_real_time() -> None:
    real_now = [10.0]
    world = AcceleratedClock(START, speed=60.0, monotonic=lambda: real_now[0])
    real_now[0] += 2.5
    assert world.now() == START + timedelta(minutes=2.5)
    with pytest.raises(ValueError, match="speed"):
        SimulatedClock(START, speed=None, world=world.now)
    with pytest.raises(ValueError, match="positive"):
        AcceleratedClock(START, speed=-1.0)
