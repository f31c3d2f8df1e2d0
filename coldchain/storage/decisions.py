"""Records of pharmacists' decisions and their electronic signatures.

Both tables are append-only at the database (``0014_decisions.sql``): a decision is never changed or deleted, a
later one supersedes it; only the mark that the evaluation changed after signing is set, once. A signature row
is never changed or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from coldchain.domain.decisions import Decision, Outcome, Signature, SignatureRole
from coldchain.domain.disposition import Recommendation
from coldchain.storage._sqlbase import SqlBase

__all__ = ["DecisionRecords", "DecisionsSql"]


class DecisionRecords(Protocol):
    async def lock_decisions(self, shipment_id: int) -> None:
        """Serialise decisions on one shipment until the transaction ends (two signers at once get seq n and n+1,
        the second seeing the first), and with the ingest of every tracker ever assigned to it: a batch of those
        trackers in flight is waited for (its readings are then judged in what is signed), and a batch that comes
        later waits for the decision (its re-check then sees the decision it may change). Without the second lock
        a decision could be signed on an evaluation a concurrent batch was changing, and that batch's re-check,
        not seeing the uncommitted decision, would never flag it."""
        ...

    async def insert_decision(
        self,
        *,
        shipment_id: int,
        seq: int,
        organisation_id: int,
        outcome: Outcome,
        reason: str | None,
        comment: str | None,
        recommendation: Recommendation,
        snapshot_sha256: str,
        snapshot: str,
        record_sha256: str,
        requires_approval: bool,
        created_at: datetime,
    ) -> int:
        """Store a decision; its id."""
        ...

    async def insert_signature(self, decision_id: int, signature: Signature) -> None: ...

    async def decisions_of_shipment(self, shipment_id: int) -> list[Decision]:
        """The shipment's decisions with their signatures, oldest first."""
        ...

    async def mark_decision_changed(self, decision_id: int, *, at: datetime, sha256: str) -> None:
        """Mark that the evaluation changed after the decision was signed (a decision already marked keeps its
        first mark)."""
        ...

    async def decided_shipments_of_tracker(self, tracker_id: int, *, earliest: datetime, latest: datetime) -> list[int]:
        """Shipments with an unmarked latest decision that the tracker watched between ``earliest`` and
        ``latest`` (device time)."""
        ...

    async def decidable_shipments(self, party: int | None) -> list[tuple[int, datetime]]:
        """Delivered or closed shipments ``party`` takes part in (every one, for ``None``), with the time each
        last changed, by id."""
        ...

    async def release_needs_approval(self, organisation_id: int) -> bool:
        """Whether the organisation asks for a second signature on a release after an excursion."""
        ...

    async def set_release_needs_approval(self, organisation_id: int, required: bool) -> None: ...

    async def mark_session_signed(self, id_sha256: str, *, now: datetime) -> None:
        """Record the session's first e-signature (later calls change nothing)."""
        ...

    async def session_signed_at(self, id_sha256: str) -> datetime | None: ...


class DecisionsSql(SqlBase):
    async def lock_decisions(self, shipment_id: int) -> None:
        await self._lock(f"decisions:{shipment_id}")
        await self._lock_sync_states_of_shipment(shipment_id)

    async def insert_decision(
        self,
        *,
        shipment_id: int,
        seq: int,
        organisation_id: int,
        outcome: Outcome,
        reason: str | None,
        comment: str | None,
        recommendation: Recommendation,
        snapshot_sha256: str,
        snapshot: str,
        record_sha256: str,
        requires_approval: bool,
        created_at: datetime,
    ) -> int:
        decision_id = await self._q.insert_decision(
            self._conn,
            shipment_id=shipment_id,
            seq=seq,
            organisation_id=organisation_id,
            outcome=outcome,
            reason=reason,
            comment=comment,
            recommendation=recommendation,
            snapshot_sha256=snapshot_sha256,
            snapshot=snapshot,
            record_sha256=record_sha256,
            requires_approval=requires_approval,
            created_at=self._time_in(created_at),
        )
        return int(decision_id)

    async def insert_signature(self, decision_id: int, signature: Signature) -> None:
        await self._q.insert_decision_signature(
            self._conn,
            decision_id=decision_id,
            role=signature.role,
            user_id=signature.user_id,
            name=signature.name,
            email=signature.email,
            meaning=signature.meaning,
            signed_at=self._time_in(signature.signed_at),
            record_sha256=signature.record_sha256,
        )

    def _signature(self, row: Any) -> Signature:
        role: SignatureRole = row["role"]
        return Signature(
            role=role,
            user_id=row["user_id"],
            name=row["name"],
            email=row["email"],
            meaning=row["meaning"],
            signed_at=self._time_out(row["signed_at"]),
            record_sha256=row["record_sha256"],
        )

    def _decision(self, row: Any, signatures: Sequence[Signature]) -> Decision:
        outcome: Outcome = row["outcome"]
        recommendation: Recommendation = row["recommendation"]
        changed = row["evaluation_changed_at"]
        return Decision(
            id=row["id"],
            shipment_id=row["shipment_id"],
            seq=row["seq"],
            outcome=outcome,
            reason=row["reason"],
            comment=row["comment"],
            recommendation=recommendation,
            snapshot_sha256=row["snapshot_sha256"],
            snapshot=row["snapshot"],
            record_sha256=row["record_sha256"],
            requires_approval=bool(row["requires_approval"]),
            signatures=sorted(signatures, key=lambda signature: signature.role != "decision"),
            created_at=self._time_out(row["created_at"]),
            evaluation_changed_at=None if changed is None else self._time_out(changed),
            evaluation_changed_sha256=row["evaluation_changed_sha256"],
        )

    async def decisions_of_shipment(self, shipment_id: int) -> list[Decision]:
        signatures: dict[int, list[Signature]] = {}
        async for row in self._q.signatures_of_shipment(self._conn, shipment_id=shipment_id):
            signatures.setdefault(row["decision_id"], []).append(self._signature(row))
        rows = self._q.decisions_of_shipment(self._conn, shipment_id=shipment_id)
        return [self._decision(row, signatures.get(row["id"], [])) async for row in rows]

    async def mark_decision_changed(self, decision_id: int, *, at: datetime, sha256: str) -> None:
        await self._q.mark_decision_changed(self._conn, id=decision_id, at=self._time_in(at), sha256=sha256)

    async def decided_shipments_of_tracker(self, tracker_id: int, *, earliest: datetime, latest: datetime) -> list[int]:
        rows = self._q.decided_shipments_of_tracker(
            self._conn, tracker_id=tracker_id, earliest=self._time_in(earliest), latest=self._time_in(latest)
        )
        return [int(row["shipment_id"]) async for row in rows]

    async def decidable_shipments(self, party: int | None) -> list[tuple[int, datetime]]:
        rows = self._q.decidable_shipments(self._conn, party=party)
        return [(int(row["id"]), self._time_out(row["updated_at"])) async for row in rows]

    async def release_needs_approval(self, organisation_id: int) -> bool:
        value = await self._q.get_release_policy(self._conn, id=organisation_id)
        return bool(value)

    async def set_release_needs_approval(self, organisation_id: int, required: bool) -> None:
        await self._q.set_release_policy(self._conn, id=organisation_id, required=required)

    async def mark_session_signed(self, id_sha256: str, *, now: datetime) -> None:
        await self._q.mark_session_signed(self._conn, id_sha256=id_sha256, now=self._time_in(now))

    async def session_signed_at(self, id_sha256: str) -> datetime | None:
        row = await self._q.session_signed_at(self._conn, id_sha256=id_sha256)
        if row is None or row["signed_at"] is None:
            return None
        return self._time_out(row["signed_at"])
