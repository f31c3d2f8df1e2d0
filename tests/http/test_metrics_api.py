"""``GET /metrics`` read back after real traffic through the app, on each storage engine: the counts of readings,
batches and refusals equal what was sent, parsed as Prometheus parses them.

The figures live in the process (prometheus-client's registry), so each test reads them before and after its
traffic and compares the differences: other tests in the same process send batches too.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from coldchain.http.app import create_app
from coldchain.metrics import exposition
from coldchain.settings import load_settings
from coldchain.storage import Store
from tests.factories import assign, make_org, make_shipment
from tests.http.test_sync_api import (
    ADMIN_TOKEN,
    MSGPACK,
    SERIAL,
    Client,
    ClientFactory,
    as_json,
    as_msgpack,
    assert_error,
    batch,
    post_batch,
    reading,
    register,
)

METRICS_TOKEN = "metrics-token-for-tests"
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics", headers=METRICS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def change(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def watched_by_a_shipment(store: Store, serial: str) -> None:
    """Assign the tracker to a shipment from before its readings, so that its batches are judged."""
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
    assert tracker is not None
    shipper = await make_org(store)
    shipment = await make_shipment(store, owner=shipper.id)
    await assign(store, shipment.id, tracker.id, datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize("after_commit", [True, False], ids=["judged_after_commit", "judged_in_transaction"])
async def test_the_metrics_count_the_readings_batches_and_refusals_that_were_sent(
    make_client: ClientFactory, database_url: str, after_commit: bool
) -> None:
    client = await make_client(metrics_token=METRICS_TOKEN, max_batch_readings=10, judge_after_commit=after_commit)
    secret = await register(client)
    client.blocking_portal.call(watched_by_a_shipment, client.app.state.store, SERIAL)
    before = await scrape(client)

    first = await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in range(1, 6)))))
    # 4 and 5 again (duplicates), 6 and 7 new, 8 a probe fault (quarantined), 3 with another value (a conflict)
    second = await post_batch(
        client,
        secret,
        as_json(batch(reading(4), reading(5), reading(6), reading(7), reading(8, temperature_c=-127.0))),
    )
    third = await post_batch(client, secret, as_json(batch(reading(3, temperature_c=9.9), reading(9))))
    unsigned = await post_batch(client, secret, as_json(batch(reading(10))), signature="sha256=00")
    too_many = await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in range(10, 21)))))
    wrong_shape = await post_batch(client, secret, as_json({"readings": [{"seq": "ten"}]}))
    faulty = await post_batch(
        client, secret, as_msgpack(batch(reading(10, temperature_c=math.nan))), content_type=MSGPACK
    )

    if after_commit:  # what waits is judged in the background: judge it now, as a shipment's read would
        client.blocking_portal.call(client.app.state.judge.settle)
    after = await scrape(client)
    answers = [r.json() for r in (first, second, third, faulty)]
    assert [(a["new"], a["duplicates"], a["quarantined"], a["conflicts"]) for a in answers] == [
        (5, 0, 0, 0),
        (2, 2, 1, 0),
        (1, 0, 0, 1),
        (0, 0, 1, 0),
    ]
    assert [r.status_code for r in (unsigned, too_many, wrong_shape)] == [401, 413, 422]
    readings = "coldchain_sync_readings_total"
    assert change(before, after, readings, outcome="new") == 8
    assert change(before, after, readings, outcome="duplicate") == 2
    assert change(before, after, readings, outcome="quarantined") == 2
    assert change(before, after, readings, outcome="conflicting") == 1
    assert change(before, after, "coldchain_sync_batches_total") == 4
    assert change(before, after, "coldchain_sync_batch_seconds_count") == 4
    assert change(before, after, "coldchain_sync_batch_seconds_sum") > 0
    # Every stored batch took less than 30 s: each lands in the bucket below +Inf.
    assert change(before, after, "coldchain_sync_batch_seconds_bucket", le="30.0") == 4
    refused = "coldchain_sync_batches_refused_total"
    assert {status: change(before, after, refused, status=status) for status in ("401", "413", "422", "429")} == {
        "401": 1,
        "413": 1,
        "422": 1,
        "429": 0,
    }
    judgements = change(before, after, "coldchain_evaluation_seconds_count")
    if after_commit:
        # The 8 new readings of three batches were judged, in as many passes as the judge took (batches of one
        # tracker that wait together share one); the quarantined ones and the batches without new ones wait for
        # nothing.
        judged = sum(
            change(before, after, "coldchain_judged_after_commit_readings_total", source=source)
            for source in ("handed", "read_back")
        )
        assert judged == 8
        assert 1 <= judgements == change(before, after, "coldchain_judgements_after_commit_total") <= 3
    else:
        # Three batches brought new readings, and each was judged in its transaction; the others had nothing to
        # judge.
        assert judgements == 3
    assert value(after, "coldchain_sync_inflight_batches") == 0
    expected_max = 1 if database_url.startswith("sqlite") else 10
    assert value(after, "coldchain_db_pool_max_connections") == expected_max
    in_use = value(after, "coldchain_db_pool_connections", state="in_use")
    idle = value(after, "coldchain_db_pool_connections", state="idle")
    assert 0 <= in_use <= expected_max and 1 <= in_use + idle <= expected_max


async def test_batches_refused_429_are_counted(make_client: ClientFactory) -> None:
    client = await make_client(metrics_token=METRICS_TOKEN, auth_failure_limit=1)
    secret = await register(client)
    before = parse(exposition().decode())  # this address will be refused /metrics too, once it failed: read in place

    await post_batch(client, secret, as_json(batch(reading(1))), signature="sha256=00")
    throttled = await post_batch(client, secret, as_json(batch(reading(1))))

    assert_error(throttled, 429, "too_many_requests")
    after = parse(exposition().decode())
    refused = "coldchain_sync_batches_refused_total"
    assert (change(before, after, refused, status="401"), change(before, after, refused, status="429")) == (1, 1)
    assert change(before, after, "coldchain_sync_readings_total", outcome="new") == 0


async def test_metrics_are_not_served_without_a_metrics_token_set(make_client: ClientFactory) -> None:
    client = await make_client()
    for headers in ({}, METRICS, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
        assert_error(await client.get("/metrics", headers=headers), 404, "not_found", "not served on this address")


async def test_metrics_ask_for_the_metrics_token_and_nothing_else_opens_them(make_client: ClientFactory) -> None:
    client = await make_client(metrics_token=METRICS_TOKEN, auth_failure_limit=3)

    missing = await client.get("/metrics")
    admin = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    basic = await client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})

    assert_error(missing, 401, "unauthenticated", "metrics token")
    assert_error(admin, 401, "unauthenticated", "not the metrics token")
    assert_error(basic, 401, "unauthenticated")
    assert (await client.get("/metrics", headers=METRICS)).status_code == 200
    assert_error(await client.get("/metrics?name=x", headers=METRICS), 422, "invalid", "unknown query parameter")
    # Wrong tokens count as failed authentications of the address, as wrong API tokens do.
    for _ in range(2):
        await client.get("/metrics", headers={"Authorization": "Bearer guess-guess-guess-guess"})
    assert_error(await client.get("/metrics", headers=METRICS), 429, "too_many_requests")


async def test_a_token_shorter_than_16_characters_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="COLDCHAIN_METRICS_TOKEN: use at least 16 characters"):
        load_settings({"COLDCHAIN_METRICS_TOKEN": "short"})


# --- A property: whatever batches arrive, the counts are the sums of the answers --------------------------------


@dataclass(frozen=True)
class Sent:
    seq: int
    fault: bool
    altered: bool


sent_readings = st.builds(
    Sent,
    seq=st.integers(min_value=1, max_value=12),
    fault=st.booleans(),
    altered=st.integers(min_value=0, max_value=4).map(lambda n: n == 0),
)


@settings(max_examples=15)
@given(batches=st.lists(st.lists(sent_readings, max_size=6), min_size=1, max_size=5))
def test_the_reading_counters_add_up_to_what_the_answers_said_for_any_batches(batches: list[list[Sent]]) -> None:
    async def run(folder: Path) -> None:
        app = create_app(
            load_settings(
                {}, database_url=f"sqlite:///{folder / 'c.db'}", admin_token=ADMIN_TOKEN, metrics_token=METRICS_TOKEN
            )
        )
        async with AsyncTestClient(app) as client:
            secret = await register(client)
            before = await scrape(client)
            totals = {"new": 0, "duplicates": 0, "quarantined": 0, "conflicts": 0}
            for readings in batches:
                body = batch(
                    *(
                        reading(r.seq, temperature_c=-127.0 if r.fault else 4.0 + r.altered * 3.0 + r.seq / 10)
                        for r in readings
                    )
                )
                response = await post_batch(client, secret, as_json(body))
                assert response.status_code == 200, response.text
                for key in totals:
                    totals[key] += response.json()[key]
            after = await scrape(client)
        counted = "coldchain_sync_readings_total"
        assert change(before, after, counted, outcome="new") == totals["new"]
        assert change(before, after, counted, outcome="duplicate") == totals["duplicates"]
        assert change(before, after, counted, outcome="quarantined") == totals["quarantined"]
        assert change(before, after, counted, outcome="conflicting") == totals["conflicts"]
        assert change(before, after, "coldchain_sync_batches_total") == len(batches)
        sent = sum(len(readings) for readings in batches)
        assert totals["new"] + totals["duplicates"] + totals["quarantined"] + totals["conflicts"] == sent

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(Path(folder)))
