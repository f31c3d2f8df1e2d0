"""Use cases of the readings' months: making them ready ahead of time, and removing them past retention.

On PostgreSQL every UTC month of readings is a partition (``sql/postgres/0018_partitioned_readings.sql``): the
service makes the partitions of the coming months at start-up and every hour (:func:`prepare_reading_months`), so
the readings of a new month never wait in the default partition. Retention (:func:`apply_retention`) removes
whole months that ended before the cut-off, one transaction per month: it seals each shipment with readings in
the month (:class:`coldchain.domain.retention.ReadingsSeal`), then drops the month's partition (deletes the
month's rows on SQLite), and writes what it did to the audit trail. A month holding readings of a shipment still
under way is withheld and tried again at the next run.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

import msgspec

from coldchain.domain.retention import (
    ReadingsSeal,
    month_end,
    month_start,
    months_ahead,
    retention_cutoff,
    retention_refusal,
    withholding_reason,
)
from coldchain.services.decisions import readings_pass
from coldchain.storage import Store, Transaction

__all__ = [
    "RETENTION_ACTOR",
    "MonthRemoved",
    "MonthWithheld",
    "RetentionPolicy",
    "RetentionReport",
    "apply_retention",
    "prepare_reading_months",
]

log = logging.getLogger("coldchain.retention")

RETENTION_ACTOR = "coldchain:retention"

_json = msgspec.json.Encoder()


class RetentionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    days: int | None = None
    """Readings are kept this many days (by device time); ``None`` keeps them for ever."""
    below_gdp: bool = False
    """Allow fewer days than EU GDP's five years (:data:`coldchain.domain.retention.GDP_MINIMUM_DAYS`)."""


class MonthRemoved(msgspec.Struct, frozen=True, kw_only=True):
    month: date
    readings: int
    shipments: list[int]
    """Shipments that had readings in the month (each sealed, now or at an earlier month)."""
    sealed: list[int]
    """Shipments sealed by this removal."""


class MonthWithheld(msgspec.Struct, frozen=True, kw_only=True):
    month: date
    reason: str


class RetentionReport(msgspec.Struct, frozen=True, kw_only=True):
    cutoff: datetime | None
    """Readings dated before this were past retention; ``None`` when readings are kept for ever."""
    removed: list[MonthRemoved]
    withheld: list[MonthWithheld]


async def prepare_reading_months(store: Store, *, now: datetime, months: int) -> list[date]:
    """Make the month of ``now`` and the ``months`` after it ready for readings; the months made by this call."""
    async with store.transaction() as tx:
        return await tx.prepare_reading_months(months_ahead(now, months))


async def apply_retention(store: Store, *, now: datetime, policy: RetentionPolicy) -> RetentionReport:
    """Remove every month of readings that ended ``policy.days`` or more before ``now``, oldest first."""
    refusal = retention_refusal(policy.days, below_gdp=policy.below_gdp)
    if refusal is not None:
        raise ValueError(refusal)
    if policy.days is None:
        return RetentionReport(cutoff=None, removed=[], withheld=[])
    cutoff = retention_cutoff(now, policy.days)
    async with store.transaction() as tx:
        months = await tx.reading_months(ending_by=cutoff)
    removed: list[MonthRemoved] = []
    withheld: list[MonthWithheld] = []
    for month in months:
        async with store.transaction() as tx:
            shipments = await tx.shipments_with_readings(month_start(month), month_end(month))
            reason = withholding_reason(shipments)
            if reason is not None:
                log.warning("readings of %s are past retention but kept: %s", month.strftime("%Y-%m"), reason)
                withheld.append(MonthWithheld(month=month, reason=reason))
                continue
            sealed = [s.shipment_id for s in shipments if not s.sealed]
            for shipment_id in sealed:
                await _seal(tx, shipment_id, now=now)
            count = await tx.remove_reading_month(month)
            await tx.append_audit(
                actor=RETENTION_ACTOR,
                action="readings.removed",
                subject=f"readings:{month.strftime('%Y-%m')}",
                detail=_json.encode(
                    {
                        "month": month.strftime("%Y-%m"),
                        "readings": count,
                        "retention_days": policy.days,
                        "cutoff": cutoff,
                        "shipments": [s.shipment_id for s in shipments],
                        "sealed": sealed,
                    }
                ).decode(),
                now=now,
            )
        log.info("removed the %d readings of %s (past %d days)", count, month.strftime("%Y-%m"), policy.days)
        removed.append(
            MonthRemoved(month=month, readings=count, shipments=[s.shipment_id for s in shipments], sealed=sealed)
        )
    return RetentionReport(cutoff=cutoff, removed=removed, withheld=withheld)


async def _seal(tx: Transaction, shipment_id: int, *, now: datetime) -> None:
    readings_sha256, count, first, last = await readings_pass(tx, shipment_id)
    seal = ReadingsSeal(
        shipment_id=shipment_id,
        readings=count,
        readings_sha256=readings_sha256,
        first=first,
        last=last,
        sealed_at=now,
    )
    if await tx.save_readings_seal(seal):
        await tx.append_audit(
            actor=RETENTION_ACTOR,
            action="readings.sealed",
            subject=f"shipment:{shipment_id}",
            detail=_json.encode({"readings": count, "readings_sha256": readings_sha256}).decode(),
            now=now,
        )
