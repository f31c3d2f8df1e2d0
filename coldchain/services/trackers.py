"""Use cases around trackers: registration, look-up, sync overview."""

from __future__ import annotations

import secrets
from datetime import datetime

import msgspec

from coldchain.domain.parties import Tracker
from coldchain.domain.sync import SyncState
from coldchain.storage import Store

__all__ = ["UnknownOrganisation", "find_tracker", "register_tracker", "sync_overview", "tracker_status"]


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
