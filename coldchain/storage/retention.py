"""Records of the readings' months: partitions made ahead, months removed by retention, and the seals that keep a
shipment's readings digest once its readings are gone (:mod:`coldchain.domain.retention`).

A month is a partition of ``readings`` on PostgreSQL (made ahead, dropped whole) and a range of device time on
SQLite, whose readings are not partitioned (nothing to make; its rows are deleted). The engine modules implement
what differs; the statements both engines share are in ``sql/queries/retention.sql``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

import msgspec

from coldchain.domain.readings import Reading
from coldchain.domain.retention import ReadingsSeal, RetentionShipment
from coldchain.storage._sqlbase import SqlBase

__all__ = ["RetentionRecords", "RetentionSql"]

_json = msgspec.json.Encoder()


class RetentionRecords(Protocol):
    async def prepare_reading_months(self, months: Sequence[date]) -> list[date]:
        """Make ready to hold the readings of these months (PostgreSQL: their partitions; a month's readings that
        wait in the default partition move into it); the months this call made, oldest first."""
        ...

    async def reading_months(self, *, ending_by: datetime) -> list[date]:
        """The months, oldest first, that end no later than ``ending_by`` and may hold readings (PostgreSQL: every
        monthly partition, empty or not; SQLite: the months some reading falls in)."""
        ...

    async def shipments_with_readings(self, start: datetime, end: datetime) -> list[RetentionShipment]:
        """The shipments that own a reading with ``start <= device_time < end`` (through the assignment of its
        tracker at that time), by id."""
        ...

    async def remove_reading_month(self, month: date) -> int:
        """Remove every reading of the UTC month (PostgreSQL: drop its partition); how many there were."""
        ...

    async def readings_seal(self, shipment_id: int) -> ReadingsSeal | None: ...

    async def save_readings_seal(self, seal: ReadingsSeal) -> bool:
        """Keep the seal; false when the shipment was sealed before (the first seal stays)."""
        ...


class RetentionSql(SqlBase):
    @abc.abstractmethod
    async def prepare_reading_months(self, months: Sequence[date]) -> list[date]: ...

    @abc.abstractmethod
    async def reading_months(self, *, ending_by: datetime) -> list[date]: ...

    @abc.abstractmethod
    async def remove_reading_month(self, month: date) -> int: ...

    async def shipments_with_readings(self, start: datetime, end: datetime) -> list[RetentionShipment]:
        rows = self._q.shipments_with_readings(self._conn, start=self._time_in(start), end=self._time_in(end))
        return [
            RetentionShipment(
                shipment_id=row["shipment_id"],
                status=row["status"],
                open_assignments=row["open_assignments"],
                sealed=bool(row["sealed"]),
            )
            async for row in rows
        ]

    async def readings_seal(self, shipment_id: int) -> ReadingsSeal | None:
        row: Any = await self._q.readings_seal(self._conn, shipment_id=shipment_id)
        if row is None:
            return None
        return ReadingsSeal(
            shipment_id=row["shipment_id"],
            readings=row["readings"],
            readings_sha256=row["readings_sha256"],
            first=_reading(row["first_reading"]),
            last=_reading(row["last_reading"]),
            sealed_at=self._time_out(row["sealed_at"]),
        )

    async def save_readings_seal(self, seal: ReadingsSeal) -> bool:
        row = await self._q.insert_readings_seal(
            self._conn,
            shipment_id=seal.shipment_id,
            readings=seal.readings,
            readings_sha256=seal.readings_sha256,
            first_reading=None if seal.first is None else _json.encode(seal.first).decode(),
            last_reading=None if seal.last is None else _json.encode(seal.last).decode(),
            sealed_at=self._time_in(seal.sealed_at),
        )
        return row is not None


def _reading(text: str | None) -> Reading | None:
    return None if text is None else msgspec.json.decode(text, type=Reading)
