"""The chain of custody at its edges: the hashed bytes pinned to a known-good value, every refusal's exact words,
and the boundaries of the geofence's cheap pre-checks.

The pinned bytes and hashes are the contract with every chain already stored: a change to the canonical form makes
old chains read as tampered, so it must be a new ``format`` and never an accident.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from geopy.distance import great_circle
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.custody import (
    Admission,
    ArrivalWatch,
    ChainHead,
    ChainVerdict,
    CustodyConflict,
    CustodyEvent,
    CustodyKind,
    InvalidCustody,
    Location,
    Signer,
    _sphere_m,
    admit,
    canonical_bytes,
    event_hash,
    expected_party,
    first_arrival,
    genesis_hash,
    seal,
    verify_chain,
)
from coldchain.domain.geo import Point, distance_m
from coldchain.domain.readings import Reading
from tests.domain.test_custody import (
    CARRIER_A,
    CARRIER_B,
    MUNICH,
    RECEIVER,
    SHIPPER,
    STRANGER,
    T0,
    Journey,
    hours,
    shipment,
    token,
)

# --- The hashed bytes, pinned ------------------------------------------------------------------------------------

ANA = Signer(by="user", organisation_id=2, user_id=11, name="Ana Ruiz", email="ana@carrier.example")


def handed_over_at_gate_4() -> CustodyEvent:
    return seal(
        shipment_id=7,
        after=None,
        kind="handed_over",
        party_id=2,
        counterparty_id=3,
        place=Location(lat=48.137, lon=-0.0, name="Gate 4"),
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))),
        recorded_at=datetime(2026, 3, 1, 8, 31, 0, 5, tzinfo=UTC),
        signers=[ANA, Signer(by="token", organisation_id=3, token_id=103)],
        note="Ålesund",
    )


def test_a_shipments_genesis_hash_is_the_sha256_of_its_format_name_and_id() -> None:
    assert genesis_hash(7) == hashlib.sha256(b"coldchain.custody/1/genesis/7").hexdigest()
    assert genesis_hash(7) == "4ca114fb46b788d8f5b71311d94f5ec6fc9ab4b570c0871fa23082992cdb5489"


def test_an_events_hashed_bytes_are_exactly_the_known_good_canonical_form() -> None:
    event = handed_over_at_gate_4()
    expected = (
        '{"counterparty_id":3,"format":"coldchain.custody/1","kind":"handed_over","note":"Ålesund",'
        '"occurred_at":"2026-03-01T08:30:00.000000+00:00","party_id":2,'
        '"place":{"lat":48.137,"lon":0.0,"name":"Gate 4"},'
        '"prev_hash":"4ca114fb46b788d8f5b71311d94f5ec6fc9ab4b570c0871fa23082992cdb5489",'
        '"recorded_at":"2026-03-01T08:31:00.000005+00:00","seq":1,"shipment_id":7,'
        '"signers":[{"by":"user","email":"ana@carrier.example","name":"Ana Ruiz","organisation_id":2,'
        '"token_id":null,"tracker_id":null,"user_id":11},'
        '{"by":"token","organisation_id":3,"token_id":103,"tracker_id":null}]}'
    ).encode()

    assert canonical_bytes(event) == expected
    assert event.hash == hashlib.sha256(expected).hexdigest()
    assert event.hash == "67daf3831a7fa673cad01f10655a3d3564adc9cd75364f58da1d288577a3a3d3"
    assert (event.occurred_at, event.recorded_at) == (datetime(2026, 3, 1, 8, 30, tzinfo=UTC), event.recorded_at)
    assert event.occurred_at.utcoffset() == timedelta(0)


@pytest.fixture
def host_in_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone set to UTC+05:30, as on a host configured for India."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("host_in_kolkata")
def test_the_hashed_bytes_and_the_refusals_do_not_depend_on_the_hosts_time_zone() -> None:
    event = handed_over_at_gate_4()

    assert event.hash == "67daf3831a7fa673cad01f10655a3d3564adc9cd75364f58da1d288577a3a3d3"
    assert event_hash(event) == event.hash
    assert event.occurred_at.utcoffset() == event.recorded_at.utcoffset() == timedelta(0)
    with pytest.raises(InvalidCustody, match=r"\(2026-03-01T08:00:00\+00:00\)"):
        admit_now(Journey(shipment()), "packed", SHIPPER, hours(1), now=T0)


def test_a_geofence_or_operator_signer_hashes_without_the_fields_of_a_person() -> None:
    event = seal(
        shipment_id=9,
        after=ChainHead(seq=4, hash="ab" * 32),
        kind="arrived",
        party_id=None,
        counterparty_id=None,
        place=Location(lat=1.5, lon=2.0),
        occurred_at=T0,
        recorded_at=T0,
        signers=[Signer(by="geofence", tracker_id=5), Signer(by="operator")],
    )
    expected = (
        '{"counterparty_id":null,"format":"coldchain.custody/1","kind":"arrived","note":null,'
        '"occurred_at":"2026-03-01T08:00:00.000000+00:00","party_id":null,'
        '"place":{"lat":1.5,"lon":2.0,"name":null},'
        f'"prev_hash":"{"ab" * 32}",'
        '"recorded_at":"2026-03-01T08:00:00.000000+00:00","seq":5,"shipment_id":9,'
        '"signers":[{"by":"geofence","organisation_id":null,"token_id":null,"tracker_id":5},'
        '{"by":"operator","organisation_id":null,"token_id":null,"tracker_id":null}]}'
    ).encode()

    assert canonical_bytes(event) == expected
    assert event_hash(event) == event.hash == hashlib.sha256(expected).hexdigest()


def test_a_naive_time_has_no_canonical_form() -> None:
    event = handed_over_at_gate_4()
    naive = msgspec.structs.replace(event, recorded_at=datetime(2026, 3, 1))  # noqa: DTZ001

    with pytest.raises(ValueError, match=r"^naive datetime: custody times must be aware$"):
        canonical_bytes(naive)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"by": "token", "token_id": 1}, "a token signer names its organisation and token"),
        ({"by": "token", "organisation_id": 1}, "a token signer names its organisation and token"),
        ({"by": "user", "user_id": 1, "email": "a@b.c"}, "a user signer names its organisation, the user and the"),
        ({"by": "user", "organisation_id": 1, "email": "a@b.c"}, "a user signer names its organisation, the user"),
        ({"by": "user", "organisation_id": 1, "user_id": 1}, "a user signer names its organisation, the user and"),
        ({"by": "geofence"}, "a geofence signer names the tracker whose reading it relied on"),
    ],
)
def test_a_signer_missing_what_identifies_it_is_refused_with_what_is_missing(
    fields: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=f"^{words}"):
        Signer(**fields)  # type: ignore[arg-type]


def test_a_signer_naming_what_identifies_it_is_accepted() -> None:
    assert Signer(by="token", organisation_id=1, token_id=2).token_id == 2
    assert Signer(by="user", organisation_id=1, user_id=2, email="a@b.c").user_id == 2
    assert Signer(by="geofence", tracker_id=3).tracker_id == 3
    assert Signer(by="operator").organisation_id is None


# --- Verification: what each break says ---------------------------------------------------------------------------


def three_events() -> list[CustodyEvent]:
    journey = Journey(shipment())
    journey.record("packed", SHIPPER, hours(0))
    journey.record("picked_up", CARRIER_A, hours(1))
    journey.record("arrived", CARRIER_A, hours(2))
    return journey.events


def test_each_break_of_a_chain_is_reported_with_where_it_is_and_what_is_wrong() -> None:
    one, two, three = three_events()

    assert verify_chain(7, [one, three], three.head) == ChainVerdict(
        intact=False, checked=1, broken_at_seq=2, problem="event 2 is missing: the next stored event is 3"
    )
    assert verify_chain(7, [one, one], three.head) == ChainVerdict(
        intact=False, checked=1, broken_at_seq=2, problem="event 1 appears where event 2 belongs (reordered)"
    )
    assert verify_chain(7, [one, two, three], None) == ChainVerdict(
        intact=False, checked=3, broken_at_seq=1, problem="3 event(s) are stored but no chain head was ever recorded"
    )
    assert verify_chain(7, [one, two, three], two.head) == ChainVerdict(
        intact=False, checked=3, broken_at_seq=3, problem="event 3 lies beyond the chain head (2 event(s))"
    )
    assert verify_chain(7, [one, two], three.head) == ChainVerdict(
        intact=False, checked=2, broken_at_seq=3, problem="event 3 is missing: the chain head records 3 event(s)"
    )
    assert verify_chain(7, [one, two, three], ChainHead(seq=3, hash=two.hash)) == ChainVerdict(
        intact=False,
        checked=3,
        broken_at_seq=3,
        problem="event 3 differs from the chain head recorded when it was appended",
    )
    assert verify_chain(7, [one, two, three], three.head) == ChainVerdict(intact=True, checked=3)


def test_an_event_that_does_not_link_or_was_altered_is_reported_in_full_words() -> None:
    one, two, three = three_events()
    relinked = seal(
        shipment_id=7,
        after=ChainHead(seq=1, hash="0" * 64),
        kind=two.kind,
        party_id=two.party_id,
        counterparty_id=two.counterparty_id,
        place=two.place,
        occurred_at=two.occurred_at,
        recorded_at=two.recorded_at,
        signers=two.signers,
    )

    assert verify_chain(7, [one, relinked, three], three.head).problem == (
        "event 2 does not link to the event before it (an earlier event was altered, removed or reordered)"
    )


# --- Who records what, and the refusals' exact words -------------------------------------------------------------


def test_the_party_expected_next_is_the_shipper_the_first_carrier_the_receiver_or_the_custodian() -> None:
    journey = Journey(shipment())
    assert expected_party(journey.shipment, journey.events, "packed") == SHIPPER
    assert expected_party(journey.shipment, journey.events, "picked_up") == CARRIER_A
    assert expected_party(journey.shipment, journey.events, "received") == RECEIVER
    assert expected_party(journey.shipment, journey.events, "arrived") is None
    assert expected_party(msgspec.structs.replace(shipment(), legs=[]), [], "picked_up") is None
    journey.record("picked_up", CARRIER_A, hours(1))
    journey.record("handed_over", CARRIER_A, hours(2), to=CARRIER_B)

    for kind in ("handed_over", "arrived", "delivered"):
        assert expected_party(journey.shipment, journey.events, kind) == CARRIER_B


def admit_now(
    journey: Journey,
    kind: CustodyKind,
    party: int | None,
    at: datetime,
    *,
    now: datetime | None = None,
    signers: list[Signer] | None = None,
    to: int | None = None,
) -> Admission:
    return admit(
        journey.shipment,
        journey.events,
        kind=kind,
        party_id=party,
        occurred_at=at,
        signers=[token(party or 0)] if signers is None else signers,
        now=at if now is None else now,
        to_id=to,
    )


def test_an_event_time_without_an_offset_is_refused_in_words() -> None:
    with pytest.raises(InvalidCustody, match=r"^occurred_at: give the time with its UTC offset$"):
        admit_now(Journey(shipment()), "packed", SHIPPER, datetime(2026, 3, 1, 8), now=T0)  # noqa: DTZ001


def test_an_event_exactly_at_the_clock_bound_or_at_the_last_events_time_is_admitted() -> None:
    journey = Journey(shipment())
    journey.record("packed", SHIPPER, hours(0))

    assert admit_now(journey, "picked_up", CARRIER_A, hours(0) + timedelta(minutes=5), now=hours(0)).status == (
        "in_transit"
    )
    assert admit_now(journey, "picked_up", CARRIER_A, hours(0)).counterparty_id == SHIPPER
    with pytest.raises(InvalidCustody) as ahead:
        admit_now(journey, "picked_up", CARRIER_A, hours(0) + timedelta(minutes=5, microseconds=1), now=hours(0))
    assert str(ahead.value) == (
        "occurred_at: 2026-03-01T08:05:00.000001+00:00 lies ahead of the service's clock"
        " (2026-03-01T08:00:00+00:00) by more than 300 s"
    )


def test_a_second_packed_is_refused_as_already_recorded_and_a_packed_after_other_events_as_not_first() -> None:
    journey = Journey(shipment())
    journey.record("packed", SHIPPER, hours(0))
    with pytest.raises(CustodyConflict, match=r"^packed is already recorded for shipment 7 \(event 1\)$"):
        admit_now(journey, "packed", SHIPPER, hours(1))

    arrived_first = Journey(shipment("in_transit"))
    arrived_first.record("arrived", None, hours(1), signers=[Signer(by="geofence", tracker_id=5)])
    arrived_first.shipment = msgspec.structs.replace(arrived_first.shipment, status="planned")
    with pytest.raises(CustodyConflict, match=r"^packed is the first custody event; shipment 7 already has 1$"):
        admit_now(arrived_first, "packed", SHIPPER, hours(2))


def test_a_pick_up_nobody_packed_is_taken_over_from_the_shipper() -> None:
    admission = admit_now(Journey(shipment("in_transit")), "picked_up", CARRIER_A, hours(1))

    assert (admission.party_id, admission.counterparty_id, admission.status) == (CARRIER_A, SHIPPER, "in_transit")


def test_an_event_of_the_custodian_before_anyone_signed_for_the_shipment_names_itself_in_the_refusal() -> None:
    journey = Journey(shipment("in_transit"))

    for kind in ("handed_over", "arrived", "delivered"):
        with pytest.raises(CustodyConflict) as refused:
            admit_now(journey, kind, CARRIER_A, hours(1), to=CARRIER_B)
        assert str(refused.value) == f"nobody has signed for shipment 7 yet: record picked_up before {kind}"


def test_a_geofence_arrival_stands_in_for_nobody_but_the_custodian_once_someone_holds_the_shipment() -> None:
    journey = Journey(shipment())
    journey.record("picked_up", CARRIER_A, hours(1))
    geofence = [Signer(by="geofence", tracker_id=5)]

    with pytest.raises(CustodyConflict, match=r"organisation 2 holds shipment 7, not organisation 9$"):
        admit_now(journey, "arrived", STRANGER, hours(2), signers=geofence)
    assert admit_now(journey, "arrived", CARRIER_A, hours(2), signers=geofence).party_id == CARRIER_A


def test_received_on_a_shipment_marked_delivered_without_a_delivery_event_is_taken_from_the_custodian() -> None:
    journey = Journey(shipment())
    journey.record("picked_up", CARRIER_A, hours(1))
    journey.shipment = msgspec.structs.replace(journey.shipment, status="delivered")

    admission = admit_now(journey, "received", RECEIVER, hours(2))

    assert (admission.party_id, admission.counterparty_id, admission.status) == (RECEIVER, CARRIER_A, "delivered")


def test_signature_refusals_say_exactly_what_is_wrong() -> None:
    journey = Journey(shipment())
    journey.record("picked_up", CARRIER_A, hours(1))

    with pytest.raises(InvalidCustody) as two_signers:
        admit_now(journey, "arrived", CARRIER_A, hours(2), signers=[token(CARRIER_A), token(CARRIER_A)])
    with pytest.raises(InvalidCustody) as one_side:
        admit_now(journey, "handed_over", CARRIER_A, hours(2), to=CARRIER_B, signers=[token(CARRIER_A)])
    with pytest.raises(InvalidCustody) as geofence_delivery:
        admit_now(journey, "delivered", CARRIER_A, hours(2), signers=[Signer(by="geofence", tracker_id=5)])
    with pytest.raises(InvalidCustody) as for_another:
        admit_now(journey, "arrived", CARRIER_A, hours(2), signers=[token(CARRIER_B)])

    assert str(two_signers.value) == "arrived has exactly one signer, got 2"
    assert str(one_side.value) == "a hand-over is signed by both sides: the giving organisation, then the receiving one"
    assert str(geofence_delivery.value) == "the geofence records arrivals only"
    assert str(for_another.value) == "organisation 3 signs custody events for itself, not for organisation 2"


# --- Arrival by geofence: the cheap pre-checks never decide ------------------------------------------------------

WATCH = ArrivalWatch(shipment_id=7, starts_at=T0, ends_at=hours(48), destination=MUNICH, geofence_m=500.0)


def rim(bearing_lat: float, bearing_lon: float) -> Location:
    """The point on the geofence's rim (500 m, geodesic) from Munich in the direction given, approached from
    inside to a micrometre."""
    centre = Point(lat=MUNICH.lat, lon=MUNICH.lon)
    inside, outside = 0.0, 0.02
    while outside - inside > 1e-11:
        middle = (inside + outside) / 2
        probe = Point(lat=MUNICH.lat + bearing_lat * middle, lon=MUNICH.lon + bearing_lon * middle)
        inside, outside = (middle, outside) if distance_m(probe, centre) <= 500.0 else (inside, middle)
    return Location(lat=MUNICH.lat + bearing_lat * inside, lon=MUNICH.lon + bearing_lon * inside)


@pytest.mark.parametrize(("north", "east"), [(0.0, 1.0), (0.0, -1.0), (1.0, 1.0), (-1.0, 0.5)])
def test_the_rim_counts_in_every_direction(north: float, east: float) -> None:
    edge = rim(north, east)

    arrival = first_arrival(WATCH, [Reading(seq=1, device_time=T0, latitude=edge.lat, longitude=edge.lon)])

    assert arrival is not None and arrival.seq == 1


def test_a_reading_at_the_first_instant_of_the_assignment_is_covered() -> None:
    reading = Reading(seq=1, device_time=T0, latitude=MUNICH.lat, longitude=MUNICH.lon)

    assert WATCH.covers(T0) and not WATCH.covers(hours(48)) and not WATCH.covers(T0 - timedelta(microseconds=1))
    assert first_arrival(WATCH, [reading]) == reading


def test_an_impossible_position_near_a_polar_destination_is_passed_over_not_the_end_of_the_search() -> None:
    pole = ArrivalWatch(
        shipment_id=7, starts_at=T0, ends_at=None, destination=Location(lat=89.9999, lon=0.0), geofence_m=500.0
    )
    beyond_the_pole = Reading(seq=1, device_time=T0, latitude=90.001, longitude=0.0)
    there = Reading(seq=2, device_time=hours(1), latitude=89.9999, longitude=0.0)

    assert first_arrival(pole, [beyond_the_pole, there]) == there


@given(
    lat1=st.floats(-89.9, 89.9),
    lon1=st.floats(-180, 180),
    dlat=st.floats(-0.5, 0.5),
    dlon=st.floats(-0.5, 0.5),
)
def test_the_sphere_stand_in_is_the_great_circle_distance_on_the_mean_radius(
    lat1: float, lon1: float, dlat: float, dlon: float
) -> None:
    lat2 = max(-90.0, min(90.0, lat1 + dlat))
    lon2 = lon1 + dlon

    expected = great_circle((lat1, lon1), (lat2, lon2), radius=6371.0088).meters

    assert _sphere_m(lat1, lon1, lat2, lon2) == pytest.approx(expected, rel=1e-9, abs=1e-6)
