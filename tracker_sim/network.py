"""The tracker's link to the service: coverage windows, latency, narrow links and answers that never arrive.

:class:`Connectivity` is the seeded model (is there coverage at this instant, how long does a round trip take,
is this answer lost). :class:`SimulatedNetworkTransport` puts the model between an ``httpx.AsyncClient`` and a
real transport, so the sync client meets the same exceptions it would meet in the field:

- no coverage: ``httpx.ConnectError`` before anything is sent;
- a lost answer: the request reaches the service and is processed, then ``httpx.ReadTimeout``. This is the
  case that makes idempotent ingestion necessary: the tracker cannot know the batch was stored.

Offline windows are given in hours after the start of the trip, so an outage of days is just a long window.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Annotated

import httpx
import msgspec
from msgspec import Meta

__all__ = ["Connectivity", "NetworkConditions", "OfflineWindow", "SimulatedNetworkTransport"]

Probability = Annotated[float, Meta(ge=0, le=1)]
NonNegative = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]


class OfflineWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """No coverage from ``start_h`` hours after the trip's start, for ``duration_h`` hours."""

    start_h: NonNegative
    duration_h: Positive


class NetworkConditions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How good the tracker's link is during a trip (part of a scenario)."""

    offline: tuple[OfflineWindow, ...] = ()
    lost_response_rate: Probability = 0.0
    """Share of requests whose answer never arrives although the service processed them."""
    latency_ms: NonNegative = 150.0
    """Typical round-trip time."""
    latency_jitter_ms: NonNegative = 50.0
    """Mean of the exponentially distributed extra delay on top of ``latency_ms``."""
    bandwidth_kbps: Positive | None = None
    """Link speed in both directions; None for a link fast enough not to matter."""


def _merge(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class Connectivity:
    """Seeded model of one tracker's link, evaluated at instants of simulated (true) time."""

    def __init__(
        self,
        conditions: NetworkConditions,
        *,
        start: datetime,
        seed: int | str,
        extra_offline: Iterable[tuple[datetime, datetime]] = (),
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be aware")
        self.conditions = conditions
        scheduled = (
            (start + timedelta(hours=w.start_h), start + timedelta(hours=w.start_h + w.duration_h))
            for w in conditions.offline
        )
        self.offline_windows = _merge([*scheduled, *extra_offline])
        self._starts = [window[0] for window in self.offline_windows]
        self._rng = random.Random(f"{seed}:network")

    def _window_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        i = bisect.bisect_right(self._starts, at) - 1
        if i >= 0 and at < self.offline_windows[i][1]:
            return self.offline_windows[i]
        return None

    def is_online(self, at: datetime) -> bool:
        return self._window_at(at) is None

    def online_again_at(self, at: datetime) -> datetime:
        """When coverage returns (``at`` itself when online)."""
        window = self._window_at(at)
        return at if window is None else window[1]

    def round_trip_s(self) -> float:
        """One round trip's latency, in seconds (drawn)."""
        jitter_ms = self.conditions.latency_jitter_ms
        extra_ms = self._rng.expovariate(1.0 / jitter_ms) if jitter_ms > 0 else 0.0
        return (self.conditions.latency_ms + extra_ms) / 1000.0

    def transfer_s(self, size_bytes: int) -> float:
        """Time to push ``size_bytes`` through the link."""
        kbps = self.conditions.bandwidth_kbps
        return 0.0 if kbps is None else size_bytes * 8 / (kbps * 1000.0)

    def response_lost(self) -> bool:
        """Whether this request's answer is lost (drawn)."""
        return self._rng.random() < self.conditions.lost_response_rate


class SimulatedNetworkTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends through ``inner`` as the connectivity model allows.

    ``clock`` gives simulated true time; ``sleep`` waits simulated seconds (so latency costs simulated time,
    not real time, when the simulation is accelerated).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        connectivity: Connectivity,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._inner = inner
        self._connectivity = connectivity
        self._clock = clock
        self._sleep = sleep
        self.lost_responses = 0
        self.real_failures = 0
        """Requests the real service behind the model failed: no connection, no answer, 5xx or 429."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        model = self._connectivity
        if not model.is_online(self._clock()):
            raise httpx.ConnectError("no network coverage (simulated)", request=request)
        half_trip_s = model.round_trip_s() / 2
        lost = model.response_lost()
        await self._sleep(half_trip_s + model.transfer_s(len(request.content)))
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self.real_failures += 1
            raise
        if response.status_code >= 500 or response.status_code == 429:
            self.real_failures += 1
        # Read the raw bytes off the transport's stream (still compressed if the service compressed them),
        # since some transports (MockTransport) have already read the response through its own reader.
        stream = response.stream
        try:
            if not isinstance(stream, httpx.AsyncByteStream):
                raise TypeError(f"{type(self._inner).__name__} is not an async transport")
            raw = b"".join([chunk async for chunk in stream])
        finally:
            await response.aclose()
        if lost:
            self.lost_responses += 1
            raise httpx.ReadTimeout("the answer was lost on the way back (simulated)", request=request)
        await self._sleep(half_trip_s + model.transfer_s(len(raw)))
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            content=raw,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
