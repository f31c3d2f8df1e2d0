"""The chain of custody: who held a shipment when, as a tamper-evident chain of signed events.

Events, who records them, who holds the shipment afterwards, and what they do to the shipment's status
(:data:`RULES`; anything else is refused)::

    kind         party (recorder)        counterparty                custodian after   status needed → after
    packed       the shipper             -                           the shipper       planned
    picked_up    a carrier of a leg      the custodian (or shipper)  the carrier       planned|in_transit → in_transit
    handed_over  the custodian (giving)  a carrier (receiving)       the counterparty  in_transit
    arrived      the custodian           -                           unchanged         in_transit
    delivered    the custodian           the receiver                the receiver      in_transit|delivered → delivered
    received     the receiver            who delivered               the receiver      delivered

``packed`` can only be the first event; every kind but ``handed_over`` happens at most once. ``picked_up``
accepts a shipment its shipper already put in transit (and ``delivered`` one already marked delivered) without
changing the status again; any other status change goes through
:func:`~coldchain.domain.shipments.check_transition`. Event times (``occurred_at``, the device's or the user's
clock) never run backwards along the chain, so "who held it at time t" (:func:`custodian_at`) has one answer;
an event at exactly ``t`` counts as having happened at ``t``.

Signatures: every event names who vouched for it (:class:`Signer`): an organisation's API token or one of its
people signed in to the portal, the platform operator, or the service itself (``geofence``: the automatic arrival,
with the tracker whose reading placed the shipment inside the destination's geofence). A token or a person signs
for their own organisation only; a hand-over carries two signers, the giving organisation's (who proposed it) and
the receiving one's (who accepted it), each a token or a person. These are authenticated identities, not
cryptographic signatures: certificates signed with Ed25519 come later.

The hash chain: each event's ``hash`` is the SHA-256 (hex) of its canonical bytes (:func:`canonical_bytes`:
sorted-key JSON of every field but the hash itself, including the shipment, the sequence number and
``prev_hash``); ``prev_hash`` is the hash of the event before, or the shipment's :func:`genesis_hash` for the
first. A changed field breaks the event's own hash; a removed, inserted or reordered event breaks the sequence
numbers or the link. Removing the *last* event leaves a shorter valid chain, so the store also keeps the chain's
head (:class:`ChainHead`: the last sequence number and hash), and :func:`verify_chain` checks the chain ends
there. Rewriting the whole chain and its head together is not detectable from these rows alone; the audit trail
(itself hash-chained and append-only) records every event's hash as a second witness.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import msgspec

from coldchain.domain.canonical import canonical_json
from coldchain.domain.geo import Point, within_m
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import InvalidTransition, Shipment, ShipmentStatus, check_transition

__all__ = [
    "KINDS",
    "MAX_AHEAD",
    "RULES",
    "Admission",
    "ArrivalWatch",
    "ChainHead",
    "ChainVerdict",
    "CustodyConflict",
    "CustodyError",
    "CustodyEvent",
    "CustodyKind",
    "Handover",
    "InvalidCustody",
    "Location",
    "Signer",
    "SignerKind",
    "admit",
    "canonical_bytes",
    "current_custodian",
    "custodian_after",
    "custodian_at",
    "event_hash",
    "expected_party",
    "first_arrival",
    "genesis_hash",
    "seal",
    "verify_chain",
]

CustodyKind = Literal["packed", "picked_up", "handed_over", "arrived", "delivered", "received"]
KINDS: tuple[CustodyKind, ...] = ("packed", "picked_up", "handed_over", "arrived", "delivered", "received")

SignerKind = Literal["token", "user", "operator", "geofence"]

MAX_AHEAD = timedelta(minutes=5)
"""How far ahead of the service's clock a stated event time may lie (clocks of phones and scanners drift)."""

CANONICAL_FORMAT = "coldchain.custody/1"
"""Names the canonical form inside the hashed bytes, so a later form can never collide with this one."""


class CustodyError(ValueError):
    """An event the chain of custody refuses. The message says why, for the caller.

    ::

        CustodyError
        ├── CustodyConflict   the chain's or the shipment's current state does not allow the event (409)
        └── InvalidCustody    the event contradicts itself or the shipment's parties (422)
    """


class CustodyConflict(CustodyError):
    pass


class InvalidCustody(CustodyError):
    pass


class Location(msgspec.Struct, frozen=True, kw_only=True):
    """Where an event happened: WGS-84 decimal degrees and an optional name ("Munich hub, dock 4").

    Ranges are checked at the edge (the wire types), not here: a stored event must always load, even one whose
    row was tampered with, so that verification can say what is wrong with it.
    """

    lat: float
    lon: float
    name: str | None = None


class Signer(msgspec.Struct, frozen=True, kw_only=True):
    """Who vouched for an event: ``token`` (an organisation's API token), ``user`` (a person of the organisation,
    signed in to the portal, named with their email), ``operator``, or ``geofence`` (the service, on the evidence
    of tracker ``tracker_id``)."""

    by: SignerKind
    organisation_id: int | None = None
    token_id: int | None = None
    tracker_id: int | None = None
    user_id: int | None = None
    name: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        if self.by == "token" and (self.organisation_id is None or self.token_id is None):
            raise ValueError("a token signer names its organisation and token")
        if self.by == "user" and (self.organisation_id is None or self.user_id is None or self.email is None):
            raise ValueError("a user signer names its organisation, the user and the user's email")
        if self.by == "geofence" and self.tracker_id is None:
            raise ValueError("a geofence signer names the tracker whose reading it relied on")


class CustodyEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One link of a shipment's chain. ``seq`` counts from 1 per shipment; ``recorded_at`` is the service's
    clock when the event joined the chain, ``occurred_at`` the time the recorder states (or the device time of
    the reading, for an automatic arrival)."""

    shipment_id: int
    seq: int
    kind: CustodyKind
    party_id: int | None
    counterparty_id: int | None
    place: Location
    occurred_at: datetime
    recorded_at: datetime
    signers: tuple[Signer, ...]
    note: str | None
    prev_hash: str
    hash: str

    @property
    def head(self) -> ChainHead:
        return ChainHead(seq=self.seq, hash=self.hash)


class ChainHead(msgspec.Struct, frozen=True, kw_only=True):
    """The last link of a chain as recorded when it was appended: how long the chain is and how it ends."""

    seq: int
    hash: str


class ChainVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`verify_chain` found. ``checked``: events found sound from the start of the chain;
    ``broken_at_seq``: the first sequence number that is missing, misplaced or altered."""

    intact: bool
    checked: int
    broken_at_seq: int | None = None
    problem: str | None = None


class Handover(msgspec.Struct, frozen=True, kw_only=True):
    """A hand-over proposed by the custodian ``from_id`` to ``to_id``: it joins the chain (as event
    ``event_seq``) only when ``to_id`` accepts it, so the chain's ``handed_over`` always carries both sides."""

    id: int
    shipment_id: int
    from_id: int
    to_id: int
    place: Location
    occurred_at: datetime
    note: str | None
    proposer: Signer
    proposed_at: datetime
    acceptor: Signer | None
    accepted_at: datetime | None
    event_seq: int | None


class ArrivalWatch(msgspec.Struct, frozen=True, kw_only=True):
    """A tracker's assignment ``[starts_at, ends_at)`` to an in-transit shipment whose arrival is not recorded
    yet, with the destination geofence to watch for."""

    shipment_id: int
    starts_at: datetime
    ends_at: datetime | None
    destination: Location
    geofence_m: float

    def covers(self, moment: datetime) -> bool:
        return self.starts_at <= moment and (self.ends_at is None or moment < self.ends_at)


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    """An event :func:`admit` accepts, completed: its parties and the shipment's status after it."""

    party_id: int | None
    counterparty_id: int | None
    status: ShipmentStatus


class Rule(NamedTuple):
    statuses: frozenset[ShipmentStatus]
    """The shipment statuses in which the event may be recorded."""
    target: ShipmentStatus | None
    """The status the event moves the shipment to (``None``: unchanged)."""


RULES: Mapping[CustodyKind, Rule] = {
    "packed": Rule(frozenset({"planned"}), None),
    "picked_up": Rule(frozenset({"planned", "in_transit"}), "in_transit"),
    "handed_over": Rule(frozenset({"in_transit"}), None),
    "arrived": Rule(frozenset({"in_transit"}), None),
    "delivered": Rule(frozenset({"in_transit", "delivered"}), "delivered"),
    "received": Rule(frozenset({"delivered"}), None),
}

_ONCE: frozenset[CustodyKind] = frozenset({"packed", "picked_up", "arrived", "delivered", "received"})
_ORGANISATION_SIGNERS: frozenset[SignerKind] = frozenset({"token", "user"})
"""Signers that act for one organisation (its API token, or one of its people)."""


# --- The hash chain -------------------------------------------------------------------------------------------


def genesis_hash(shipment_id: int) -> str:
    """The ``prev_hash`` of a shipment's first event: its own per shipment, so no chain fits another shipment."""
    return hashlib.sha256(f"{CANONICAL_FORMAT}/genesis/{shipment_id}".encode()).hexdigest()


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: custody times must be aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _degrees(value: float) -> float:
    # -0.0 + 0.0 is 0.0: SQLite may store a zero REAL as an integer and give back +0.0, so the sign of a zero
    # must not reach the hash.
    return float(value) + 0.0


def canonical_bytes(event: CustodyEvent) -> bytes:
    """The bytes an event's hash covers: sorted-key JSON of every field but ``hash``; times in UTC with
    microseconds (what both engines keep), coordinates as shortest round-trip floats."""
    return canonical_json(
        {
            "format": CANONICAL_FORMAT,
            "shipment_id": event.shipment_id,
            "seq": event.seq,
            "kind": event.kind,
            "party_id": event.party_id,
            "counterparty_id": event.counterparty_id,
            "place": {"lat": _degrees(event.place.lat), "lon": _degrees(event.place.lon), "name": event.place.name},
            "occurred_at": _utc_text(event.occurred_at),
            "recorded_at": _utc_text(event.recorded_at),
            "signers": [_canonical_signer(s) for s in event.signers],
            "note": event.note,
            "prev_hash": event.prev_hash,
        }
    )


def _canonical_signer(signer: Signer) -> dict[str, object]:
    fields: dict[str, object] = {
        "by": signer.by,
        "organisation_id": signer.organisation_id,
        "token_id": signer.token_id,
        "tracker_id": signer.tracker_id,
    }
    if signer.by == "user":  # the person is part of what the hash covers; other signers hash as they always did
        fields.update(user_id=signer.user_id, name=signer.name, email=signer.email)
    return fields


def event_hash(event: CustodyEvent) -> str:
    """SHA-256 (hex) of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def seal(
    *,
    shipment_id: int,
    after: ChainHead | None,
    kind: CustodyKind,
    party_id: int | None,
    counterparty_id: int | None,
    place: Location,
    occurred_at: datetime,
    recorded_at: datetime,
    signers: Sequence[Signer],
    note: str | None = None,
) -> CustodyEvent:
    """The next event of the chain whose head is ``after`` (``None``: the first event), with its hash."""
    unsealed = CustodyEvent(
        shipment_id=shipment_id,
        seq=1 if after is None else after.seq + 1,
        kind=kind,
        party_id=party_id,
        counterparty_id=counterparty_id,
        place=place,
        occurred_at=occurred_at.astimezone(UTC),
        recorded_at=recorded_at.astimezone(UTC),
        signers=tuple(signers),
        note=note,
        prev_hash=genesis_hash(shipment_id) if after is None else after.hash,
        hash="",
    )
    return msgspec.structs.replace(unsealed, hash=event_hash(unsealed))


def verify_chain(shipment_id: int, events: Iterable[CustodyEvent], head: ChainHead | None) -> ChainVerdict:
    """Recompute the chain of ``events`` (as stored, in the order given) and say where it first breaks.

    Each event must carry the next sequence number (1, 2, 3, ...), belong to ``shipment_id``, link to the hash
    before it, and hash to its stored ``hash``; the last must match ``head`` (``None``: nothing was ever
    appended, so there must be no event). A changed field breaks at that event; a removed event breaks where
    its number is missing (at the end: where the head says the chain goes on); a reordered pair breaks at the
    first of the two positions.
    """
    prev_hash, checked = genesis_hash(shipment_id), 0

    def broken(seq: int, problem: str) -> ChainVerdict:
        return ChainVerdict(intact=False, checked=checked, broken_at_seq=seq, problem=problem)

    for expected, event in enumerate(events, start=1):
        if event.seq > expected:
            return broken(expected, f"event {expected} is missing: the next stored event is {event.seq}")
        if event.seq < expected:
            return broken(expected, f"event {event.seq} appears where event {expected} belongs (reordered)")
        if event.shipment_id != shipment_id:
            return broken(expected, f"event {expected} names shipment {event.shipment_id}, not {shipment_id}")
        if event.prev_hash != prev_hash:
            return broken(
                expected,
                f"event {expected} does not link to the event before it (an earlier event was altered, removed"
                " or reordered)",
            )
        if event_hash(event) != event.hash:
            return broken(expected, f"event {expected} was altered: its content no longer matches its hash")
        prev_hash, checked = event.hash, expected
    if head is None:
        if checked:
            return broken(1, f"{checked} event(s) are stored but no chain head was ever recorded")
        return ChainVerdict(intact=True, checked=0)
    if head.seq > checked:
        return broken(checked + 1, f"event {checked + 1} is missing: the chain head records {head.seq} event(s)")
    if head.seq < checked:
        return broken(head.seq + 1, f"event {head.seq + 1} lies beyond the chain head ({head.seq} event(s))")
    if head.hash != prev_hash:
        return broken(checked, f"event {checked} differs from the chain head recorded when it was appended")
    return ChainVerdict(intact=True, checked=checked)


# --- Who holds the shipment -----------------------------------------------------------------------------------


def custodian_after(event: CustodyEvent, holder: int | None) -> int | None:
    """Who holds the shipment after ``event``, given ``holder`` held it before."""
    match event.kind:
        case "packed" | "picked_up" | "received":
            return event.party_id
        case "handed_over" | "delivered":
            return event.counterparty_id
        case "arrived":
            return holder


def current_custodian(events: Iterable[CustodyEvent]) -> int | None:
    """Who holds the shipment after the whole chain (``None``: nobody has signed for it yet)."""
    holder: int | None = None
    for event in events:
        holder = custodian_after(event, holder)
    return holder


def custodian_at(events: Iterable[CustodyEvent], moment: datetime) -> int | None:
    """The organisation holding the shipment at ``moment``: the custodian after the last event (in chain
    order) that occurred at or before it. ``None`` before the first event (nobody has signed for it yet)."""
    holder: int | None = None
    for event in events:
        if event.occurred_at > moment:
            break
        holder = custodian_after(event, holder)
    return holder


def expected_party(shipment: Shipment, events: Sequence[CustodyEvent], kind: CustodyKind) -> int | None:
    """The organisation that records ``kind`` next, where the chain makes it plain (the operator's default):
    the shipper packs, the first leg's carrier picks up, the receiver receives, the custodian does the rest."""
    match kind:
        case "packed":
            return shipment.organisation_id
        case "picked_up":
            return shipment.legs[0].carrier_id if shipment.legs else None
        case "received":
            return shipment.receiver_id
        case _:
            return current_custodian(events)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def admit(
    shipment: Shipment,
    events: Sequence[CustodyEvent],
    *,
    kind: CustodyKind,
    party_id: int | None,
    occurred_at: datetime,
    signers: Sequence[Signer] | None,
    now: datetime,
    to_id: int | None = None,
    max_ahead: timedelta = MAX_AHEAD,
) -> Admission:
    """Whether ``kind`` by ``party_id`` may follow ``events`` (the shipment's intact chain) now; the completed
    event's parties and the shipment's next status, or :class:`CustodyConflict` / :class:`InvalidCustody`.

    ``to_id`` is the receiving organisation of a hand-over. ``signers`` ``None`` admits a hand-over proposal,
    whose second signature comes with the acceptance (admitted again then, against the chain as it is then).
    """
    rule = RULES[kind]
    if occurred_at.tzinfo is None:
        raise InvalidCustody("occurred_at: give the time with its UTC offset")
    if occurred_at > now + max_ahead:
        raise InvalidCustody(
            f"occurred_at: {_iso(occurred_at)} lies ahead of the service's clock ({_iso(now)}) by more than"
            f" {int(max_ahead.total_seconds())} s"
        )
    last = events[-1] if events else None
    if last is not None and occurred_at < last.occurred_at:
        raise CustodyConflict(
            f"occurred_at {_iso(occurred_at)} is before the last custody event ({last.kind}, event {last.seq},"
            f" at {_iso(last.occurred_at)}): custody events are recorded in the order they happen"
        )
    if shipment.status not in rule.statuses:
        needed = " or ".join(sorted(rule.statuses))
        raise CustodyConflict(
            f"{kind} is recorded while a shipment is {needed}; shipment {shipment.id} is {shipment.status}"
        )
    if kind in _ONCE:
        earlier = next((event for event in events if event.kind == kind), None)
        if earlier is not None:
            raise CustodyConflict(f"{kind} is already recorded for shipment {shipment.id} (event {earlier.seq})")
    if kind == "packed" and events:
        raise CustodyConflict(f"packed is the first custody event; shipment {shipment.id} already has {len(events)}")

    holder = current_custodian(events)
    counterparty_id: int | None = None
    match kind:
        case "packed":
            if party_id != shipment.organisation_id:
                raise InvalidCustody(f"packed is recorded by the shipper, organisation {shipment.organisation_id}")
        case "picked_up":
            if party_id not in shipment.carriers:
                raise InvalidCustody(
                    f"picked_up is recorded by a carrier of the shipment; organisation {party_id} carries none of"
                    f" its legs"
                )
            counterparty_id = shipment.organisation_id if holder is None else holder
        case "handed_over":
            _check_holder(shipment, kind, party_id, holder)
            if to_id is None or to_id not in shipment.carriers:
                raise InvalidCustody(
                    f"to_organisation_id: a hand-over goes to a carrier of the shipment (carriers:"
                    f" {sorted(shipment.carriers)}); the receiver takes over with delivered"
                )
            if to_id == party_id:
                raise InvalidCustody(f"to_organisation_id: organisation {to_id} already holds the shipment")
            counterparty_id = to_id
        case "arrived":
            geofence = signers is not None and any(signer.by == "geofence" for signer in signers)
            if not (geofence and holder is None):
                _check_holder(shipment, kind, party_id, holder)
        case "delivered":
            _check_holder(shipment, kind, party_id, holder)
            counterparty_id = shipment.receiver_id
        case "received":
            if shipment.receiver_id is None:
                raise InvalidCustody(f"shipment {shipment.id} names no receiver to record received")
            if party_id != shipment.receiver_id:
                raise InvalidCustody(f"received is recorded by the receiver, organisation {shipment.receiver_id}")
            delivery = next((event for event in events if event.kind == "delivered"), None)
            counterparty_id = holder if delivery is None else delivery.party_id
    if signers is not None:
        _check_signers(kind, party_id, counterparty_id, signers)

    status = shipment.status
    if rule.target is not None and status != rule.target:
        try:
            check_transition(status, rule.target)
        except InvalidTransition as exc:
            raise CustodyConflict(str(exc)) from None
        status = rule.target
    return Admission(party_id=party_id, counterparty_id=counterparty_id, status=status)


def _check_holder(shipment: Shipment, kind: CustodyKind, party_id: int | None, holder: int | None) -> None:
    if holder is None:
        raise CustodyConflict(f"nobody has signed for shipment {shipment.id} yet: record picked_up before {kind}")
    if party_id != holder:
        raise CustodyConflict(
            f"{kind} is recorded by the custodian: organisation {holder} holds shipment {shipment.id}, not"
            f" organisation {party_id}"
        )


def _check_signers(
    kind: CustodyKind, party_id: int | None, counterparty_id: int | None, signers: Sequence[Signer]
) -> None:
    """A token or a person signs for their own organisation; a hand-over is signed by the giving side, then the
    receiving one."""
    if kind == "handed_over":
        sides = [(signer.by in _ORGANISATION_SIGNERS, signer.organisation_id) for signer in signers]
        if sides != [(True, party_id), (True, counterparty_id)]:
            raise InvalidCustody("a hand-over is signed by both sides: the giving organisation, then the receiving one")
        return
    if len(signers) != 1:
        raise InvalidCustody(f"{kind} has exactly one signer, got {len(signers)}")
    signer = signers[0]
    if signer.by == "geofence" and kind != "arrived":
        raise InvalidCustody("the geofence records arrivals only")
    if signer.by in _ORGANISATION_SIGNERS and signer.organisation_id != party_id:
        raise InvalidCustody(
            f"organisation {signer.organisation_id} signs custody events for itself, not for organisation {party_id}"
        )


# --- Arrival by geofence ----------------------------------------------------------------------------------------

#: Mean Earth radius (IUGG), for the cheap pre-check below.
_MEAN_RADIUS_M = 6_371_008.8
#: A sphere of mean radius is off the WGS-84 geodesic by at most about 0.56 % (the local radii of curvature run
#: from 6,335 to 6,400 km); with this margin the pre-check never rules out a position the geodesic puts inside.
_SPHERE_MARGIN = 1.01
#: The shortest degree of latitude on WGS-84 (at the equator, 110,574 m), rounded down: no two positions further
#: apart in latitude than ``d / _MIN_METRES_PER_DEGREE_LAT`` degrees are within ``d`` metres of each other.
_MIN_METRES_PER_DEGREE_LAT = 110_000.0


def _sphere_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on the mean sphere: a fast stand-in that only decides when to ask the geodesic."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * _MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def first_arrival(
    watch: ArrivalWatch, readings: Iterable[Reading], *, not_before: datetime | None = None
) -> Reading | None:
    """The earliest of ``readings`` that the watched assignment covers, at or after ``not_before``, whose
    position lies inside the destination's geofence (geodesic, the rim counts); ``None`` when there is none.

    Runs at every positioned batch, so positions are first ruled out cheaply: by latitude alone, then on the
    sphere; only those left near the destination cost a geodesic.
    """
    centre = Point(lat=watch.destination.lat, lon=watch.destination.lon)
    reach_m = watch.geofence_m * _SPHERE_MARGIN
    reach_deg = reach_m / _MIN_METRES_PER_DEGREE_LAT
    near = [
        r
        for r in readings
        if r.latitude is not None
        and r.longitude is not None
        and abs(r.latitude - centre.lat) <= reach_deg
        and watch.covers(r.device_time)
        and (not_before is None or r.device_time >= not_before)
        and _sphere_m(r.latitude, r.longitude, centre.lat, centre.lon) <= reach_m
    ]
    for reading in sorted(near, key=lambda r: (r.device_time, r.seq)):
        assert reading.latitude is not None and reading.longitude is not None
        try:
            position = Point(lat=reading.latitude, lon=reading.longitude)
        except ValueError:
            continue
        if within_m(position, centre, watch.geofence_m):
            return reading
    return None
