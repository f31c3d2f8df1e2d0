"""Simulated time: real time sped up by a factor, or virtual time that runs as fast as the code can go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

__all__ = ["SimulatedClock"]


class SimulatedClock:
    """True time of the simulation, starting at ``start``.

    With a ``speed`` (e.g. 3600: one simulated hour per real second) simulated time is real time multiplied,
    so a tracker run against a live service unfolds at a watchable pace. With ``speed=None`` time is virtual:
    :meth:`sleep` jumps ahead at once, which replays days of a trip in moments (catching up). Virtual time
    assumes a single task sleeps on the clock, as the tracker runner does.
    """

    def __init__(
        self,
        start: datetime,
        *,
        speed: float | None,
        monotonic: Callable[[], float] = time.monotonic,
        real_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be aware")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._real_sleep = real_sleep
        self._origin = monotonic()
        self._virtual_s = 0.0

    def now(self) -> datetime:
        if self.speed is None:
            return self.start + timedelta(seconds=self._virtual_s)
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass."""
        seconds = max(0.0, seconds)
        if self.speed is None:
            self._virtual_s += seconds
            await self._real_sleep(0)
        else:
            await self._real_sleep(seconds / self.speed)

    async def sleep_until(self, moment: datetime) -> None:
        await self.sleep((moment - self.now()).total_seconds())
