"""The ETA use cases on each engine: the estimate from stored GPS readings, and the refresh job's at-risk
notification (once when a shipment becomes at risk, not on every refresh)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from coldchain.domain.access import OPERATOR, Principal
from coldchain.domain.geo import Point, distance_m
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Place
from coldchain.services.errors import NotFound
from coldchain.services.eta import refresh_etas, shipment_eta
from coldchain.services.evaluation import budgets_left
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import Store
from tests.factories import assign, make_org, make_shipment, make_tracker

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
# A straight road north: 0.01° of latitude is about 1,113 m.
ORIGIN = Place(name="South depot", lat=50.0, lon=10.0)
DESTINATION = Place(name="North pharmacy", lat=51.0, lon=10.0)
NO_EVALUATION = SyncPolicy(evaluate=False)


def drive(minutes: int, *, lat_per_min: float = 0.01, start_seq: int = 1) -> list[Reading]:
    """A tracker driving north from the origin, one reading a minute, 5 °C."""
    return [
        Reading(
            seq=start_seq + i,
            device_time=START + timedelta(minutes=i),
            temperature_c=5.0,
            latitude=ORIGIN.lat + lat_per_min * i,
            longitude=ORIGIN.lon,
        )
        for i in range(minutes)
    ]


async def shipment_on_the_road(store: Store, *, promised_at: datetime | None) -> tuple[int, int, int]:
    shipper = await make_org(store, kind="shipper")
    carrier = await make_org(store, kind="carrier")
    shipment = await make_shipment(
        store, owner=shipper.id, carriers=[carrier.id], origin=ORIGIN, destination=DESTINATION, waypoints=(),
        promised_at=promised_at,
    )  # fmt: skip
    tracker = await make_tracker(store, shipper.id)
    await assign(store, shipment.id, tracker.id, START - timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.set_shipment_status(shipment.id, "in_transit", now=START)
    return shipment.id, tracker.id, shipper.id


async def test_the_estimate_follows_the_stored_fixes(store: Store) -> None:
    shipment_id, tracker_id, _ = await shipment_on_the_road(store, promised_at=None)
    readings = drive(31)
    await record_batch(store, tracker_id, readings, now=START + timedelta(minutes=31), policy=NO_EVALUATION)
    now = readings[-1].device_time

    eta = await shipment_eta(store, OPERATOR, shipment_id, now=now)

    assert eta.estimate is not None
    here = Point(lat=readings[-1].latitude or 0, lon=ORIGIN.lon)
    left_m = distance_m(here, Point(lat=DESTINATION.lat, lon=DESTINATION.lon))
    speed_mps = distance_m(Point(lat=50.0, lon=10.0), Point(lat=50.01, lon=10.0)) / 60
    assert eta.estimate.remaining_m == pytest.approx(left_m, rel=1e-3)
    assert eta.estimate.eta is not None
    expected = now + timedelta(seconds=left_m / speed_mps)
    assert abs((eta.estimate.eta - expected).total_seconds()) < 120
    assert not eta.at_risk


async def test_without_recent_fixes_there_is_no_estimate_and_the_silence_puts_it_at_risk(store: Store) -> None:
    shipment_id, tracker_id, _ = await shipment_on_the_road(store, promised_at=None)
    await record_batch(store, tracker_id, drive(10), now=START, policy=NO_EVALUATION)

    eta = await shipment_eta(store, OPERATOR, shipment_id, now=START + timedelta(days=3))

    assert eta.estimate is None
    assert eta.at_risk, "a null estimate never means fine"
    assert eta.reasons == ["no position for more than 24 h"]


async def test_another_organisation_gets_not_found(store: Store) -> None:
    shipment_id, _, _ = await shipment_on_the_road(store, promised_at=None)
    outsider = await make_org(store)

    with pytest.raises(NotFound):
        await shipment_eta(
            store, Principal(organisation_id=outsider.id, role="admin", token_id=1), shipment_id, now=START
        )


async def test_refresh_notifies_once_when_a_shipment_becomes_at_risk(store: Store) -> None:
    promised = START + timedelta(hours=1)  # 111 km at 67 km/h cannot be done in an hour
    shipment_id, tracker_id, shipper = await shipment_on_the_road(store, promised_at=promised)
    await record_batch(store, tracker_id, drive(20), now=START + timedelta(minutes=20), policy=NO_EVALUATION)
    now = START + timedelta(minutes=20)

    first = await refresh_etas(store, now=now)
    second = await refresh_etas(store, now=now + timedelta(minutes=5))

    async with store.transaction() as tx:
        notes = await tx.notifications(shipper)
        saved = await tx.saved_eta(shipment_id)
    at_risk = [n for n in notes if n.kind == "eta.at_risk"]
    assert (first, second) == (1, 1)
    assert len(at_risk) == 1, "an at-risk shipment is announced once, not on every refresh"
    assert at_risk[0].shipment_id == shipment_id
    assert any("promised" in reason for reason in at_risk[0].payload["reasons"])
    assert saved is not None and saved[1] is True


async def test_refresh_skips_shipments_not_in_transit(store: Store) -> None:
    shipment_id, _, _ = await shipment_on_the_road(store, promised_at=None)
    async with store.transaction() as tx:
        await tx.set_shipment_status(shipment_id, "delivered", now=START)

    assert await refresh_etas(store, now=START) == 0


async def test_an_urgent_shipment_warming_beyond_its_budget_before_arrival_is_at_risk(store: Store) -> None:
    shipper = await make_org(store, kind="shipper")
    shipment = await make_shipment(
        store, owner=shipper.id, profile_id="biologic-air-freight", origin=ORIGIN, destination=DESTINATION,
        waypoints=(), priority="urgent",
    )  # fmt: skip
    tracker = await make_tracker(store, shipper.id)
    await assign(store, shipment.id, tracker.id, START - timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.set_shipment_status(shipment.id, "in_transit", now=START)
    # Crawling north (about 4 km/h) while the load warms from 6 °C by 0.2 °C a minute: beyond 8 °C after 10 min.
    readings = [
        msgspec.structs.replace(r, temperature_c=6.0 + 0.2 * i) for i, r in enumerate(drive(31, lat_per_min=0.0006))
    ]
    await record_batch(store, tracker.id, readings, now=START + timedelta(minutes=31))  # judged: budget spent
    now = readings[-1].device_time

    eta = await shipment_eta(store, OPERATOR, shipment.id, now=now)

    async with store.transaction() as tx:
        [(rule, remaining_min)] = await budgets_left(tx, shipment)
    assert rule.delay_min == 240 and 215 < remaining_min < 225, "about 20 of the 240 minutes are spent"
    assert eta.budget_runs_out_at == now + timedelta(minutes=remaining_min)
    assert eta.estimate is not None and eta.estimate.eta is not None
    assert eta.budget_runs_out_at < eta.estimate.eta
    assert eta.at_risk
    assert any("budget" in reason for reason in eta.reasons)


async def test_an_urgent_shipment_without_a_position_says_when_its_budget_runs_out_in_utc(store: Store) -> None:
    shipper = await make_org(store, kind="shipper")
    shipment = await make_shipment(
        store, owner=shipper.id, profile_id="biologic-air-freight", origin=ORIGIN, destination=DESTINATION,
        waypoints=(), priority="urgent",
    )  # fmt: skip
    tracker = await make_tracker(store, shipper.id)
    await assign(store, shipment.id, tracker.id, START - timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.set_shipment_status(shipment.id, "in_transit", now=START)
    # No GPS: a logger that only measures, warming beyond 8 °C after 10 min.
    readings = [
        msgspec.structs.replace(r, temperature_c=6.0 + 0.2 * i, latitude=None, longitude=None)
        for i, r in enumerate(drive(31))
    ]
    await record_batch(store, tracker.id, readings, now=START + timedelta(minutes=31))

    eta = await shipment_eta(store, OPERATOR, shipment.id, now=readings[-1].device_time)

    assert eta.estimate is None
    assert eta.budget_runs_out_at is not None
    runs_out = eta.budget_runs_out_at.astimezone(UTC)
    assert f"stability budget runs out at {runs_out:%Y-%m-%d %H:%M} UTC (no recent position for an ETA)" in eta.reasons


async def test_a_standard_shipment_has_no_budget_forecast(store: Store) -> None:
    shipment_id, tracker_id, _ = await shipment_on_the_road(store, promised_at=None)
    warming = [msgspec.structs.replace(r, temperature_c=6.0 + 0.2 * i) for i, r in enumerate(drive(31))]
    await record_batch(store, tracker_id, warming, now=START + timedelta(minutes=31))

    eta = await shipment_eta(store, OPERATOR, shipment_id, now=warming[-1].device_time)

    assert eta.budget_runs_out_at is None
