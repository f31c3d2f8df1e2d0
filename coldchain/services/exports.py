"""The raw-data exports: a shipment's readings and quarantined readings as CSV (:mod:`coldchain.domain.exports`).

The readings CSV is streamed: the rows are read a page at a time by key (device time, tracker id, seq), each page
in its own short transaction, so neither the process nor the database holds the whole shipment, and ingest is never
kept waiting behind a slow download. Readings are never changed once stored; a batch that lands while an export is
under way may or may not appear in it, and any later export of the same readings is the same bytes. The caller's
right to the shipment is checked before the first byte, so a refusal is a plain 404.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from coldchain.domain.access import Principal
from coldchain.domain.exports import QUARANTINED_HEADER, READINGS_HEADER, quarantined_row, reading_row
from coldchain.services.access import require, visible_shipment
from coldchain.services.evaluation import quarantined_of_shipment
from coldchain.storage import Store

__all__ = ["READINGS_PAGE", "quarantined_csv", "readings_csv", "readings_csv_sha256"]

READINGS_PAGE = 2000
"""Readings read per transaction while streaming."""

_EVER_START = datetime(1970, 1, 1, tzinfo=UTC)
_EVER_END = datetime(9999, 1, 1, tzinfo=UTC)


async def _check(store: Store, principal: Principal, shipment_id: int) -> None:
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")


async def readings_csv(store: Store, principal: Principal, shipment_id: int) -> AsyncIterator[bytes]:
    """The shipment's readings CSV as chunks (the header, then a page of rows per chunk); :class:`NotFound` at
    once when the caller does not take part in the shipment."""
    await _check(store, principal, shipment_id)
    return _readings_chunks(store, shipment_id)


async def _readings_chunks(store: Store, shipment_id: int) -> AsyncIterator[bytes]:
    yield READINGS_HEADER.encode()
    after = None
    while True:
        async with store.transaction() as tx:
            page = await tx.shipment_readings(
                shipment_id, start=_EVER_START, end=_EVER_END, after=after, limit=READINGS_PAGE
            )
        if page:
            yield "".join(reading_row(item.serial, item.reading, item.received_at) for item in page).encode()
            after = page[-1].key
        if len(page) < READINGS_PAGE:
            return


async def readings_csv_sha256(store: Store, principal: Principal, shipment_id: int) -> str:
    """The SHA-256 (hex) of the readings CSV as it would be exported now."""
    digest = hashlib.sha256()
    async for chunk in await readings_csv(store, principal, shipment_id):
        digest.update(chunk)
    return digest.hexdigest()


async def quarantined_csv(store: Store, principal: Principal, shipment_id: int) -> bytes:
    """The readings quarantined at ingest from the shipment's trackers during their assignments, by tracker id
    and seq, with the reason each was kept apart. Quarantined readings are few (a sensor fault, an impossible
    value), so this CSV is built whole."""
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        found = await quarantined_of_shipment(tx, shipment_id)
        serials: dict[int, str] = {}
        for tracker_id in {item.tracker_id for item in found}:
            tracker = await tx.get_tracker_by_id(tracker_id)
            serials[tracker_id] = str(tracker_id) if tracker is None else tracker.serial
    rows = [quarantined_row(serials[item.tracker_id], item.reading, item.received_at, item.reason) for item in found]
    return (QUARANTINED_HEADER + "".join(rows)).encode()
