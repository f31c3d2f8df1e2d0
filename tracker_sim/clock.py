"""Simulated time: real time sped up by a factor, virtual time that runs as fast as the code can go, or a trip
that catches up virtually with a shared world clock and then lives on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

__all__ = ["AcceleratedClock", "SimulatedClock"]


class AcceleratedClock:
    """A world clock that reads ``start`` when created and then runs ``speed`` times faster than real time.

    Several trackers and a service can share one (the demo does), so that every party agrees what time it is
    while a day passes in minutes.
    """

    def __init__(self, start: datetime, *, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be aware")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)


class SimulatedClock:
    """True time of the simulation, starting at ``start``.

    With a ``speed`` (e.g. 3600: one simulated hour per real second) simulated time is real time multiplied,
    so a tracker run against a live service unfolds at a watchable pace. With ``speed=None`` time is virtual:
    :meth:`sleep` jumps ahead at once, which replays days of a trip in moments (catching up). Virtual time
    assumes a single task sleeps on the clock, as the tracker runner does.

    With a ``world`` clock (and its ``speed``), a ``start`` in the world's past is caught up virtually: sleeps
    jump ahead at once until the simulation reaches the world's now (:attr:`caught_up`), and from then on the
    simulation reads the world clock and sleeps ``seconds / speed`` real seconds.
    """

    def __init__(
        self,
        start: datetime,
        *,
        speed: float | None,
        world: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        real_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be aware")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        if world is not None and speed is None:
            raise ValueError("a world clock needs the speed it runs at")
        if world is None and speed is not None:
            world = AcceleratedClock(start, speed=speed, monotonic=monotonic).now
        self.start = start
        self.speed = speed
        self._world = world
        self._real_sleep = real_sleep
        self._position = start
        self._caught_up = world is not None and start >= world()

    @property
    def caught_up(self) -> bool:
        """Whether the simulation runs on real (accelerated) time; always false for virtual time."""
        return self._caught_up

    def now(self) -> datetime:
        if self._caught_up:
            assert self._world is not None
            return self._world()
        return self._position

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass."""
        seconds = max(0.0, seconds)
        if not self._caught_up:
            target = self._position + timedelta(seconds=seconds)
            if self._world is None or target <= self._world():
                self._position = target
                await self._real_sleep(0)
                return
            seconds = (target - self._world()).total_seconds()
            self._caught_up = True
        assert self.speed is not None
        await self._real_sleep(seconds / self.speed)

    async def sleep_until(self, moment: datetime) -> None:
        await self.sleep((moment - self.now()).total_seconds())
