"""Records of the audit trail as auditors read it: a page of entries filtered and scoped in SQL
(:class:`coldchain.domain.audit.AuditFilter`), and the latest scheduled verification of each hash chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from coldchain.domain.audit import AuditEntry, AuditFilter, ChainCheck
from coldchain.storage._sqlbase import SqlBase

__all__ = ["AuditRecords", "AuditSql"]

_EVER_START = datetime(1970, 1, 1, tzinfo=UTC)
_EVER_END = datetime(9999, 1, 1, tzinfo=UTC)


class AuditRecords(Protocol):
    async def audit_page(self, where: AuditFilter, *, after_id: int, limit: int) -> list[AuditEntry]:
        """Entries with ``id > after_id`` that ``where`` keeps, by id, at most ``limit``."""
        ...

    async def chain_check(self, chain: str) -> ChainCheck | None:
        """The latest verification of the chain, or ``None`` before the first."""
        ...

    async def save_chain_check(self, check: ChainCheck) -> None:
        """Keep ``check`` as the chain's latest verification."""
        ...


class AuditSql(SqlBase):
    async def audit_page(self, where: AuditFilter, *, after_id: int, limit: int) -> list[AuditEntry]:
        rows = self._q.audit_page(
            self._conn,
            organisation_id=where.organisation_id,
            shipment_id=where.shipment_id,
            actor=where.actor,
            since=self._time_in(where.since or _EVER_START),
            until=self._time_in(where.until or _EVER_END),
            after_id=after_id,
            limit=limit,
        )
        return [
            AuditEntry(
                id=row["id"],
                at=self._time_out(row["at"]),
                actor=row["actor"],
                action=row["action"],
                subject=row["subject"],
                detail=row["detail"],
                prev_hash=row["prev_hash"],
                hash=row["hash"],
            )
            async for row in rows
        ]

    async def chain_check(self, chain: str) -> ChainCheck | None:
        row: Any = await self._q.chain_check(self._conn, chain=chain)
        if row is None:
            return None
        return ChainCheck(
            chain=row["chain"],
            checked_at=self._time_out(row["checked_at"]),
            intact=bool(row["intact"]),
            checked=row["checked"],
            broken_at=row["broken_at"],
            head_hash=row["head_hash"],
            reported_break=row["reported_break"],
        )

    async def save_chain_check(self, check: ChainCheck) -> None:
        await self._q.save_chain_check(
            self._conn,
            chain=check.chain,
            checked_at=self._time_in(check.checked_at),
            intact=check.intact,
            checked=check.checked,
            broken_at=check.broken_at,
            head_hash=check.head_hash,
            reported_break=check.reported_break,
        )
