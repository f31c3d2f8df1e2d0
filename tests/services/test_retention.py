"""Retention of readings on each engine: whole months past the cut-off go (a partition dropped on PostgreSQL), each
shipment's certificate can still be issued with the same content afterwards, every removal is in the audit trail,
and a month holding readings of a shipment still under way is kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from coldchain.domain.access import OPERATOR
from coldchain.domain.readings import Reading
from coldchain.domain.retention import GDP_MINIMUM_DAYS
from coldchain.services.certificates import certificate, certificate_content
from coldchain.services.exports import readings_csv_sha256
from coldchain.services.retention import MonthRemoved, RetentionPolicy, apply_retention, prepare_reading_months
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import Store
from tests.factories import assign, make_org, make_tracker
from tests.services.test_evaluation_ingest import PROFILE, shipment_of, stored_profile

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
FIVE_YEARS = RetentionPolicy(days=GDP_MINIMUM_DAYS)  # the cut-off falls on 2022-03-10 12:00
TRIP = datetime(2022, 1, 20, 6, 0, tzinfo=UTC)
JANUARY, FEBRUARY, MARCH = date(2022, 1, 1), date(2022, 2, 1), date(2022, 3, 1)
LIVE = SyncPolicy(max_future=timedelta(days=36_500))


def trip_log(tracker_seq: int = 1) -> list[Reading]:
    """Every 30 min from 20 January to 2 March 2022 at 5 °C, with a warm spell of 3 h on 25 January."""
    warm = (TRIP + timedelta(days=5), TRIP + timedelta(days=5, hours=3))
    readings = []
    moment = TRIP
    while moment < datetime(2022, 3, 2, tzinfo=UTC):
        temperature = 9.5 if warm[0] <= moment < warm[1] else 5.0
        readings.append(Reading(seq=tracker_seq, device_time=moment, utc_offset_min=60, temperature_c=temperature))
        tracker_seq += 1
        moment += timedelta(minutes=30)
    return readings


async def a_trip(store: Store, *, delivered: bool = True) -> tuple[int, int, list[Reading]]:
    """A shipment judged from its tracker's readings in January, February and March 2022: (shipment, tracker,
    readings). The monthly partitions were made ahead as the service does."""
    await prepare_reading_months(store, now=datetime(2022, 1, 5, tzinfo=UTC), months=2)
    profile = await stored_profile(store, PROFILE)
    shipper, carrier = await make_org(store), await make_org(store, kind="carrier")
    shipment = await shipment_of(store, owner=shipper.id, carrier=carrier.id, receiver=None, profile=profile)
    tracker = await make_tracker(store, carrier.id)
    ends = datetime(2022, 3, 5, tzinfo=UTC) if delivered else None
    await assign(store, shipment.id, tracker.id, TRIP - timedelta(hours=1), ends)
    readings = trip_log()
    for start in range(0, len(readings), 500):
        await record_batch(store, tracker.id, readings[start : start + 500], now=ends or NOW, policy=LIVE)
    if delivered:
        async with store.transaction() as tx:
            await tx.set_shipment_status(shipment.id, "in_transit", now=TRIP)
            await tx.set_shipment_status(shipment.id, "delivered", now=datetime(2022, 3, 5, tzinfo=UTC))
    return shipment.id, tracker.id, readings


def lasting(content: dict[str, Any]) -> dict[str, Any]:
    """A certificate's content without what changes from one issue to the next (its id and time, the audit
    trail's head)."""
    integrity = {
        k: v for k, v in content["integrity"].items() if k not in {"generated_at", "audit_head_id", "audit_head_sha256"}
    }
    return {k: v for k, v in content.items() if k not in {"certificate_id", "integrity"}} | {"integrity": integrity}


async def retention_entries(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    async with store.transaction() as tx:
        entries = await tx.audit_entries(limit=10_000)
    return [(e.action, e.subject, json.loads(e.detail)) for e in entries if e.actor == "coldchain:retention"]


async def test_months_past_retention_go_and_the_certificate_says_the_same_afterwards(store: Store) -> None:
    shipment_id, tracker_id, readings = await a_trip(store)
    before = certificate_content(await certificate(store, OPERATOR, shipment_id, now=NOW, key_id=None))
    export_before = await readings_csv_sha256(store, OPERATOR, shipment_id)

    report = await apply_retention(store, now=NOW, policy=FIVE_YEARS)

    in_january = sum(1 for r in readings if r.device_time.month == 1)
    in_february = sum(1 for r in readings if r.device_time.month == 2)
    assert report.removed == [
        MonthRemoved(month=JANUARY, readings=in_january, shipments=[shipment_id], sealed=[shipment_id]),
        MonthRemoved(month=FEBRUARY, readings=in_february, shipments=[shipment_id], sealed=[]),
    ]
    assert report.withheld == []
    async with store.transaction() as tx:
        left = await tx.readings_between(tracker_id, TRIP - timedelta(days=1), NOW)
    assert left == [r for r in readings if r.device_time.month == 3]  # March ends after the cut-off

    after = certificate_content(await certificate(store, OPERATOR, shipment_id, now=NOW, key_id=None))
    assert before["excursions"] and before["alarms"]  # the warm spell was judged
    assert lasting(after) == lasting(before)
    assert after["integrity"]["readings_sha256"] == export_before
    assert after["data"]["span"] == before["data"]["span"]
    # The export holds what is left: its digest is no longer the one the certificate cites.
    assert await readings_csv_sha256(store, OPERATOR, shipment_id) != export_before

    assert await retention_entries(store) == [
        ("readings.sealed", f"shipment:{shipment_id}", {"readings": len(readings), "readings_sha256": export_before}),
        (
            "readings.removed",
            "readings:2022-01",
            {
                "month": "2022-01",
                "readings": in_january,
                "retention_days": GDP_MINIMUM_DAYS,
                "cutoff": "2022-03-10T12:00:00Z",
                "shipments": [shipment_id],
                "sealed": [shipment_id],
            },
        ),
        (
            "readings.removed",
            "readings:2022-02",
            {
                "month": "2022-02",
                "readings": in_february,
                "retention_days": GDP_MINIMUM_DAYS,
                "cutoff": "2022-03-10T12:00:00Z",
                "shipments": [shipment_id],
                "sealed": [],
            },
        ),
    ]
    assert (await apply_retention(store, now=NOW, policy=FIVE_YEARS)).removed == []


async def test_a_tracker_sending_removed_readings_again_gets_them_counted_as_duplicates_not_stored(
    store: Store,
) -> None:
    _, tracker_id, readings = await a_trip(store)
    await apply_retention(store, now=NOW, policy=FIVE_YEARS)
    january = [r for r in readings if r.device_time.month == 1]

    outcome = await record_batch(store, tracker_id, january, now=NOW, policy=LIVE)

    assert (outcome.new, outcome.duplicates, outcome.conflicts) == (0, len(january), 0)
    assert outcome.acked_through == len(readings)
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == sum(1 for r in readings if r.device_time.month == 3)


async def test_a_month_holding_readings_of_a_shipment_under_way_is_kept_and_said_why(store: Store) -> None:
    shipment_id, tracker_id, readings = await a_trip(store, delivered=False)

    report = await apply_retention(store, now=NOW, policy=FIVE_YEARS)

    assert report.removed == []
    assert [(w.month, w.reason) for w in report.withheld] == [
        (month, f"readings of shipments not finished: {shipment_id} (planned, a tracker still assigned)")
        for month in (JANUARY, FEBRUARY)
    ]
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == len(readings)
        assert await tx.readings_seal(shipment_id) is None
    assert await retention_entries(store) == []


async def test_readings_of_no_shipment_go_without_a_seal(store: Store) -> None:
    await prepare_reading_months(store, now=datetime(2022, 1, 5, tzinfo=UTC), months=2)
    tracker = await make_tracker(store, None)
    logged = [Reading(seq=n, device_time=TRIP + timedelta(hours=n), temperature_c=5.0) for n in range(1, 11)]
    await record_batch(store, tracker.id, logged, now=NOW, policy=LIVE)

    report = await apply_retention(store, now=NOW, policy=FIVE_YEARS)

    assert [(m.month, m.readings, m.shipments) for m in report.removed if m.readings] == [(JANUARY, 10, [])]
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker.id) == 0


async def test_kept_for_ever_unless_told_and_never_below_five_years_unless_allowed(store: Store) -> None:
    _, tracker_id, readings = await a_trip(store)

    kept = await apply_retention(store, now=NOW, policy=RetentionPolicy())
    with pytest.raises(ValueError, match="five years"):
        await apply_retention(store, now=NOW, policy=RetentionPolicy(days=GDP_MINIMUM_DAYS - 1))
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == len(readings)
    allowed = await apply_retention(
        store, now=datetime(2022, 4, 2, tzinfo=UTC), policy=RetentionPolicy(days=1, below_gdp=True)
    )

    assert (kept.cutoff, kept.removed, kept.withheld) == (None, [], [])
    assert [m.month for m in allowed.removed if m.readings] == [JANUARY, FEBRUARY, MARCH]
