"""The evaluation through the real ingest path, on each engine: any split of a reading log into batches, in any
delivery order with repeats, ends with the excursions, alarms, budgets, MKT (the whole evaluation) that one pass
over the complete log in time order finds.

Each example gets a shipment and a tracker of its own in the test's database; readings go through
``record_batch`` (storage, duplicate detection, judging in the ingest transaction) exactly as a sync does.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.access import OPERATOR
from coldchain.domain.evaluation import evaluate
from coldchain.domain.readings import Reading
from coldchain.services.evaluation import shipment_judgement
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import open_store
from tests.domain.test_order_independence import PROFILE, deliveries
from tests.services.test_evaluation_ingest import T0, alarms_of, excursions_of, found, make_world, raised

# Values the ingest accepts (NaN and impossible values are quarantined before judging, so not drawn here);
# a missing temperature is accepted and judged as a sensor fault.
TEMPERATURES = [-1.0, -0.5, 0.0, 5.0, 8.0, 8.5, 10.0, 14.0, 25.0, 26.0, None]
HUMIDITIES = [50.0, 80.0, None]
STEPS_MIN = [0, 1, 5, 10, 10, 10, 30, 59, 60, 61, 180, 600]
NOW = T0 + timedelta(days=60)
POLICY = SyncPolicy(max_future=timedelta(days=3650))


@st.composite
def reading_logs(draw: st.DrawFn) -> list[Reading]:
    count = draw(st.integers(min_value=1, max_value=40))
    minutes = 0.0
    log = []
    for seq in range(1, count + 1):
        minutes += draw(st.sampled_from(STEPS_MIN))
        log.append(
            Reading(
                seq=seq,
                device_time=T0 + timedelta(minutes=minutes),
                temperature_c=draw(st.sampled_from(TEMPERATURES)),
                humidity_pct=draw(st.sampled_from(HUMIDITIES)),
            )
        )
    return log


async def deliver_and_compare(database_url: str, log: list[Reading], batches: list[list[Reading]]) -> None:
    store = await open_store(database_url, pool_size=2)
    try:
        world = await make_world(store, PROFILE)
        for batch in batches:
            await record_batch(store, world.tracker_id, batch, now=NOW, policy=POLICY)
        expected = evaluate(world.profile, log)
        judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
        assert judgement.evaluation == expected
        assert found(await excursions_of(store, world.shipment.id)) == expected.excursions
        assert raised(await alarms_of(store, world.shipment.id)) == sorted(
            expected.alarms, key=lambda alarm: (alarm.began_at, alarm.began_seq, alarm.rule)
        )
    finally:
        await store.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), log=reading_logs())
def test_any_batches_in_any_order_through_ingest_end_where_one_pass_in_time_order_ends(
    database_url: str, data: st.DataObject, log: list[Reading]
) -> None:
    batches = data.draw(deliveries(log))
    asyncio.run(deliver_and_compare(database_url, log, batches))
