"""The chain of custody, pure: the hash chain and its verification, the custody rules, who held it when, and
arrival by geofence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.custody import (
    KINDS,
    ArrivalWatch,
    ChainHead,
    ChainVerdict,
    CustodyConflict,
    CustodyError,
    CustodyEvent,
    CustodyKind,
    InvalidCustody,
    Location,
    Signer,
    admit,
    canonical_bytes,
    current_custodian,
    custodian_at,
    event_hash,
    first_arrival,
    genesis_hash,
    seal,
    verify_chain,
)
from coldchain.domain.geo import Point, distance_m
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Leg, Place, Shipment, ShipmentStatus

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SHIPPER, CARRIER_A, CARRIER_B, RECEIVER, STRANGER = 1, 2, 3, 4, 9
MUNICH = Location(lat=48.137, lon=11.575, name="Munich pharmacy")
BERLIN = Location(lat=52.52, lon=13.405, name="Berlin hub")


def shipment(status: ShipmentStatus = "planned", *, receiver: int | None = RECEIVER) -> Shipment:
    return Shipment(
        id=7,
        organisation_id=SHIPPER,
        reference="SHP-7",
        product_id=1,
        lot_id=None,
        quantity=10,
        profile_id="fridge",
        profile_version=1,
        origin=Place(name="Berlin hub", lat=52.52, lon=13.405),
        destination=Place(name="Munich pharmacy", lat=48.137, lon=11.575),
        waypoints=[],
        geofence_m=500.0,
        receiver_id=receiver,
        promised_at=None,
        priority="standard",
        status=status,
        legs=[Leg(leg_no=1, carrier_id=CARRIER_A, mode="road"), Leg(leg_no=2, carrier_id=CARRIER_B, mode="air")],
        created_at=T0,
        updated_at=T0,
    )


def token(organisation_id: int) -> Signer:
    return Signer(by="token", organisation_id=organisation_id, token_id=100 + organisation_id)


# --- The hash chain ---------------------------------------------------------------------------------------------

signers_st = st.one_of(
    st.builds(
        lambda o, t: (Signer(by="token", organisation_id=o, token_id=t),), st.integers(1, 50), st.integers(1, 50)
    ),
    st.just((Signer(by="operator"),)),
    st.builds(lambda t: (Signer(by="geofence", tracker_id=t),), st.integers(1, 50)),
)

event_fields = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "party_id": st.one_of(st.none(), st.integers(1, 50)),
        "counterparty_id": st.one_of(st.none(), st.integers(1, 50)),
        "place": st.builds(
            Location,
            lat=st.floats(-90, 90, allow_nan=False),
            lon=st.floats(-180, 180, allow_nan=False),
            name=st.one_of(st.none(), st.sampled_from(["Berlin hub", "Gate 4", "Ålesund kai", ""])),
        ),
        "step": st.integers(0, 10**6).map(lambda s: timedelta(seconds=s)),
        "signers": signers_st,
        "note": st.one_of(st.none(), st.text(st.characters(codec="utf-8"), max_size=8)),
    }
)


def build_chain(fields: Sequence[dict[str, Any]], shipment_id: int = 7) -> list[CustodyEvent]:
    chain: list[CustodyEvent] = []
    moment = T0
    for f in fields:
        moment += f["step"]
        chain.append(
            seal(
                shipment_id=shipment_id,
                after=chain[-1].head if chain else None,
                kind=f["kind"],
                party_id=f["party_id"],
                counterparty_id=f["counterparty_id"],
                place=f["place"],
                occurred_at=moment,
                recorded_at=moment + timedelta(seconds=1),
                signers=f["signers"],
                note=f["note"],
            )
        )
    return chain


def head_of(chain: Sequence[CustodyEvent]) -> ChainHead | None:
    return chain[-1].head if chain else None


def _other_kind(kind: CustodyKind) -> CustodyKind:
    return KINDS[(KINDS.index(kind) + 1) % len(KINDS)]


def _bump(value: int | None) -> int:
    return 1 if value is None else value + 1


# Chains of generated events are slow to draw on a busy machine: a slow draw is not a failure of the chain.
chains = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


# Each rewrites one stored field to a different value, leaving the stored hash as it was.
TAMPERS: dict[str, Any] = {
    "shipment_id": lambda e: {"shipment_id": e.shipment_id + 1},
    "seq": lambda e: {"seq": e.seq + 1},
    "kind": lambda e: {"kind": _other_kind(e.kind)},
    "party_id": lambda e: {"party_id": _bump(e.party_id)},
    "counterparty_id": lambda e: {"counterparty_id": _bump(e.counterparty_id)},
    "place.lat": lambda e: {
        "place": msgspec.structs.replace(e.place, lat=e.place.lat + (1 if e.place.lat < 0 else -1))
    },
    "place.name": lambda e: {"place": msgspec.structs.replace(e.place, name=(e.place.name or "") + "x")},
    "occurred_at": lambda e: {"occurred_at": e.occurred_at + timedelta(microseconds=1)},
    "recorded_at": lambda e: {"recorded_at": e.recorded_at - timedelta(minutes=5)},
    "signers": lambda e: {"signers": (*e.signers, Signer(by="operator"))},
    "note": lambda e: {"note": (e.note or "") + "!"},
    "prev_hash": lambda e: {"prev_hash": "f" * 64 if e.prev_hash != "f" * 64 else "e" * 64},
    "hash": lambda e: {"hash": "0" * 64},
}


@chains
@given(fields=st.lists(event_fields, max_size=25))
def test_an_untampered_chain_of_any_length_verifies(fields: list[dict[str, Any]]) -> None:
    chain = build_chain(fields)

    verdict = verify_chain(7, chain, head_of(chain))

    assert (verdict.intact, verdict.checked, verdict.broken_at_seq, verdict.problem) == (True, len(chain), None, None)
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))


@chains
@given(fields=st.lists(event_fields, min_size=1, max_size=12), data=st.data())
def test_any_changed_field_of_any_event_is_detected_at_that_event(fields: list[dict[str, Any]], data: Any) -> None:
    chain = build_chain(fields)
    index = data.draw(st.integers(0, len(chain) - 1), label="index")
    field = data.draw(st.sampled_from(sorted(TAMPERS)), label="field")
    tampered = list(chain)
    tampered[index] = msgspec.structs.replace(chain[index], **TAMPERS[field](chain[index]))

    verdict = verify_chain(7, tampered, head_of(chain))

    assert not verdict.intact
    assert verdict.broken_at_seq == index + 1
    assert verdict.checked == index
    assert verdict.problem


@chains
@given(fields=st.lists(event_fields, min_size=1, max_size=12), data=st.data())
def test_any_removed_event_is_detected_where_it_is_missing(fields: list[dict[str, Any]], data: Any) -> None:
    chain = build_chain(fields)
    index = data.draw(st.integers(0, len(chain) - 1), label="index")

    verdict = verify_chain(7, chain[:index] + chain[index + 1 :], head_of(chain))

    assert not verdict.intact
    assert verdict.broken_at_seq == index + 1
    assert f"event {index + 1} is missing" in (verdict.problem or "")


@chains
@given(fields=st.lists(event_fields, min_size=2, max_size=12), data=st.data())
def test_any_two_events_swapped_are_detected_at_the_first_of_them(fields: list[dict[str, Any]], data: Any) -> None:
    chain = build_chain(fields)
    i, j = sorted(data.draw(st.lists(st.integers(0, len(chain) - 1), min_size=2, max_size=2, unique=True)))
    swapped = list(chain)
    swapped[i], swapped[j] = chain[j], chain[i]

    verdict = verify_chain(7, swapped, head_of(chain))

    assert not verdict.intact
    assert verdict.broken_at_seq == i + 1


@chains
@given(fields=st.lists(event_fields, min_size=2, max_size=12), data=st.data())
def test_two_events_that_traded_sequence_numbers_are_detected(fields: list[dict[str, Any]], data: Any) -> None:
    """What ``UPDATE ... SET seq`` on two stored rows does: the rows read back in seq order, contents traded."""
    chain = build_chain(fields)
    i, j = sorted(data.draw(st.lists(st.integers(0, len(chain) - 1), min_size=2, max_size=2, unique=True)))
    traded = list(chain)
    traded[i] = msgspec.structs.replace(chain[j], seq=chain[i].seq)
    traded[j] = msgspec.structs.replace(chain[i], seq=chain[j].seq)

    verdict = verify_chain(7, traded, head_of(chain))

    assert (verdict.intact, verdict.broken_at_seq) == (False, i + 1)


def test_a_chain_must_end_exactly_where_its_recorded_head_says() -> None:
    chain = build_chain([_plain_fields() for _ in range(3)])

    assert verify_chain(7, chain[:2], ChainHead(seq=3, hash=chain[2].hash)).broken_at_seq == 3
    assert verify_chain(7, chain[:2], ChainHead(seq=2, hash=chain[2].hash)).broken_at_seq == 2
    assert verify_chain(7, chain, ChainHead(seq=2, hash=chain[1].hash)).broken_at_seq == 3


def test_events_without_a_recorded_head_are_a_broken_chain_and_no_events_without_one_an_empty_intact_chain() -> None:
    chain = build_chain([_plain_fields()])

    assert verify_chain(7, chain, None).broken_at_seq == 1
    assert verify_chain(7, [], None) == ChainVerdict(intact=True, checked=0)


def test_a_valid_chain_of_one_shipment_does_not_verify_as_another_shipments() -> None:
    chain = build_chain([_plain_fields() for _ in range(2)], shipment_id=7)

    verdict = verify_chain(8, chain, head_of(chain))

    assert (verdict.intact, verdict.broken_at_seq) == (False, 1)
    assert genesis_hash(7) != genesis_hash(8)


def test_the_canonical_bytes_are_sorted_key_json_of_every_field_but_the_hash() -> None:
    (event,) = build_chain([_plain_fields()])

    document = msgspec.json.decode(canonical_bytes(event))

    assert list(document) == sorted(document)
    assert set(document) == {
        "format", "shipment_id", "seq", "kind", "party_id", "counterparty_id", "place", "occurred_at",
        "recorded_at", "signers", "note", "prev_hash",
    }  # fmt: skip
    assert document["occurred_at"] == "2026-03-01T08:00:00.000000+00:00"
    assert event_hash(event) == event.hash


def test_the_same_instant_in_another_utc_offset_or_a_negative_zero_coordinate_hashes_the_same() -> None:
    (event,) = build_chain([{**_plain_fields(), "place": Location(lat=0.0, lon=0.0)}])
    elsewhere = msgspec.structs.replace(
        event,
        occurred_at=event.occurred_at.astimezone(timezone(timedelta(hours=-5))),
        place=Location(lat=-0.0, lon=-0.0),
    )

    assert event_hash(elsewhere) == event.hash


def _plain_fields() -> dict[str, Any]:
    return {
        "kind": "packed",
        "party_id": SHIPPER,
        "counterparty_id": None,
        "place": BERLIN,
        "step": timedelta(0),
        "signers": (token(SHIPPER),),
        "note": None,
    }


# --- The custody rules ------------------------------------------------------------------------------------------


class Journey:
    """Admits and seals events onto one shipment's chain, moving its status as the rules say."""

    def __init__(self, current: Shipment) -> None:
        self.shipment = current
        self.events: list[CustodyEvent] = []

    def record(
        self,
        kind: CustodyKind,
        party: int | None,
        at: datetime,
        *,
        to: int | None = None,
        signers: Sequence[Signer] | None = None,
    ) -> CustodyEvent:
        if signers is None:
            signers = [token(party or 0), token(to or 0)] if kind == "handed_over" else [token(party or 0)]
        admission = admit(
            self.shipment,
            self.events,
            kind=kind,
            party_id=party,
            occurred_at=at,
            signers=signers,
            now=at,
            to_id=to,
        )
        event = seal(
            shipment_id=self.shipment.id,
            after=self.events[-1].head if self.events else None,
            kind=kind,
            party_id=admission.party_id,
            counterparty_id=admission.counterparty_id,
            place=BERLIN,
            occurred_at=at,
            recorded_at=at,
            signers=signers,
        )
        self.events.append(event)
        self.shipment = msgspec.structs.replace(self.shipment, status=admission.status)
        return event


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def full_journey() -> Journey:
    journey = Journey(shipment())
    journey.record("packed", SHIPPER, hours(0))
    journey.record("picked_up", CARRIER_A, hours(1))
    journey.record("handed_over", CARRIER_A, hours(5), to=CARRIER_B)
    journey.record("arrived", CARRIER_B, hours(9))
    journey.record("delivered", CARRIER_B, hours(10))
    journey.record("received", RECEIVER, hours(10.5))
    return journey


def test_a_whole_journey_is_admitted_with_its_parties_and_moves_the_shipment_planned_to_delivered() -> None:
    journey = full_journey()

    assert [(e.kind, e.party_id, e.counterparty_id) for e in journey.events] == [
        ("packed", SHIPPER, None),
        ("picked_up", CARRIER_A, SHIPPER),
        ("handed_over", CARRIER_A, CARRIER_B),
        ("arrived", CARRIER_B, None),
        ("delivered", CARRIER_B, RECEIVER),
        ("received", RECEIVER, CARRIER_B),
    ]
    assert journey.shipment.status == "delivered"
    assert verify_chain(7, journey.events, journey.events[-1].head).intact
    assert current_custodian(journey.events) == RECEIVER


def test_the_custodian_at_any_moment_is_who_signed_for_it_last_and_a_hand_over_counts_from_its_instant() -> None:
    events = full_journey().events

    assert custodian_at(events, hours(-1)) is None
    assert custodian_at(events, hours(0)) == SHIPPER
    assert custodian_at(events, hours(1) - timedelta(microseconds=1)) == SHIPPER
    assert custodian_at(events, hours(1)) == CARRIER_A
    assert custodian_at(events, hours(4.99)) == CARRIER_A
    assert custodian_at(events, hours(5)) == CARRIER_B
    assert custodian_at(events, hours(9.5)) == CARRIER_B  # arrival changes nobody's custody
    assert custodian_at(events, hours(10)) == RECEIVER
    assert custodian_at(events, hours(100)) == RECEIVER


def test_a_shipment_put_in_transit_by_its_shipper_can_still_be_picked_up_and_stays_in_transit() -> None:
    journey = Journey(shipment("in_transit"))

    journey.record("picked_up", CARRIER_B, hours(1))

    assert (journey.shipment.status, current_custodian(journey.events)) == ("in_transit", CARRIER_B)


def _refusal(journey: Journey, kind: CustodyKind, party: int | None, at: datetime, **kwargs: Any) -> CustodyError:
    with pytest.raises(CustodyError) as caught:
        journey.record(kind, party, at, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("before", "kind", "party", "kwargs", "error", "words"),
    [
        (
            [],
            "handed_over",
            CARRIER_A,
            {"to": CARRIER_B},
            CustodyConflict,
            "recorded while a shipment is in_transit; shipment 7 is planned",
        ),
        ([], "delivered", CARRIER_A, {}, CustodyConflict, "while a shipment is delivered or in_transit"),
        ([], "received", RECEIVER, {}, CustodyConflict, "while a shipment is delivered;"),
        ([], "packed", CARRIER_A, {}, InvalidCustody, "recorded by the shipper"),
        ([], "picked_up", RECEIVER, {}, InvalidCustody, "carries none of its legs"),
        (["packed"], "packed", SHIPPER, {}, CustodyConflict, "already recorded"),
        (["picked_up"], "packed", SHIPPER, {}, CustodyConflict, "while a shipment is planned;"),
        (["picked_up"], "picked_up", CARRIER_B, {}, CustodyConflict, "already recorded"),
        (["picked_up"], "arrived", CARRIER_B, {}, CustodyConflict, "organisation 2 holds shipment 7"),
        (["picked_up"], "delivered", SHIPPER, {}, CustodyConflict, "organisation 2 holds"),
        (["picked_up"], "handed_over", CARRIER_A, {"to": RECEIVER}, InvalidCustody, "goes to a carrier"),
        (["picked_up"], "handed_over", CARRIER_A, {"to": CARRIER_A}, InvalidCustody, "already holds"),
        (["picked_up"], "handed_over", CARRIER_B, {"to": CARRIER_A}, CustodyConflict, "organisation 2 holds"),
        (["picked_up", "arrived"], "arrived", CARRIER_A, {}, CustodyConflict, "already recorded"),
        (["picked_up", "delivered"], "received", CARRIER_A, {}, InvalidCustody, "recorded by the receiver"),
        (["picked_up", "delivered"], "delivered", RECEIVER, {}, CustodyConflict, "already recorded"),
    ],
)
def test_an_event_out_of_order_or_by_the_wrong_party_is_refused_with_the_rule_it_breaks(
    before: list[CustodyKind],
    kind: CustodyKind,
    party: int,
    kwargs: dict[str, Any],
    error: type[CustodyError],
    words: str,
) -> None:
    journey = Journey(shipment())
    parties = {"packed": SHIPPER, "picked_up": CARRIER_A, "arrived": CARRIER_A, "delivered": CARRIER_A}
    for step, earlier in enumerate(before):
        journey.record(earlier, parties[earlier], hours(step))

    refusal = _refusal(journey, kind, party, hours(len(before)), **kwargs)

    assert isinstance(refusal, error)
    assert words in str(refusal)


def test_an_event_dated_before_the_last_one_is_refused_and_so_is_one_from_the_future() -> None:
    journey = Journey(shipment())
    journey.record("picked_up", CARRIER_A, hours(2))

    earlier = _refusal(journey, "arrived", CARRIER_A, hours(1))
    with pytest.raises(InvalidCustody, match="ahead of the service's clock"):
        admit(
            journey.shipment,
            journey.events,
            kind="arrived",
            party_id=CARRIER_A,
            occurred_at=hours(3),
            signers=[token(CARRIER_A)],
            now=hours(2),
        )

    assert isinstance(earlier, CustodyConflict)
    assert "before the last custody event (picked_up, event 1" in str(earlier)


def test_a_cancelled_shipment_takes_no_custody_event() -> None:
    journey = Journey(shipment("cancelled"))

    for kind in KINDS:
        assert isinstance(_refusal(journey, kind, CARRIER_A, hours(1), to=CARRIER_B), CustodyError)


def test_received_needs_a_receiver_and_a_token_signs_only_for_its_own_organisation() -> None:
    journey = Journey(shipment("delivered", receiver=None))
    with pytest.raises(InvalidCustody, match="names no receiver"):
        journey.record("received", RECEIVER, hours(1))

    journey = Journey(shipment())
    with pytest.raises(InvalidCustody, match="signs custody events for itself"):
        journey.record("packed", SHIPPER, hours(0), signers=[token(CARRIER_A)])


def test_a_hand_over_needs_the_signatures_of_both_sides_in_order() -> None:
    journey = Journey(shipment())
    journey.record("picked_up", CARRIER_A, hours(1))

    for signers in (
        [token(CARRIER_A)],
        [token(CARRIER_B), token(CARRIER_A)],
        [token(CARRIER_A), Signer(by="operator")],
    ):
        with pytest.raises(InvalidCustody, match="signed by both sides"):
            journey.record("handed_over", CARRIER_A, hours(2), to=CARRIER_B, signers=signers)
    journey.record("handed_over", CARRIER_A, hours(2), to=CARRIER_B)
    assert journey.events[-1].signers == (token(CARRIER_A), token(CARRIER_B))


def person(organisation_id: int, user_id: int) -> Signer:
    return Signer(
        by="user", organisation_id=organisation_id, user_id=user_id, name=f"User {user_id}", email=f"u{user_id}@x.org"
    )


def test_people_sign_a_hand_over_for_their_own_organisations_and_their_names_are_in_the_hash() -> None:
    journey = Journey(shipment())
    journey.record("picked_up", CARRIER_A, hours(1), signers=[person(CARRIER_A, 7)])

    for signers in (
        [person(CARRIER_B, 8), person(CARRIER_A, 7)],
        [person(CARRIER_A, 7), person(SHIPPER, 9)],
    ):
        with pytest.raises(InvalidCustody, match="signed by both sides"):
            journey.record("handed_over", CARRIER_A, hours(2), to=CARRIER_B, signers=signers)
    with pytest.raises(InvalidCustody, match="signs custody events for itself"):
        journey.record("arrived", CARRIER_A, hours(2), signers=[person(CARRIER_B, 8)])
    handed = journey.record(
        "handed_over", CARRIER_A, hours(2), to=CARRIER_B, signers=[person(CARRIER_A, 7), token(CARRIER_B)]
    )
    renamed = msgspec.structs.replace(
        handed, signers=(msgspec.structs.replace(handed.signers[0], name="Someone else"), handed.signers[1])
    )

    assert verify_chain(journey.shipment.id, journey.events, journey.events[-1].head).intact
    assert event_hash(renamed) != handed.hash


def test_only_an_arrival_may_be_signed_by_the_geofence_and_it_may_come_before_anyone_signed_for_the_shipment() -> None:
    geofence = [Signer(by="geofence", tracker_id=5)]
    journey = Journey(shipment("in_transit"))
    with pytest.raises(InvalidCustody, match="geofence records arrivals only"):
        journey.record("picked_up", CARRIER_A, hours(1), signers=geofence)

    arrival = journey.record("arrived", None, hours(2), signers=geofence)

    assert (arrival.party_id, arrival.signers) == (None, tuple(geofence))


attempts = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from([SHIPPER, CARRIER_A, CARRIER_B, RECEIVER, STRANGER]),
        st.sampled_from([CARRIER_A, CARRIER_B, RECEIVER]),
        st.integers(-60, 600),
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(attempts=attempts)
def test_whatever_is_attempted_the_admitted_chain_keeps_the_custody_rules(
    attempts: list[tuple[CustodyKind, int, int, int]],
) -> None:
    journey = Journey(shipment())
    moment = T0
    for kind, party, to, minutes in attempts:
        try:
            journey.record(kind, party, moment + timedelta(minutes=minutes), to=to)
        except CustodyError:
            continue
        moment = journey.events[-1].occurred_at

    events = journey.events
    kinds = [e.kind for e in events]
    assert verify_chain(7, events, head_of(events)).intact
    assert all(a.occurred_at <= b.occurred_at for a, b in pairwise(events))
    assert all(kinds.count(kind) <= 1 for kind in KINDS if kind != "handed_over")
    assert "packed" not in kinds[1:]
    holder = None
    for event in events:
        if event.kind in ("handed_over", "arrived", "delivered"):
            assert event.party_id == holder, "only the custodian hands over, arrives and delivers"
        holder = current_custodian(events[: event.seq])
        assert holder is None or holder in (SHIPPER, CARRIER_A, CARRIER_B, RECEIVER)
    if "received" in kinds:
        assert kinds.index("delivered") < kinds.index("received")
    expected_status = "delivered" if "delivered" in kinds else "in_transit" if "picked_up" in kinds else "planned"
    assert journey.shipment.status == expected_status


# --- Arrival by geofence ----------------------------------------------------------------------------------------

WATCH = ArrivalWatch(shipment_id=7, starts_at=T0, ends_at=hours(48), destination=MUNICH, geofence_m=500.0)


def at(seq: int, minutes: int, lat: float | None, lon: float | None) -> Reading:
    return Reading(seq=seq, device_time=T0 + timedelta(minutes=minutes), latitude=lat, longitude=lon)


def test_the_earliest_reading_inside_the_geofence_is_the_arrival_whatever_the_order_of_the_batch() -> None:
    readings = [
        at(4, 40, 48.1372, 11.5752),  # inside, later
        at(1, 10, 52.52, 13.405),  # Berlin
        at(3, 30, 48.1380, 11.5760),  # inside, earliest
        at(2, 20, 48.2, 11.6),  # 7 km out
        at(5, 5, None, None),
    ]

    arrival = first_arrival(WATCH, readings)

    assert arrival is not None and arrival.seq == 3


def test_the_rim_of_the_geofence_counts_and_a_metre_beyond_it_does_not() -> None:
    centre = Point(lat=MUNICH.lat, lon=MUNICH.lon)
    north = 0.0
    step = 0.001
    while step > 1e-9:  # the latitude exactly 500 m north of the centre, from below
        while distance_m(Point(lat=MUNICH.lat + north + step, lon=MUNICH.lon), centre) <= 500.0:
            north += step
        step /= 10

    assert first_arrival(WATCH, [at(1, 1, MUNICH.lat + north, MUNICH.lon)]) is not None
    assert first_arrival(WATCH, [at(1, 1, MUNICH.lat + north + 0.00001, MUNICH.lon)]) is None


def test_readings_outside_the_assignment_or_before_the_last_event_are_no_arrival() -> None:
    inside_before = at(1, -10, MUNICH.lat, MUNICH.lon)
    inside_after_end = Reading(seq=2, device_time=hours(48), latitude=MUNICH.lat, longitude=MUNICH.lon)
    inside = at(3, 30, MUNICH.lat, MUNICH.lon)

    assert first_arrival(WATCH, [inside_before, inside_after_end]) is None
    assert first_arrival(WATCH, [inside], not_before=T0 + timedelta(minutes=31)) is None
    assert first_arrival(WATCH, [inside], not_before=T0 + timedelta(minutes=30)) == inside
