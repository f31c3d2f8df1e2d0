"""The base every SQL record class builds on: a connection, the named queries, and what differs per engine."""

from __future__ import annotations

import abc
from datetime import date, datetime
from typing import Any

from coldchain.domain.readings import Reading

__all__ = ["SqlBase"]


class SqlBase(abc.ABC):
    """A connection inside an open transaction, the named statements, and the engine's hooks.

    Each area's record methods (a mixin per area) use only these: ``_time_in``/``_time_out`` and
    ``_date_in``/``_date_out`` convert values crossing the driver; ``_lock(name)`` serialises transactions on a
    name until the transaction ends; ``_try_lock(name)`` is the same without waiting (false when another
    transaction holds it).
    """

    def __init__(self, conn: Any, queries: Any, *, one_moment: bool = False) -> None:
        self._conn = conn
        self._q = queries
        self._one_moment = one_moment
        self._audit_pending: list[tuple[datetime, str, str, str, str]] = []
        """Audit entries appended in this transaction, chained and inserted just before it commits."""

    @property
    def one_moment(self) -> bool:
        """See :attr:`coldchain.storage.base.Transaction.one_moment`."""
        return self._one_moment

    @abc.abstractmethod
    def _time_in(self, value: datetime) -> Any: ...

    @abc.abstractmethod
    def _time_out(self, value: Any) -> datetime: ...

    @abc.abstractmethod
    def _date_in(self, value: date) -> Any: ...

    @abc.abstractmethod
    def _date_out(self, value: Any) -> date: ...

    @abc.abstractmethod
    async def _lock(self, name: str) -> None: ...

    @abc.abstractmethod
    async def _try_lock(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def _lock_audit_chain(self) -> None: ...

    @abc.abstractmethod
    async def _locked_sync_state_row(self, tracker_id: int) -> Any:
        """The tracker's ``tracker_sync_state`` row (the columns of ``get_sync_state``, with the span its
        assignments cover: ``watched_from``, ``watched_to``, and ``decided``: whether a shipment of them has a
        signed decision not yet marked changed), locked until the transaction ends, or ``None``."""

    @abc.abstractmethod
    async def _lock_sync_states_of_shipment(self, shipment_id: int) -> None:
        """Lock the sync state of every tracker ever assigned to the shipment, in tracker id order (ingest holds
        its tracker's for its whole transaction: see :meth:`_locked_sync_state_row`)."""

    def _reading(self, row: Any) -> Reading:
        return Reading(
            seq=row["seq"],
            device_time=self._time_out(row["device_time"]),
            utc_offset_min=row["utc_offset_min"],
            temperature_c=row["temperature_c"],
            humidity_pct=row["humidity_pct"],
            pressure_kpa=row["pressure_kpa"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            battery_pct=row["battery_pct"],
        )
