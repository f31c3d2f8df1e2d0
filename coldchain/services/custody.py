"""Use cases of the chain of custody: record events, hand a shipment over (both sides sign), read and verify the
chain, say who held a shipment when, and record the arrival a tracker reports by entering the destination's
geofence.

Who may record: a party of the shipment (anyone else gets :class:`NotFound`) whose role grants ``custody``
(admin, logistics, carrier); a carrier only on shipments its organisation carries. An organisation records as
itself: it is the event's party, and the signer is its token or, for a person signed in to the portal, that
person (user id, name and email); the operator names the party (or takes the one the chain makes plain) and
signs as ``operator``. A hand-over is signed by each side the same way, and both signers are in its audit
entries. The chain's rules are
:mod:`coldchain.domain.custody`'s. Every append runs under the shipment's custody lock, verifies the chain
first (nothing is appended to a broken chain), publishes ``custody.recorded`` to the shipment's parties and
writes an audit entry carrying the event's hash.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.custody import (
    Admission,
    ChainVerdict,
    CustodyConflict,
    CustodyError,
    CustodyEvent,
    CustodyKind,
    Handover,
    Location,
    Signer,
    admit,
    current_custodian,
    expected_party,
    first_arrival,
    seal,
    verify_chain,
)
from coldchain.domain.custody import custodian_at as custodian_in_chain
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Shipment
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound
from coldchain.storage import Store, Transaction

__all__ = [
    "CustodyLog",
    "accept_handover",
    "custodian_at",
    "custodians_at",
    "list_custody",
    "notice_arrival",
    "propose_handover",
    "record_event",
    "verify_custody",
]

log = logging.getLogger("coldchain.custody")

ARRIVAL_MAX_AHEAD = timedelta(days=1)
"""An automatic arrival trusts the tracker's clock as far as ingest does (``COLDCHAIN_MAX_FUTURE_S``' default):
a reading further ahead is quarantined before it gets here."""


class CustodyLog(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment's chain as stored, who holds the shipment now, and the hand-overs awaiting acceptance."""

    shipment_id: int
    custodian_id: int | None
    events: list[CustodyEvent]
    pending_handovers: list[Handover]


def _detail(fields: dict[str, object]) -> str:
    return msgspec.json.encode(fields).decode()


def _check_recorder(principal: Principal, shipment: Shipment) -> None:
    require(principal, "custody")
    if principal.role == "carrier" and principal.organisation_id not in shipment.carriers:
        raise Forbidden(
            f"a carrier records custody only on shipments its organisation carries, and it carries no leg of"
            f" shipment {shipment.id}"
        )


def _signer(principal: Principal) -> Signer:
    if principal.organisation_id is None:
        return Signer(by="operator")
    if principal.user_id is not None:
        return Signer(
            by="user",
            organisation_id=principal.organisation_id,
            user_id=principal.user_id,
            name=principal.user_name,
            email=principal.user_email,
        )
    return Signer(by="token", organisation_id=principal.organisation_id, token_id=principal.token_id)


def _signed_by(signer: Signer) -> str:
    """How the audit trail names a signer: a person by name and email, like the actor of what they do."""
    match signer.by:
        case "user":
            return f"{signer.name} <{signer.email}> (org:{signer.organisation_id}/user:{signer.user_id})"
        case "token":
            return f"org:{signer.organisation_id}/token:{signer.token_id}"
        case "geofence":
            return f"geofence (tracker:{signer.tracker_id})"
        case "operator":
            return "operator"


def _admit(
    shipment: Shipment,
    events: Sequence[CustodyEvent],
    *,
    kind: CustodyKind,
    party_id: int | None,
    occurred_at: datetime,
    signers: Sequence[Signer] | None,
    now: datetime,
    to_id: int | None = None,
) -> Admission:
    try:
        return admit(
            shipment,
            events,
            kind=kind,
            party_id=party_id,
            occurred_at=occurred_at,
            signers=signers,
            now=now,
            to_id=to_id,
        )
    except CustodyConflict as exc:
        raise Conflict(str(exc)) from None
    except CustodyError as exc:
        raise Invalid(str(exc)) from None


async def _intact_chain(tx: Transaction, shipment_id: int) -> list[CustodyEvent]:
    """The shipment's chain, locked for appending; :class:`Conflict` when it is broken."""
    await tx.lock_custody(shipment_id)
    events = await tx.custody_events(shipment_id)
    verdict = verify_chain(shipment_id, events, await tx.custody_head(shipment_id))
    if not verdict.intact:
        raise Conflict(
            f"the custody chain of shipment {shipment_id} is broken at event {verdict.broken_at_seq}"
            f" ({verdict.problem}); nothing is appended to a broken chain"
        )
    return events


async def _append(
    tx: Transaction,
    *,
    actor: str,
    shipment: Shipment,
    events: Sequence[CustodyEvent],
    admission: Admission,
    kind: CustodyKind,
    place: Location,
    occurred_at: datetime,
    note: str | None,
    signers: Sequence[Signer],
    now: datetime,
) -> CustodyEvent:
    """Seal the event onto the chain, move the shipment's status, notify the parties, audit."""
    event = seal(
        shipment_id=shipment.id,
        after=events[-1].head if events else None,
        kind=kind,
        party_id=admission.party_id,
        counterparty_id=admission.counterparty_id,
        place=place,
        occurred_at=occurred_at,
        recorded_at=now,
        signers=signers,
        note=note,
    )
    await tx.append_custody_event(event)
    if admission.status != shipment.status:
        await tx.set_shipment_status(shipment.id, admission.status, now=now)
    summary: dict[str, object] = {
        "seq": event.seq,
        "kind": event.kind,
        "party_id": event.party_id,
        "counterparty_id": event.counterparty_id,
        "occurred_at": event.occurred_at,
        "hash": event.hash,
    }
    await tx.publish(
        "custody.recorded",
        organisation_ids=shipment.parties,
        subject=f"shipment:{shipment.id}",
        payload=msgspec.to_builtins({"shipment_id": shipment.id, **summary}),
        now=now,
        shipment_id=shipment.id,
    )
    summary["signers"] = [_signed_by(signer) for signer in event.signers]
    if admission.status != shipment.status:
        summary["status"] = {"from": shipment.status, "to": admission.status}
    await tx.append_audit(
        actor=actor, action="custody.recorded", subject=f"shipment:{shipment.id}", detail=_detail(summary), now=now
    )
    if admission.status == "delivered" and shipment.status != "delivered":
        # Imported here: decisions judge the shipment (services.evaluation), which itself imports this module.
        from coldchain.services.decisions import tell_decision_needed

        delivered = await tx.get_shipment(shipment.id)
        assert delivered is not None
        await tell_decision_needed(tx, delivered, now=now)
    return event


async def record_event(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    kind: CustodyKind,
    place: Location,
    occurred_at: datetime,
    note: str | None = None,
    party_id: int | None = None,
    now: datetime,
) -> CustodyEvent:
    """Append ``kind`` to the shipment's chain, recorded and signed by the caller.

    ``party_id``: only the operator names it (default: the party the chain makes plain, see
    :func:`~coldchain.domain.custody.expected_party`). A hand-over goes through :func:`propose_handover`.
    """
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        _check_recorder(principal, shipment)
        if kind == "handed_over":
            raise Invalid(
                "kind: a hand-over needs both sides: the custodian proposes it (POST .../custody/handovers) and the"
                " receiving organisation accepts it"
            )
        events = await _intact_chain(tx, shipment_id)
        party: int | None
        if principal.organisation_id is not None:
            if party_id is not None and party_id != principal.organisation_id:
                raise Invalid("party_id: an organisation records custody as itself; only the operator names a party")
            party = principal.organisation_id
        else:
            party = party_id if party_id is not None else expected_party(shipment, events, kind)
            if party is None:
                raise Invalid(f"party_id: name the organisation the operator records {kind} for")
        signers = [_signer(principal)]
        admission = _admit(
            shipment, events, kind=kind, party_id=party, occurred_at=occurred_at, signers=signers, now=now
        )
        return await _append(
            tx,
            actor=principal.actor,
            shipment=shipment,
            events=events,
            admission=admission,
            kind=kind,
            place=place,
            occurred_at=occurred_at,
            note=note,
            signers=signers,
            now=now,
        )


async def propose_handover(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    to_organisation_id: int,
    place: Location,
    occurred_at: datetime,
    note: str | None = None,
    now: datetime,
) -> Handover:
    """The custodian proposes handing the shipment to another of its carriers; nothing joins the chain until
    that organisation accepts (:func:`accept_handover`). The proposal is checked against the chain now and again
    at acceptance."""
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        _check_recorder(principal, shipment)
        if principal.organisation_id is None:
            raise Forbidden(
                "a hand-over is signed by the two organisations themselves (an API token or a person of each),"
                " not by the operator"
            )
        events = await _intact_chain(tx, shipment_id)
        _admit(
            shipment,
            events,
            kind="handed_over",
            party_id=principal.organisation_id,
            to_id=to_organisation_id,
            occurred_at=occurred_at,
            signers=None,
            now=now,
        )
        handover = await tx.insert_handover(
            shipment_id=shipment_id,
            from_id=principal.organisation_id,
            to_id=to_organisation_id,
            place=place,
            occurred_at=occurred_at,
            note=note,
            proposer=_signer(principal),
            proposed_at=now,
        )
        await tx.append_audit(
            actor=principal.actor,
            action="custody.handover_proposed",
            subject=f"shipment:{shipment_id}",
            detail=_detail(
                {
                    "handover": handover.id,
                    "from": handover.from_id,
                    "to": handover.to_id,
                    "proposed_by": _signed_by(handover.proposer),
                }
            ),
            now=now,
        )
    return handover


async def accept_handover(
    store: Store, principal: Principal, shipment_id: int, handover_id: int, *, now: datetime
) -> CustodyEvent:
    """The receiving organisation accepts a proposed hand-over: it joins the chain signed by both sides."""
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        _check_recorder(principal, shipment)
        handover = await tx.get_handover(shipment_id, handover_id)
        if handover is None:
            raise NotFound(f"shipment {shipment_id} has no hand-over {handover_id}")
        if principal.organisation_id != handover.to_id:
            raise Forbidden(f"only organisation {handover.to_id}, which receives hand-over {handover_id}, accepts it")
        if handover.event_seq is not None:
            raise Conflict(f"hand-over {handover_id} is already accepted (custody event {handover.event_seq})")
        events = await _intact_chain(tx, shipment_id)
        signers = [handover.proposer, _signer(principal)]
        admission = _admit(
            shipment,
            events,
            kind="handed_over",
            party_id=handover.from_id,
            to_id=handover.to_id,
            occurred_at=handover.occurred_at,
            signers=signers,
            now=now,
        )
        event = await _append(
            tx,
            actor=principal.actor,
            shipment=shipment,
            events=events,
            admission=admission,
            kind="handed_over",
            place=handover.place,
            occurred_at=handover.occurred_at,
            note=handover.note,
            signers=signers,
            now=now,
        )
        if not await tx.accept_handover(handover_id, acceptor=signers[1], accepted_at=now, event_seq=event.seq):
            raise Conflict(f"hand-over {handover_id} was accepted meanwhile")
    return event


async def list_custody(store: Store, principal: Principal, shipment_id: int) -> CustodyLog:
    """The chain as stored (verify it with :func:`verify_custody`), the custodian after it, pending hand-overs."""
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        events = await tx.custody_events(shipment_id)
        pending = await tx.pending_handovers(shipment_id)
    return CustodyLog(
        shipment_id=shipment_id, custodian_id=current_custodian(events), events=events, pending_handovers=pending
    )


async def verify_custody(store: Store, principal: Principal, shipment_id: int) -> ChainVerdict:
    """Recompute the shipment's stored chain against its head (under the custody lock, so an append in flight
    is seen whole or not at all)."""
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        await tx.lock_custody(shipment_id, appending=False)
        return verify_chain(shipment_id, await tx.custody_events(shipment_id), await tx.custody_head(shipment_id))


async def custodian_at(tx: Transaction, shipment_id: int, moment: datetime) -> int | None:
    """The organisation holding the shipment at ``moment`` (``None`` before anyone signed for it), for
    attributing what happened then (an excursion) inside the caller's transaction."""
    return custodian_in_chain(await tx.custody_events(shipment_id), moment)


async def custodians_at(tx: Transaction, shipment_id: int, moments: Iterable[datetime]) -> dict[datetime, int | None]:
    """:func:`custodian_at` for each of ``moments``, reading the chain of custody once (the excursions an ingest
    batch stores learn their custodians together)."""
    wanted = set(moments)
    if not wanted:
        return {}
    events = await tx.custody_events(shipment_id)
    return {moment: custodian_in_chain(events, moment) for moment in wanted}


async def notice_arrival(tx: Transaction, tracker_id: int, readings: Sequence[Reading], *, now: datetime) -> None:
    """Record an automatic ``arrived`` custody event when a just-stored reading lies inside the destination
    geofence of the in-transit shipment the tracker was assigned to at that reading's time.

    Runs inside the ingest transaction, so it is cheap when there is nothing to do: no query for a batch
    without positions, one query otherwise (the tracker's assignments to in-transit shipments with no arrival
    yet), and geodesics only for positions near a destination. The event is the shipment's only arrival
    (idempotent: a second batch, a replay, another tracker of the same shipment add none), signed ``geofence``
    with the tracker's id, at the earliest inside reading's device time, with the custodian of that moment as
    its party. An arrival the chain refuses (a broken chain, a reading older than the last event) is skipped,
    never an ingest error.
    """
    if not any(r.latitude is not None and r.longitude is not None for r in readings):
        return  # no position (first_arrival passes over the readings without one)
    for watch in await tx.arrival_watch(tracker_id):
        if first_arrival(watch, readings) is None:
            continue
        await tx.lock_custody(watch.shipment_id)
        shipment = await tx.get_shipment(watch.shipment_id)
        assert shipment is not None
        events = await tx.custody_events(watch.shipment_id)
        verdict = verify_chain(shipment.id, events, await tx.custody_head(shipment.id))
        if not verdict.intact:
            log.warning("shipment %d: arrival not recorded, custody chain broken: %s", shipment.id, verdict.problem)
            continue
        if any(event.kind == "arrived" for event in events):
            continue  # recorded meanwhile by a concurrent batch
        reading = first_arrival(watch, readings, not_before=events[-1].occurred_at if events else None)
        if reading is None:
            continue
        signers = [Signer(by="geofence", tracker_id=tracker_id)]
        party = current_custodian(events)
        try:
            admission = admit(
                shipment,
                events,
                kind="arrived",
                party_id=party,
                occurred_at=reading.device_time,
                signers=signers,
                now=now,
                max_ahead=ARRIVAL_MAX_AHEAD,
            )
        except CustodyError as exc:
            log.info("shipment %d: automatic arrival not recorded: %s", shipment.id, exc)
            continue
        assert reading.latitude is not None and reading.longitude is not None
        await _append(
            tx,
            actor=f"tracker:{tracker_id}",
            shipment=shipment,
            events=events,
            admission=admission,
            kind="arrived",
            place=Location(lat=reading.latitude, lon=reading.longitude, name=watch.destination.name),
            occurred_at=reading.device_time,
            note=f"inside the {watch.geofence_m:g} m geofence of the destination (tracker reading {reading.seq})",
            signers=signers,
            now=now,
        )
