"""A service process's life: serving, then draining on SIGTERM, then stopped.

A graceful stop of ``coldchain serve`` goes in three steps, within ``COLDCHAIN_STOP_TIMEOUT_S``:

1. **Draining** (``COLDCHAIN_DRAIN_S``, 0 by default): the process still listens, ``/health/ready`` answers 503
   and new sync batches get 503 with ``Retry-After`` (and ``Connection: close``), so a load balancer takes the
   process out of rotation and trackers send elsewhere or later; batches already in flight go on.
2. **Closing**: the ASGI server (uvicorn) stops listening, closes idle connections and waits for the requests still
   running, for the rest of the stop timeout; what still runs then is cancelled, and its transaction rolls back,
   so a batch is stored whole or not at all and its tracker sends it again.
3. **Stopping**: the app's lifespan ends: the background jobs stop (ticks under way get a short grace), the store
   closes.

The first SIGTERM or SIGINT starts step 1 and hands over to the server at its end; a second SIGINT hands over at
once (a second SIGTERM, which a process manager may send to the whole group, changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

__all__ = ["Lifecycle"]

log = logging.getLogger("coldchain.http")

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Lifecycle:
    """Whether this process is draining; the routes read it, the signal handlers set it."""

    def __init__(self) -> None:
        self.draining = False

    @asynccontextmanager
    async def draining_on_signals(self, drain_s: float) -> AsyncIterator[None]:
        """While open, the first SIGTERM or SIGINT starts draining and passes the signal on to the handler that was
        there before (the ASGI server's, which then stops listening) ``drain_s`` seconds later. Must be entered
        on the main thread; the earlier handlers come back on the way out."""
        loop = asyncio.get_running_loop()
        previous: dict[int, _Handler] = {sig: signal.getsignal(sig) for sig in _SIGNALS}

        def hand_over(sig: int, frame: FrameType | None) -> None:
            handler = previous[sig]
            if callable(handler):
                handler(sig, frame)
            elif handler == signal.SIG_DFL:
                raise SystemExit(128 + sig)

        def on_signal(sig: int, frame: FrameType | None) -> None:
            if not self.draining:
                self.draining = True
                log.warning("%s: draining for %g s, then stopping", signal.Signals(sig).name, drain_s)
                # A signal handler may interrupt the loop anywhere: schedule through the thread-safe door.
                loop.call_soon_threadsafe(loop.call_later, drain_s, hand_over, sig, None)
            elif sig == signal.SIGINT:
                hand_over(sig, frame)

        for sig in _SIGNALS:
            signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
