"""Records the portal reads in bulk: the board of shipments in transit, a shipment's readings by key (raw or
summarised per time bucket), and the alarm inbox across shipments.

The board is built from a fixed number of statements whatever the number of shipments (one per kind of fact:
shipments, latest readings, open alarms, sync and ETA and custodian), so it stays one quick call for a control
room with hundreds of shipments on the road.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, Protocol

from coldchain.domain.portal import BoardEntry, InboxAlarm, ReadingBucket, ReadingKey, ShipmentReading
from coldchain.domain.shipments import Place, Priority
from coldchain.storage.evaluation import EvaluationSql

__all__ = [
    "BoardEntry",
    "InboxAlarm",
    "PortalRecords",
    "PortalSql",
    "ReadingBucket",
    "ReadingKey",
    "ShipmentReading",
]


class PortalRecords(Protocol):
    async def board(self, party: int | None) -> list[BoardEntry]:
        """Every shipment in transit that ``party`` takes part in (every one, for ``None``), by id."""
        ...

    async def shipment_readings(
        self, shipment_id: int, *, start: datetime, end: datetime, after: ReadingKey | None, limit: int
    ) -> list[ShipmentReading]:
        """Readings of the shipment's tracker assignments (each within its time range) with
        ``start <= device_time < end``, after the key ``after``, in key order, at most ``limit``."""
        ...

    async def shipment_reading_buckets(
        self, shipment_id: int, *, start: datetime, end: datetime, seconds: int
    ) -> list[ReadingBucket]:
        """The same readings summarised per ``seconds``-long bucket (aligned to the Unix epoch), in time order."""
        ...

    async def alarm_inbox(self, party: int | None, *, limit: int) -> list[InboxAlarm]:
        """Unacknowledged standing alarms of the shipments ``party`` takes part in: escalated first, then the
        most recently detected."""
        ...


class PortalSql(EvaluationSql):
    def _optional(self, value: Any) -> datetime | None:
        return None if value is None else self._time_out(value)

    async def board(self, party: int | None) -> list[BoardEntry]:
        shipments = [row async for row in self._q.board_shipments(self._conn, party=party)]
        latest: dict[int, dict[str, Any]] = {}
        async for row in self._q.board_latest_readings(self._conn, party=party):
            # A shipment with several trackers: the latest of each fact across them.
            facts = latest.setdefault(row["shipment_id"], {})
            if row["temperature_at"] is not None:
                at = self._time_out(row["temperature_at"])
                if "temperature_at" not in facts or at > facts["temperature_at"]:
                    facts.update(temperature_c=row["temperature_c"], temperature_at=at)
            if row["position_at"] is not None:
                at = self._time_out(row["position_at"])
                if "position_at" not in facts or at > facts["position_at"]:
                    facts.update(latitude=row["latitude"], longitude=row["longitude"], position_at=at)
        alarms = {row["shipment_id"]: row async for row in self._q.board_open_alarms(self._conn, party=party)}
        others = {row["shipment_id"]: row async for row in self._q.board_sync_and_eta(self._conn, party=party)}
        entries = []
        for row in shipments:
            facts = latest.get(row["id"], {})
            counts = alarms.get(row["id"])
            other = others[row["id"]]
            priority: Priority = row["priority"]
            entries.append(
                BoardEntry(
                    shipment_id=row["id"],
                    organisation_id=row["organisation_id"],
                    reference=row["reference"],
                    product_id=row["product_id"],
                    product_name=row["product_name"],
                    lot_id=row["lot_id"],
                    lot_number=row["lot_number"],
                    origin=Place(name=row["origin_name"], lat=row["origin_lat"], lon=row["origin_lon"]),
                    destination=Place(
                        name=row["destination_name"], lat=row["destination_lat"], lon=row["destination_lon"]
                    ),
                    promised_at=self._optional(row["promised_at"]),
                    priority=priority,
                    receiver_id=row["receiver_id"],
                    custodian_id=other["custodian_id"],
                    custodian_name=other["custodian_name"],
                    temperature_c=facts.get("temperature_c"),
                    temperature_at=facts.get("temperature_at"),
                    latitude=facts.get("latitude"),
                    longitude=facts.get("longitude"),
                    position_at=facts.get("position_at"),
                    open_alarms=0 if counts is None else int(counts["open_alarms"]),
                    escalated_alarms=0 if counts is None else int(counts["escalated"]),
                    late_alarms=0 if counts is None else int(counts["late"]),
                    last_sync_at=self._optional(other["last_sync_at"]),
                    eta_computed_at=self._optional(other["eta_computed_at"]),
                    eta_at_risk=None if other["eta_at_risk"] is None else bool(other["eta_at_risk"]),
                    eta_estimate=None if other["eta_estimate"] is None else other["eta_estimate"].encode(),
                )
            )
        return entries

    async def shipment_readings(
        self, shipment_id: int, *, start: datetime, end: datetime, after: ReadingKey | None, limit: int
    ) -> list[ShipmentReading]:
        key = after or ReadingKey(device_time=start, tracker_id=0, seq=0)
        rows = self._q.shipment_readings(
            self._conn,
            shipment_id=shipment_id,
            start=self._time_in(start),
            end=self._time_in(end),
            after_time=self._time_in(key.device_time),
            after_tracker=key.tracker_id,
            after_seq=key.seq,
            limit=limit,
        )
        return [
            ShipmentReading(
                tracker_id=row["tracker_id"],
                serial=row["serial"],
                reading=self._reading(row),
                received_at=self._time_out(row["received_at"]),
            )
            async for row in rows
        ]

    async def shipment_reading_buckets(
        self, shipment_id: int, *, start: datetime, end: datetime, seconds: int
    ) -> list[ReadingBucket]:
        rows = await self._bucket_rows(shipment_id, start=start, end=end, seconds=seconds)
        return [
            ReadingBucket(
                start=datetime.fromtimestamp(int(row[0]) * seconds, tz=start.tzinfo),
                readings=int(row[1]),
                temperature_min_c=row[2],
                temperature_mean_c=row[3],
                temperature_max_c=row[4],
                humidity_min_pct=row[5],
                humidity_mean_pct=row[6],
                humidity_max_pct=row[7],
                pressure_min_kpa=row[8],
                pressure_mean_kpa=row[9],
                pressure_max_kpa=row[10],
                latitude=row[11],
                longitude=row[12],
            )
            for row in rows
        ]

    @abc.abstractmethod
    async def _bucket_rows(
        self, shipment_id: int, *, start: datetime, end: datetime, seconds: int
    ) -> list[tuple[Any, ...]]:
        """Rows of (bucket number, count, min, mean, max of temperature, humidity, pressure, mean latitude and
        longitude), in order:
        the bucket number is the Unix time of the reading divided by ``seconds``, rounded down."""

    async def alarm_inbox(self, party: int | None, *, limit: int) -> list[InboxAlarm]:
        rows = self._q.alarm_inbox(self._conn, party=party, limit=limit)
        return [InboxAlarm(alarm=self._stored_alarm(row), reference=row["reference"]) async for row in rows]


BUCKET_SELECT = """
SELECT {bucket} AS bucket, count(*),
       min(r.temperature_c), avg(r.temperature_c), max(r.temperature_c),
       min(r.humidity_pct), avg(r.humidity_pct), max(r.humidity_pct),
       min(r.pressure_kpa), avg(r.pressure_kpa), max(r.pressure_kpa),
       avg(r.latitude), avg(r.longitude)
FROM tracker_assignments a
JOIN readings r ON r.tracker_id = a.tracker_id AND r.device_time >= a.starts_at
                AND (a.ends_at IS NULL OR r.device_time < a.ends_at)
WHERE a.shipment_id = {shipment_id} AND r.device_time >= {start} AND r.device_time < {end}
GROUP BY 1 ORDER BY 1
"""
"""Summary per bucket; each engine fills in its bucket expression and its parameter markers."""
