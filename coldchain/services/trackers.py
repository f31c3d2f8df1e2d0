"""Use cases around trackers: registration, look-up, sync overview."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import date, datetime

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.parties import Tracker, TrackerProtocol
from coldchain.domain.sync import SyncConflict, SyncState
from coldchain.services.access import require
from coldchain.services.errors import Forbidden, Invalid, NotFound
from coldchain.storage import Store

__all__ = [
    "TrackerCache",
    "TrackerView",
    "UnknownOrganisation",
    "find_osmand_tracker",
    "find_tracker",
    "record_calibration",
    "register_tracker",
    "sync_overview",
    "tracker_status",
]

MAX_CONFLICTS_SHOWN = 100


class UnknownOrganisation(Invalid):
    """The organisation named does not exist."""


class TrackerView(msgspec.Struct, frozen=True, kw_only=True):
    """One tracker as its organisation sees it: what the service holds of its log, and its latest conflicts."""

    tracker: Tracker
    state: SyncState
    conflicts: list[SyncConflict]


async def register_tracker(
    store: Store,
    principal: Principal,
    *,
    serial: str,
    model: str | None,
    organisation_id: int | None,
    now: datetime,
    protocol: TrackerProtocol = "hmac",
    calibration_due_on: date | None = None,
) -> tuple[Tracker, str]:
    """Create a tracker of the caller's organisation speaking ``protocol`` (fixed from now on) and its secret; the
    secret is returned here once and never shown again. The operator may register a tracker of any organisation,
    or of none yet (stock).

    An OsmAnd tracker also gets a generated device id (``tracker.device_id``): the protocol carries no signature,
    so an unguessable id is all that tells its positions from anyone else's. Its secret signs nothing.

    Raises ``AlreadyExists`` when the serial is taken.
    """
    require(principal, "setup")
    if principal.organisation_id is not None:
        if organisation_id not in (None, principal.organisation_id):
            raise Forbidden("a token registers trackers of its own organisation only")
        organisation_id = principal.organisation_id
    actor = principal.actor
    secret = secrets.token_urlsafe(32)
    device_id = secrets.token_hex(16) if protocol == "osmand" else None
    async with store.transaction() as tx:
        if organisation_id is not None and await tx.get_organisation(organisation_id) is None:
            raise UnknownOrganisation(f"no organisation with id {organisation_id}")
        tracker = await tx.create_tracker(
            serial=serial,
            secret=secret,
            organisation_id=organisation_id,
            model=model,
            now=now,
            protocol=protocol,
            device_id=device_id,
            calibration_due_on=calibration_due_on,
        )
        detail = msgspec.json.encode(
            {
                "serial": serial,
                "model": model,
                "organisation_id": organisation_id,
                "protocol": protocol,
                "calibration_due_on": None if calibration_due_on is None else calibration_due_on.isoformat(),
            }
        )
        await tx.append_audit(
            actor=actor, action="tracker.registered", subject=f"tracker:{tracker.id}", detail=detail.decode(), now=now
        )
    return tracker, secret


async def find_tracker(store: Store, serial: str) -> Tracker | None:
    async with store.transaction() as tx:
        return await tx.get_tracker(serial)


async def find_osmand_tracker(store: Store, device_id: str) -> Tracker | None:
    """The OsmAnd tracker configured with ``device_id``; a signing tracker's serial finds nothing."""
    async with store.transaction() as tx:
        return await tx.get_osmand_tracker(device_id)


async def sync_overview(store: Store, principal: Principal) -> list[tuple[str, SyncState]]:
    """The serial of every tracker of the caller's organisation (all for the operator) with what the service
    holds of its log."""
    async with store.transaction() as tx:
        return await tx.sync_states(principal.organisation_id)


async def tracker_status(store: Store, principal: Principal, serial: str) -> TrackerView:
    """One tracker with what the service holds of its log and its latest conflicts (newest first);
    :class:`NotFound` for a serial the caller does not own."""
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        if tracker is None or (principal.organisation_id not in (None, tracker.organisation_id)):
            raise NotFound(f"no tracker {serial!r}")
        return TrackerView(
            tracker=tracker,
            state=await tx.sync_state(tracker.id),
            conflicts=await tx.sync_conflicts(tracker.id, limit=MAX_CONFLICTS_SHOWN),
        )


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


async def record_calibration(
    store: Store, principal: Principal, serial: str, *, due_on: date | None, certificate: str | None, now: datetime
) -> Tracker:
    """Record when the tracker's calibration runs out (a new certificate), with an audit entry."""
    require(principal, "setup")
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        if tracker is None or principal.organisation_id not in (None, tracker.organisation_id):
            raise NotFound(f"no tracker {serial!r}")
        await tx.set_tracker_calibration(tracker.id, due_on)
        detail = {
            "serial": serial,
            "calibration_due_on": None if due_on is None else due_on.isoformat(),
            "before": None if tracker.calibration_due_on is None else tracker.calibration_due_on.isoformat(),
            "certificate": certificate,
        }
        await tx.append_audit(
            actor=principal.actor,
            action="tracker.calibrated",
            subject=f"tracker:{tracker.id}",
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
    return msgspec.structs.replace(tracker, calibration_due_on=due_on)
