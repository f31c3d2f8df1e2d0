"""Failed authentication, counted per client address: past a bound, the address is told to come back later.

Tracker keys, OsmAnd device ids and API tokens are long random strings, so guessing one is hopeless; the bound
keeps probing slow and cheap to answer anyway, and makes it visible. Only a credential that was presented and
did not match counts (an unknown tracker, a signature that does not match, an unknown OsmAnd device id, an
unknown or revoked API token), not a request that carried none. The count lives in each service process: with
several processes, an address gets up to the bound in each.

The client address is the connection's peer, or what the ASGI server says it is: behind a reverse proxy, let the
server read the forwarded address (uvicorn ``--proxy-headers --forwarded-allow-ips``), or every client counts as
the proxy.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from litestar import Request

from coldchain.http.errors import ApiError

__all__ = ["AuthFailures", "client_address"]


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client is not None else "unknown"


class AuthFailures:
    """At most ``limit`` failed authentications per address within ``window_s`` seconds (a sliding window)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after_s(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or ``None`` when it may now."""
        now = self._clock()
        failures = self._recent(address, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - now))

    def check(self, address: str) -> None:
        """429 with ``Retry-After`` when ``address`` has failed too often lately."""
        wait_s = self.retry_after_s(address)
        if wait_s is not None:
            raise ApiError(
                429,
                "too_many_requests",
                f"too many failed authentications from this address; retry after {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )

    def record(self, address: str) -> None:
        now = self._clock()
        failures = self._recent(address, now)
        if failures is None:
            if len(self._failures) >= self._max_addresses:
                self._failures.clear()  # a flood of addresses forgets them all rather than growing without bound
            failures = self._failures[address] = deque(maxlen=self.limit)
        failures.append(now)
