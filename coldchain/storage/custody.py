"""Records of the custody area: the CustodyRecords contract and its SQL (shared by both engines).

Custody events are append-only (database triggers refuse UPDATE and DELETE on both engines); each append also
moves the shipment's chain head. Appends of one shipment serialise on :meth:`CustodyRecords.lock_custody`
(advisory locks on PostgreSQL, SQLite's single writer otherwise).
A stored event always loads, even a tampered one, so that verification can say what is wrong with it: signers
that no longer decode load as none (which no sealed event has, so its hash no longer matches).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

from coldchain.domain.custody import ArrivalWatch, ChainHead, CustodyEvent, CustodyKind, Handover, Location, Signer
from coldchain.storage._sqlbase import SqlBase
from coldchain.storage.errors import AlreadyExists

__all__ = ["CustodyRecords", "CustodySql"]

_signers_json = msgspec.json.Encoder()
_signers_type = tuple[Signer, ...]
_SIDES = frozenset({"token", "user"})
"""Who signs a side of a hand-over: an organisation's API token, or one of its people."""


def _side_signer(row: Any, side: str, organisation_id: int) -> Signer:
    """The signer of one side of a stored hand-over (``proposer`` or ``acceptor``): its user, or else its token."""
    if row[f"{side}_user_id"] is not None:
        return Signer(
            by="user",
            organisation_id=organisation_id,
            user_id=row[f"{side}_user_id"],
            name=row[f"{side}_name"],
            email=row[f"{side}_email"],
        )
    return Signer(by="token", organisation_id=organisation_id, token_id=row[f"{side}_token_id"])


class CustodyRecords(Protocol):
    """What a transaction offers for custody."""

    async def lock_custody(self, shipment_id: int, *, appending: bool = True) -> None:
        """Serialise with every other transaction appending to (or verifying) this shipment's chain, until the
        transaction ends.

        An append ends with an audit entry, chained when the transaction commits under the audit chain's lock;
        an appender (``appending``) takes that lock first, here: one order, audit then custody, for every
        transaction (the other transactions take the audit chain's lock only at commit, after every other lock),
        and no deadlock. A reader that writes nothing takes the custody lock alone.
        """
        ...

    async def custody_events(self, shipment_id: int) -> list[CustodyEvent]:
        """The shipment's stored events, by sequence number (as stored: verification judges them)."""
        ...

    async def custody_head(self, shipment_id: int) -> ChainHead | None:
        """Where the shipment's chain ended at its last append (``None``: nothing was ever appended)."""
        ...

    async def append_custody_event(self, event: CustodyEvent) -> None:
        """Store a sealed event and make it the chain's head; :class:`AlreadyExists` when its seq is taken."""
        ...

    async def arrival_watch(self, tracker_id: int) -> list[ArrivalWatch]:
        """The tracker's assignments to in-transit shipments with no arrival recorded yet, by start."""
        ...

    async def insert_handover(
        self,
        *,
        shipment_id: int,
        from_id: int,
        to_id: int,
        place: Location,
        occurred_at: datetime,
        note: str | None,
        proposer: Signer,
        proposed_at: datetime,
    ) -> Handover:
        """A pending hand-over proposed by ``proposer`` (a token or a user of ``from_id``)."""
        ...

    async def get_handover(self, shipment_id: int, handover_id: int) -> Handover | None: ...

    async def pending_handovers(self, shipment_id: int) -> list[Handover]:
        """Hand-overs of the shipment still waiting for the receiving side, by id."""
        ...

    async def accept_handover(
        self, handover_id: int, *, acceptor: Signer, accepted_at: datetime, event_seq: int
    ) -> bool:
        """Mark a pending hand-over accepted by ``acceptor`` (a token or a user) as chain event ``event_seq``;
        false when it was already accepted."""
        ...


class CustodySql(SqlBase):
    """:class:`CustodyRecords` in SQL."""

    async def lock_custody(self, shipment_id: int, *, appending: bool = True) -> None:
        if appending:
            await self._lock_audit_chain()
        await self._lock(f"custody:{shipment_id}")

    def _custody_event(self, row: Any) -> CustodyEvent:
        kind: CustodyKind = row["kind"]
        try:
            signers = msgspec.json.decode(row["signers"], type=_signers_type)
        except (msgspec.DecodeError, msgspec.ValidationError):
            signers = ()
        return CustodyEvent(
            shipment_id=row["shipment_id"],
            seq=row["seq"],
            kind=kind,
            party_id=row["party_id"],
            counterparty_id=row["counterparty_id"],
            place=Location(lat=row["place_lat"], lon=row["place_lon"], name=row["place_name"]),
            occurred_at=self._time_out(row["occurred_at"]),
            recorded_at=self._time_out(row["recorded_at"]),
            signers=signers,
            note=row["note"],
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )

    async def custody_events(self, shipment_id: int) -> list[CustodyEvent]:
        rows = self._q.custody_events(self._conn, shipment_id=shipment_id)
        return [self._custody_event(row) async for row in rows]

    async def custody_head(self, shipment_id: int) -> ChainHead | None:
        row = await self._q.custody_head(self._conn, shipment_id=shipment_id)
        return None if row is None else ChainHead(seq=row["seq"], hash=row["hash"])

    async def append_custody_event(self, event: CustodyEvent) -> None:
        stored = await self._q.insert_custody_event(
            self._conn,
            shipment_id=event.shipment_id,
            seq=event.seq,
            kind=event.kind,
            party_id=event.party_id,
            counterparty_id=event.counterparty_id,
            place_name=event.place.name,
            place_lat=event.place.lat,
            place_lon=event.place.lon,
            occurred_at=self._time_in(event.occurred_at),
            recorded_at=self._time_in(event.recorded_at),
            signers=_signers_json.encode(event.signers).decode(),
            note=event.note,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )
        if stored is None:
            raise AlreadyExists(f"shipment {event.shipment_id} already has custody event {event.seq}")
        await self._q.save_custody_head(self._conn, shipment_id=event.shipment_id, seq=event.seq, hash=event.hash)

    async def arrival_watch(self, tracker_id: int) -> list[ArrivalWatch]:
        rows = self._q.arrival_watch(self._conn, tracker_id=tracker_id)
        return [
            ArrivalWatch(
                shipment_id=row["shipment_id"],
                starts_at=self._time_out(row["starts_at"]),
                ends_at=None if row["ends_at"] is None else self._time_out(row["ends_at"]),
                destination=Location(
                    lat=row["destination_lat"], lon=row["destination_lon"], name=row["destination_name"]
                ),
                geofence_m=row["geofence_m"],
            )
            async for row in rows
        ]

    def _handover(self, row: Any) -> Handover:
        accepted = row["accepted_at"] is not None
        return Handover(
            id=row["id"],
            shipment_id=row["shipment_id"],
            from_id=row["from_id"],
            to_id=row["to_id"],
            place=Location(lat=row["place_lat"], lon=row["place_lon"], name=row["place_name"]),
            occurred_at=self._time_out(row["occurred_at"]),
            note=row["note"],
            proposer=_side_signer(row, "proposer", row["from_id"]),
            proposed_at=self._time_out(row["proposed_at"]),
            acceptor=_side_signer(row, "acceptor", row["to_id"]) if accepted else None,
            accepted_at=self._time_out(row["accepted_at"]) if accepted else None,
            event_seq=row["event_seq"],
        )

    async def insert_handover(
        self,
        *,
        shipment_id: int,
        from_id: int,
        to_id: int,
        place: Location,
        occurred_at: datetime,
        note: str | None,
        proposer: Signer,
        proposed_at: datetime,
    ) -> Handover:
        if proposer.by not in _SIDES or proposer.organisation_id != from_id:
            raise ValueError("a hand-over is proposed by a token or a user of the giving organisation")
        handover_id = await self._q.insert_handover(
            self._conn,
            shipment_id=shipment_id,
            from_id=from_id,
            to_id=to_id,
            place_name=place.name,
            place_lat=place.lat,
            place_lon=place.lon,
            occurred_at=self._time_in(occurred_at),
            note=note,
            proposer_token_id=proposer.token_id if proposer.by == "token" else None,
            proposer_user_id=proposer.user_id if proposer.by == "user" else None,
            proposer_name=proposer.name if proposer.by == "user" else None,
            proposer_email=proposer.email if proposer.by == "user" else None,
            proposed_at=self._time_in(proposed_at),
        )
        handover = await self.get_handover(shipment_id, handover_id)
        assert handover is not None
        return handover

    async def get_handover(self, shipment_id: int, handover_id: int) -> Handover | None:
        row = await self._q.get_handover(self._conn, shipment_id=shipment_id, id=handover_id)
        return None if row is None else self._handover(row)

    async def pending_handovers(self, shipment_id: int) -> list[Handover]:
        rows = self._q.pending_handovers(self._conn, shipment_id=shipment_id)
        return [self._handover(row) async for row in rows]

    async def accept_handover(
        self, handover_id: int, *, acceptor: Signer, accepted_at: datetime, event_seq: int
    ) -> bool:
        if acceptor.by not in _SIDES:
            raise ValueError("a hand-over is accepted by a token or a user of the receiving organisation")
        updated = await self._q.accept_handover(
            self._conn,
            id=handover_id,
            acceptor_token_id=acceptor.token_id if acceptor.by == "token" else None,
            acceptor_user_id=acceptor.user_id if acceptor.by == "user" else None,
            acceptor_name=acceptor.name if acceptor.by == "user" else None,
            acceptor_email=acceptor.email if acceptor.by == "user" else None,
            accepted_at=self._time_in(accepted_at),
            event_seq=event_seq,
        )
        return updated is not None
