"""The chain of custody of a shipment: record events, propose and accept hand-overs, read and verify the chain.

Every route is scoped to the caller: a shipment the caller's organisation takes no part in answers 404, and so
does a hand-over of another shipment. Recording needs a role that may record custody (admin, logistics,
carrier; 403 otherwise); an event the chain's state does not allow answers 409, one that contradicts the
shipment's parties 422, each naming the rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody
from msgspec import Meta

from coldchain.domain.custody import ChainVerdict, CustodyEvent, CustodyKind, Handover, Location, Signer, SignerKind
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, BUSY, errors
from coldchain.http.wire import AwareDatetime, BodyIn, Id, Latitude, Longitude, PathId
from coldchain.services import custody as use_cases

__all__ = ["CustodyApi"]

PlaceName = Annotated[str, Meta(min_length=1, max_length=200)]
Note = Annotated[str, Meta(max_length=2000)]


class PlaceIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lat: Latitude
    lon: Longitude
    name: PlaceName | None = None


class CustodyEventIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: CustodyKind
    place: PlaceIn
    occurred_at: AwareDatetime
    """When it happened, by the recorder's clock, with its UTC offset."""
    note: Note | None = None
    party_id: Id | None = None
    """Only the operator names the party; an organisation records as itself."""


class HandoverIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to_organisation_id: Id
    place: PlaceIn
    occurred_at: AwareDatetime
    note: Note | None = None


class PlaceOut(msgspec.Struct, frozen=True, kw_only=True):
    lat: float
    lon: float
    name: str | None


class SignerOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A signer; the person's ``user_id``, ``name`` and ``email`` are present for a ``user`` signer only."""

    by: SignerKind
    organisation_id: int | None
    token_id: int | None
    tracker_id: int | None
    user_id: int | None = None
    """A ``user`` signer: the person, with the name and email they had when they signed."""
    name: str | None = None
    email: str | None = None


class CustodyEventOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    seq: int
    kind: CustodyKind
    party_id: int | None
    counterparty_id: int | None
    place: PlaceOut
    occurred_at: datetime
    recorded_at: datetime
    signers: list[SignerOut]
    note: str | None
    prev_hash: str
    hash: str


class HandoverOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    shipment_id: int
    from_organisation_id: int
    to_organisation_id: int
    place: PlaceOut
    occurred_at: datetime
    note: str | None
    proposed_by: SignerOut
    proposed_at: datetime
    accepted_by: SignerOut | None
    accepted_at: datetime | None
    event_seq: int | None


class CustodyOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    custodian_id: int | None
    """Who holds the shipment after the last event (``null``: nobody has signed for it yet)."""
    events: list[CustodyEventOut]
    pending_handovers: list[HandoverOut]


class ChainVerdictOut(msgspec.Struct, frozen=True, kw_only=True):
    intact: bool
    checked: int
    """Events found sound from the start of the chain."""
    broken_at_seq: int | None
    problem: str | None


def _location(place: PlaceIn) -> Location:
    return Location(lat=place.lat, lon=place.lon, name=place.name)


def _place_out(place: Location) -> PlaceOut:
    return PlaceOut(lat=place.lat, lon=place.lon, name=place.name)


def _signer_out(signer: Signer) -> SignerOut:
    return SignerOut(
        by=signer.by,
        organisation_id=signer.organisation_id,
        token_id=signer.token_id,
        tracker_id=signer.tracker_id,
        user_id=signer.user_id,
        name=signer.name,
        email=signer.email,
    )


def _event_out(event: CustodyEvent) -> CustodyEventOut:
    return CustodyEventOut(
        shipment_id=event.shipment_id,
        seq=event.seq,
        kind=event.kind,
        party_id=event.party_id,
        counterparty_id=event.counterparty_id,
        place=_place_out(event.place),
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        signers=[_signer_out(signer) for signer in event.signers],
        note=event.note,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def _handover_out(handover: Handover) -> HandoverOut:
    return HandoverOut(
        id=handover.id,
        shipment_id=handover.shipment_id,
        from_organisation_id=handover.from_id,
        to_organisation_id=handover.to_id,
        place=_place_out(handover.place),
        occurred_at=handover.occurred_at,
        note=handover.note,
        proposed_by=_signer_out(handover.proposer),
        proposed_at=handover.proposed_at,
        accepted_by=None if handover.acceptor is None else _signer_out(handover.acceptor),
        accepted_at=handover.accepted_at,
        event_seq=handover.event_seq,
    )


class CustodyApi(Controller):
    path = "/v1/shipments/{shipment_id:int}/custody"
    tags = ["custody"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post(
        "/",
        status_code=201,
        summary="Record a custody event (packed, picked_up, arrived, delivered, received)",
        responses=errors(401, 403, 404, 409, 422, 503, why={503: BUSY}),
    )
    async def record(
        self,
        shipment_id: PathId,
        data: JSONBody[CustodyEventIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> CustodyEventOut:
        event = await use_cases.record_event(
            store,
            principal,
            shipment_id,
            kind=data.kind,
            place=_location(data.place),
            occurred_at=data.occurred_at,
            note=data.note,
            party_id=data.party_id,
            now=now,
        )
        return _event_out(event)

    @get(
        "/",
        summary="The custody chain, the current custodian and the hand-overs awaiting acceptance",
        responses=errors(401, 404),
    )
    async def show(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> CustodyOut:
        custody = await use_cases.list_custody(store, principal, shipment_id)
        return CustodyOut(
            shipment_id=custody.shipment_id,
            custodian_id=custody.custodian_id,
            events=[_event_out(event) for event in custody.events],
            pending_handovers=[_handover_out(handover) for handover in custody.pending_handovers],
        )

    @post(
        "/handovers",
        status_code=201,
        summary="Propose handing the shipment over (the custodian)",
        description="Signed by the caller: its API token, or the person signed in to the portal (named in"
        " `proposed_by` with their name and email).",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def propose(
        self,
        shipment_id: PathId,
        data: JSONBody[HandoverIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> HandoverOut:
        handover = await use_cases.propose_handover(
            store,
            principal,
            shipment_id,
            to_organisation_id=data.to_organisation_id,
            place=_location(data.place),
            occurred_at=data.occurred_at,
            note=data.note,
            now=now,
        )
        return _handover_out(handover)

    @post(
        "/handovers/{handover_id:int}/accept",
        status_code=201,
        summary="Accept a hand-over (the receiving organisation); it joins the chain signed by both sides",
        description="Each side signs with its API token or as the person signed in to the portal; the event's"
        " `signers` are the proposer, then the caller.",
        responses=errors(401, 403, 404, 409, 422, 503, why={503: BUSY}),
    )
    async def accept(
        self,
        shipment_id: PathId,
        handover_id: PathId,
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> CustodyEventOut:
        event = await use_cases.accept_handover(store, principal, shipment_id, handover_id, now=now)
        return _event_out(event)

    @get(
        "/verify",
        summary="Recompute the hash chain: intact, or where it breaks",
        responses=errors(401, 404),
    )
    async def verify(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> ChainVerdictOut:
        verdict: ChainVerdict = await use_cases.verify_custody(store, principal, shipment_id)
        return ChainVerdictOut(
            intact=verdict.intact,
            checked=verdict.checked,
            broken_at_seq=verdict.broken_at_seq,
            problem=verdict.problem,
        )
