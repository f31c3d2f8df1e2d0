"""How long readings are kept, and what is kept of them when they go.

Readings are removed by whole UTC months of device time (on PostgreSQL a month is a partition of ``readings``,
dropped whole): a month goes once it ends before the cut-off, ``retention`` before now. EU GDP (Guidelines on Good
Distribution Practice of medicinal products for human use, 2013/C 343/01, section 4.2) keeps records at least five
years: a retention shorter than :data:`GDP_MINIMUM_DAYS` is refused unless the operator overrides it explicitly.

What a certificate needs of a shipment's readings once they are gone is its **seal** (:class:`ReadingsSeal`): the
SHA-256 of the readings CSV export, how many readings it held, and the first and last reading (the data's span).
Everything else a certificate shows (rules, MKT, excursions, alarms, budgets, decisions, custody) is kept in its
own records, which retention never touches. A month is removed only when every shipment with readings in it is
finished (delivered, closed or cancelled, every tracker assignment ended), so the seal is taken of a complete log;
a month holding readings of a shipment still under way is withheld (:func:`withholding_reason`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from coldchain.domain.readings import Reading
from coldchain.domain.shipments import ShipmentStatus

__all__ = [
    "FINISHED_STATUSES",
    "GDP_MINIMUM_DAYS",
    "ReadingsSeal",
    "RetentionShipment",
    "month_end",
    "month_of",
    "month_start",
    "months_ahead",
    "removable_months",
    "retention_cutoff",
    "retention_refusal",
    "withholding_reason",
]

GDP_MINIMUM_DAYS = 1826
"""Five years, a leap day included: the least EU GDP section 4.2 lets records be kept."""

FINISHED_STATUSES: frozenset[ShipmentStatus] = frozenset({"delivered", "closed", "cancelled"})


class ReadingsSeal(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment's readings as its certificate cites them, kept when retention removes the readings."""

    shipment_id: int
    readings: int
    readings_sha256: str
    """The SHA-256 of the shipment's readings CSV export when it was sealed."""
    first: Reading | None
    last: Reading | None
    sealed_at: datetime


class RetentionShipment(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment with readings in a month retention would remove."""

    shipment_id: int
    status: ShipmentStatus
    open_assignments: int
    """Tracker assignments of the shipment without an end: more readings may still belong to it."""
    sealed: bool


def retention_refusal(days: int | None, *, below_gdp: bool) -> str | None:
    """Why a retention of ``days`` may not be set, or ``None`` when it may (``None`` days: keep for ever)."""
    if days is None:
        return None
    if days < 1:
        return f"{days} days: a retention is at least one day"
    if days < GDP_MINIMUM_DAYS and not below_gdp:
        return (
            f"{days} days is less than the five years ({GDP_MINIMUM_DAYS} days) EU GDP keeps records;"
            " allow it explicitly to keep readings for a shorter time"
        )
    return None


def month_of(moment: datetime) -> date:
    """The first day of the UTC month ``moment`` falls in."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def month_end(month: date) -> datetime:
    """The instant the month ends (the next month's start)."""
    return month_start(_next(month))


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_ahead(now: datetime, months: int) -> list[date]:
    """The month of ``now`` and the ``months`` after it."""
    found = [month_of(now)]
    for _ in range(months):
        found.append(_next(found[-1]))
    return found


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Readings dated before this instant are past their retention."""
    return now - timedelta(days=days)


def removable_months(months: list[date], cutoff: datetime) -> list[date]:
    """The months, oldest first, that end no later than ``cutoff``: every reading in them is past retention."""
    return sorted(month for month in months if month_end(month) <= cutoff)


def withholding_reason(shipments: list[RetentionShipment]) -> str | None:
    """Why a month holding readings of ``shipments`` may not be removed yet, or ``None`` when it may."""
    waiting = [s for s in shipments if not s.sealed and (s.status not in FINISHED_STATUSES or s.open_assignments)]
    if not waiting:
        return None
    names = ", ".join(
        f"{s.shipment_id} ({s.status}{', a tracker still assigned' if s.open_assignments else ''})" for s in waiting
    )
    return f"readings of shipments not finished: {names}"
