"""Use cases the portal stands on, open to API clients too: the board of shipments in transit, a shipment's
readings for a time range (by key, or summarised per bucket for charts), and the alarm inbox across shipments.

Each is scoped like every other read: the caller's organisation sees the shipments it takes part in, the
operator all of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.board import BoardState, board_state
from coldchain.domain.eta import EtaEstimate
from coldchain.domain.portal import BoardEntry, InboxAlarm, ReadingBucket, ReadingKey, ShipmentReading
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Invalid
from coldchain.storage import Store

__all__ = [
    "MAX_BUCKETS",
    "MAX_PAGE",
    "Board",
    "BoardLine",
    "ReadingsPage",
    "alarm_inbox",
    "board",
    "filter_board",
    "party_names",
    "reading_buckets",
    "readings_page",
]

MAX_PAGE = 10_000
"""Most readings in one page."""
MAX_BUCKETS = 5_000
"""Most buckets in one summarised answer: a chart is a few thousand pixels wide."""
_FAR_FUTURE = timedelta(days=2)


class BoardLine(msgspec.Struct, frozen=True, kw_only=True):
    entry: BoardEntry
    state: BoardState
    eta: EtaEstimate | None
    eta_reasons: list[str]


class Board(msgspec.Struct, frozen=True, kw_only=True):
    computed_at: datetime
    lines: list[BoardLine]


class _StoredEta(msgspec.Struct, frozen=True, kw_only=True):
    estimate: EtaEstimate | None = None
    reasons: list[str] = msgspec.field(default_factory=list)


async def board(store: Store, principal: Principal, *, now: datetime, silent_after: timedelta) -> Board:
    """Every shipment in transit the caller takes part in, with its state for the board."""
    require(principal, "read")
    async with store.transaction() as tx:
        entries = await tx.board(principal.organisation_id)
    lines = []
    for entry in entries:
        stored = (
            _StoredEta()
            if entry.eta_estimate is None
            else msgspec.json.decode(entry.eta_estimate, type=_StoredEta, strict=False)
        )
        state = board_state(
            open_alarms=entry.open_alarms,
            late_alarms=entry.late_alarms,
            at_risk=bool(entry.eta_at_risk),
            last_sync_at=entry.last_sync_at,
            now=now,
            silent_after=silent_after,
        )
        lines.append(BoardLine(entry=entry, state=state, eta=stored.estimate, eta_reasons=stored.reasons))
    return Board(computed_at=now, lines=lines)


class ReadingsPage(msgspec.Struct, frozen=True, kw_only=True):
    readings: list[ShipmentReading]
    next: ReadingKey | None
    """Where the next page starts (``None``: this was the last)."""


async def _range(
    store: Store, principal: Principal, shipment_id: int, start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    require(principal, "read")
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        assignments = await tx.assignments_of_shipment(shipment.id)
    if start is None:
        start = min((a.starts_at for a in assignments), default=shipment.created_at)
    if end is None:
        ends = [a.ends_at for a in assignments]
        end = max((e for e in ends if e is not None), default=now) if all(ends) and ends else now + _FAR_FUTURE
    if end <= start:
        raise Invalid(f"end: must come after start ({start.isoformat()})")
    return start, end


async def readings_page(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    start: datetime | None,
    end: datetime | None,
    after: ReadingKey | None,
    limit: int,
    now: datetime,
) -> ReadingsPage:
    """A page of the shipment's readings in ``[start, end)`` (default: the whole shipment), in (device time,
    tracker, seq) order, after the key ``after``."""
    lower, upper = await _range(store, principal, shipment_id, start, end, now)
    async with store.transaction() as tx:
        found = await tx.shipment_readings(shipment_id, start=lower, end=upper, after=after, limit=limit + 1)
    more = len(found) > limit
    page = found[:limit]
    return ReadingsPage(readings=page, next=page[-1].key if more else None)


async def reading_buckets(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    start: datetime | None,
    end: datetime | None,
    seconds: int,
    now: datetime,
) -> tuple[datetime, datetime, list[ReadingBucket]]:
    """The shipment's readings in ``[start, end)`` summarised per ``seconds``-long bucket: min, mean and max."""
    lower, upper = await _range(store, principal, shipment_id, start, end, now)
    if (upper - lower).total_seconds() / seconds > MAX_BUCKETS:
        raise Invalid(
            f"resolution: {seconds} s makes more than {MAX_BUCKETS} buckets over"
            f" {lower.isoformat()} to {upper.isoformat()}; choose a coarser resolution or a shorter range"
        )
    async with store.transaction() as tx:
        buckets = await tx.shipment_reading_buckets(shipment_id, start=lower, end=upper, seconds=seconds)
    return lower, upper, buckets


async def alarm_inbox(store: Store, principal: Principal, *, limit: int) -> list[InboxAlarm]:
    """Unacknowledged standing alarms across the caller's shipments, escalated first, then the newest."""
    require(principal, "read")
    async with store.transaction() as tx:
        return await tx.alarm_inbox(principal.organisation_id, limit=limit)


def filter_board(lines: list[BoardLine], *, state: BoardState | None, text: str | None) -> list[BoardLine]:
    """The board's lines in a state, and/or whose reference, product, lot or custodian contains ``text``."""
    needle = (text or "").strip().lower()
    chosen = []
    for line in lines:
        entry = line.entry
        if state is not None and line.state != state:
            continue
        haystack = " ".join(
            part or "" for part in (entry.reference, entry.product_name, entry.lot_number, entry.custodian_name)
        ).lower()
        if needle and needle not in haystack:
            continue
        chosen.append(line)
    return chosen


async def party_names(store: Store, principal: Principal, shipment_id: int) -> dict[int, str]:
    """The names of the organisations taking part in a shipment the caller sees (parties know each other)."""
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        names = {}
        for party in sorted(shipment.parties):
            organisation = await tx.get_organisation(party)
            if organisation is not None:
                names[party] = organisation.name
    return names
