"""Use cases around trackers: registration, look-up, sync overview."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.parties import Tracker
from coldchain.domain.sync import SyncState
from coldchain.services.access import require
from coldchain.services.errors import Forbidden, Invalid, NotFound
from coldchain.storage import Store

__all__ = ["TrackerCache", "UnknownOrganisation", "find_tracker", "register_tracker", "sync_overview", "tracker_status"]


class UnknownOrganisation(Invalid):
    """The organisation named does not exist."""


async def register_tracker(
    store: Store, principal: Principal, *, serial: str, model: str | None, organisation_id: int | None, now: datetime
) -> tuple[Tracker, str]:
    """Create a tracker of the caller's organisation and its secret; the secret is returned here once and never
    shown again. The operator may register a tracker of any organisation, or of none yet (stock).

    Raises ``AlreadyExists`` when the serial is taken.
    """
    require(principal, "setup")
    if principal.organisation_id is not None:
        if organisation_id not in (None, principal.organisation_id):
            raise Forbidden("a token registers trackers of its own organisation only")
        organisation_id = principal.organisation_id
    actor = principal.actor
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


async def sync_overview(store: Store, principal: Principal) -> list[tuple[str, SyncState]]:
    """The serial of every tracker of the caller's organisation (all for the operator) with what the service
    holds of its log."""
    async with store.transaction() as tx:
        return await tx.sync_states(principal.organisation_id)


async def tracker_status(store: Store, principal: Principal, serial: str) -> SyncState:
    """What the service holds of one tracker's log; :class:`NotFound` for a serial the caller does not own."""
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        if tracker is None or (principal.organisation_id not in (None, tracker.organisation_id)):
            raise NotFound(f"no tracker {serial!r}")
        return await tx.sync_state(tracker.id)


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
