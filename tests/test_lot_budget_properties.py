"""The lot through the real ingest path, on each engine: 2-4 shipments of one lot, each watched by 1-3 trackers one
after the other, delivered in any split into batches and any interleaving across trackers (with repeats), end with
the excursions, alarms (raised and withdrawn), budgets and dispositions of one pass over each tracker's log in time
order, judged on the lot's timeline; and they agree with the naive reference evaluator.

Each example builds its own lot in the test's database; readings go through ``record_batch`` (storage, duplicate
detection, judging and the lot's budget in the ingest transaction) exactly as a sync does.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.access import OPERATOR
from coldchain.domain.disposition import recommend_disposition
from coldchain.domain.readings import Reading
from coldchain.services.evaluation import shipment_judgement
from coldchain.services.sync import record_batch
from coldchain.storage import Store, open_store
from tests.domain.engine_support import T0
from tests.domain.test_order_independence import deliveries
from tests.domain.test_reference_oracle import PROFILE, judge_lot_in_the_domain, logs
from tests.factories import assign, make_tracker
from tests.reference_evaluator import reference_lot
from tests.services.test_evaluation_ingest import LIVE, alarms_of, excursions_of, found, make_world, shipment_of

NOW = T0 + timedelta(days=30)
# The ingest quarantines NaN and impossible values before judging; a missing temperature is judged as a fault.
ACCEPTED = [-1.0, -0.5, 3.0, 5.0, 8.0, 8.5, 9.0, 14.0, 26.0, None]


@st.composite
def lots(draw: st.DrawFn) -> list[list[list[Reading]]]:
    """2-4 shipments of one lot, each watched by 1-3 trackers one after the other; shipments may overlap."""
    shipments = []
    for _ in range(draw(st.integers(min_value=2, max_value=4))):
        start = draw(st.integers(min_value=0, max_value=2000))
        streams = []
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            stream = [
                Reading(seq=r.seq, device_time=r.device_time, temperature_c=draw(st.sampled_from(ACCEPTED)))
                for r in draw(logs(start_min=start, most=12))
            ]
            streams.append(stream)
            start = int((stream[-1].device_time - T0).total_seconds() // 60) + 1
        shipments.append(streams)
    return shipments


async def build_lot(store: Store, shipments: list[list[list[Reading]]]) -> tuple[list[int], list[list[int]]]:
    """The shipments of one new lot (created in order), each stream on a tracker of its own assigned for exactly
    its log's time: the shipments' ids and, per shipment, its trackers' ids."""
    world = await make_world(store, PROFILE)
    shipment_ids: list[int] = []
    trackers: list[list[int]] = []
    for number, streams in enumerate(shipments):
        if number == 0:
            shipment_id = world.shipment.id
        else:
            shipment = await shipment_of(
                store,
                owner=world.shipper,
                carrier=world.carrier,
                receiver=world.receiver,
                profile=world.profile,
                product_id=world.product_id,
                lot_id=world.lot_id,
            )
            shipment_id = shipment.id
        shipment_ids.append(shipment_id)
        own = []
        for log in streams:
            tracker = await make_tracker(store, world.carrier)
            await assign(store, shipment_id, tracker.id, log[0].device_time, log[-1].device_time + timedelta(seconds=1))
            own.append(tracker.id)
        trackers.append(own)
    return shipment_ids, trackers  # the world's own tracker is assigned long after these logs: it judges none


async def deliver_and_compare(
    database_url: str, shipments: list[list[list[Reading]]], sends: list[tuple[int, int, list[Reading]]]
) -> None:
    _, expected = judge_lot_in_the_domain(shipments)
    reference = reference_lot(PROFILE, shipments)
    store = await open_store(database_url, pool_size=2)
    try:
        shipment_ids, trackers = await build_lot(store, shipments)
        for number, stream_no, batch in sends:
            await record_batch(store, trackers[number][stream_no], batch, now=NOW, policy=LIVE)
        for number, shipment_id in enumerate(shipment_ids):
            judgement = await shipment_judgement(store, OPERATOR, shipment_id)
            assert judgement.evaluation == expected[number]
            assert judgement.disposition == recommend_disposition(expected[number])
            assert found(await excursions_of(store, shipment_id)) == expected[number].excursions
            standing = sorted(
                (stored.alarm for stored in await alarms_of(store, shipment_id)),
                key=lambda alarm: (alarm.met_at, alarm.began_at, alarm.began_seq, alarm.rule),
            )
            assert standing == expected[number].alarms
            lifetime = [alarm for alarm in standing if alarm.scope == "lifetime"]
            assert lifetime == reference.lot_alarms[number]
            (budget,) = judgement.evaluation.budgets
            assert budget.consumed_min == pytest.approx(reference.consumed_min[number]["budget"])
    finally:
        await store.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), shipments=lots())
def test_a_lot_delivered_in_any_batches_and_interleaving_ends_where_one_pass_in_time_order_ends(
    database_url: str, data: st.DataObject, shipments: list[list[list[Reading]]]
) -> None:
    queues = [
        [(number, stream_no, batch) for batch in data.draw(deliveries(log))]
        for number, streams in enumerate(shipments)
        for stream_no, log in enumerate(streams)
    ]
    sends: list[tuple[int, int, list[Reading]]] = []
    while any(queues):
        queue = data.draw(st.sampled_from([queue for queue in queues if queue]))
        sends.append(queue.pop(0))
    asyncio.run(deliver_and_compare(database_url, shipments, sends))
