"""Use cases around trackers: registration, look-up, sync overview."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime

import msgspec

from coldchain.domain.parties import Tracker
from coldchain.domain.sync import SyncState
from coldchain.storage import Store

__all__ = ["TrackerCache", "UnknownOrganisation", "find_tracker", "register_tracker", "sync_overview", "tracker_status"]


class UnknownOrganisation(LookupError):
    """The organisation named does not exist."""


async def register_tracker(
    store: Store, *, serial: str, model: str | None, organisation_id: int | None, actor: str, now: datetime
) -> tuple[Tracker, str]:
    """Create a tracker and its secret; the secret is returned here once and never shown again.

    Raises ``AlreadyExists`` when the serial is taken.
    """
    secret = secrets.token_urlsafe(32)
    async with store.transaction() as tx:
        if organisation_id is not None and await tx.get_organisation(organisation_id) is None:
            raise UnknownOrganisation(f"no organisation with id {organisation_id}")
        tracker = await tx.create_tracker(
            serial=serial, secret=secret, organisation_id=organisation_id, model=model, now=now
        )
        detail = msgspec.json.encode({"serial": serial, "model": model, "organisation_id": organisation_id})
        await tx.append_audit(
            actor=actor, action="tracker.registered", subject=f"tracker:{tracker.id}", detail=detail.decode(), now=now
        )
    return tracker, secret


async def find_tracker(store: Store, serial: str) -> Tracker | None:
    async with store.transaction() as tx:
        return await tx.get_tracker(serial)


async def sync_overview(store: Store) -> list[tuple[str, SyncState]]:
    """Every tracker's serial with what the service holds of its log."""
    async with store.transaction() as tx:
        return await tx.sync_states()


async def tracker_status(store: Store, serial: str) -> SyncState | None:
    """What the service holds of one tracker's log, or ``None`` for an unknown serial."""
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        return None if tracker is None else await tx.sync_state(tracker.id)


class TrackerCache:
    """Known trackers by serial, each kept for ``ttl_s`` seconds, so authenticating a sync batch usually costs
    no query. Unknown serials are never cached (a flood of made-up serials cannot fill it). A tracker's secret
    changing (re-registration after a reset) takes effect within ``ttl_s``.
    """

    def __init__(self, ttl_s: float, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, Tracker]] = {}

    async def find(self, store: Store, serial: str) -> Tracker | None:
        now = self._clock()
        hit = self._entries.get(serial)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        tracker = await find_tracker(store, serial)
        if tracker is None:
            self._entries.pop(serial, None)
            return None
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[serial] = (now, tracker)
        return tracker
