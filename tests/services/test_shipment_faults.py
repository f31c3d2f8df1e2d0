"""Sensor faults quarantined at ingest stay part of the shipment: in its status, its disposition and a paged list."""

from __future__ import annotations

import math
from datetime import timedelta

from coldchain.domain.access import OPERATOR
from coldchain.domain.readings import Reading
from coldchain.services.evaluation import shipment_judgement, shipment_quarantined
from coldchain.services.sync import record_batch
from coldchain.storage import Store
from tests.services.test_evaluation_ingest import LIVE, T0, at, log, make_world


def faulty_log() -> list[Reading]:
    readings = log([5.0] * 12)
    readings[3] = Reading(seq=4, device_time=at(30), temperature_c=math.nan)
    readings[4] = Reading(seq=5, device_time=at(40), temperature_c=math.nan)
    readings[8] = Reading(seq=9, device_time=at(80), temperature_c=-300.0)
    return readings


async def test_quarantined_readings_of_the_shipments_tracker_appear_in_its_status_as_faults(store: Store) -> None:
    world = await make_world(store)
    outside = Reading(seq=100, device_time=T0 - timedelta(hours=5), temperature_c=math.nan)  # before the assignment
    await record_batch(store, world.tracker_id, [*faulty_log(), outside], now=at(200), policy=LIVE)

    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)

    faults = [(f.kind, f.first_at, f.last_at, f.readings) for f in judgement.quarantined]
    assert faults == [
        ("temperature_c not a number", at(30), at(40), 2),
        ("temperature_c outside the physical range", at(80), at(80), 1),
    ]
    codes = [reason.code for reason in judgement.disposition.reasons]
    assert codes.count("quarantined_readings") == 2
    assert judgement.disposition.recommendation == "quarantine"


async def test_the_quarantined_readings_are_listed_with_their_reasons_and_raw_values_page_by_page(
    store: Store,
) -> None:
    world = await make_world(store)
    await record_batch(store, world.tracker_id, faulty_log(), now=at(200), policy=LIVE)

    first = await shipment_quarantined(store, OPERATOR, world.shipment.id, after=None, limit=2)
    assert [q.reading.seq for q in first.items] == [4, 5]
    assert first.next is not None
    second = await shipment_quarantined(store, OPERATOR, world.shipment.id, after=first.next, limit=2)

    assert [q.reading.seq for q in second.items] == [9]
    assert second.next is None
    (last,) = second.items
    assert (last.reading.temperature_c, last.tracker_id, last.received_at) == (-300.0, world.tracker_id, at(200))
    assert "outside the physical range" in last.reason
    assert first.items[0].reason == "temperature_c is nan"  # JSON holds no NaN: the reason keeps the value
