"""End to end: tracker_sim's trackers play whole trips against the real app, on each storage engine.

``run_tracker`` drives one tracker through a scenario in virtual time (``speed=None``) with the scenario's own
network: days without coverage, lost answers, latency. ``run_fleet`` pushes several trackers' logbooks. In the
end every logged reading is held exactly once with its values (a probe fault in quarantine, acknowledged), and
the admin API shows each tracker acknowledged through the last reading it logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.settings import load_settings
from coldchain.storage import Store
from tracker_sim import BUILTIN_SCENARIOS, open_logbook, register_tracker, run_fleet, run_tracker
from tracker_sim.logbook import LoggedReading

ADMIN_TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A fixed start well in the past: no reading can look like it comes from the future, whatever today is.
START = datetime(2025, 7, 14, 4, 0, tzinfo=UTC)
PROBE_FAULT_C = -127.0

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def _held(store: Store, serial: str) -> tuple[list[Reading], list[tuple[Reading, str]], int]:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        assert tracker is not None
        readings = await tx.readings_between(tracker.id, datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC))
        return readings, await tx.quarantined_readings(tracker.id), await tx.count_readings(tracker.id)


def expected_reading(logged: LoggedReading) -> Reading:
    """The reading the service must hold for a logged one: device time in UTC plus the device's own offset."""
    device_time = datetime.fromisoformat(logged.device_time)
    offset = device_time.utcoffset()
    assert offset is not None
    values = msgspec.structs.asdict(logged)
    del values["device_time"]
    return Reading(device_time=device_time.astimezone(UTC), utc_offset_min=int(offset.total_seconds()) // 60, **values)


async def assert_the_service_holds_exactly_the_logbook(client: Client, serial: str, logbook_path: Path) -> int:
    """Every reading of the logbook held once, unchanged; returns the logbook's last seq."""
    async with open_logbook(logbook_path) as logbook:
        status = await logbook.status()
        logged = await logbook.retained()
    assert [r.seq for r in logged] == list(range(1, status.last_seq + 1)), "the logbook was pruned: raise retention"
    assert (status.acked_through, status.pending) == (status.last_seq, 0)

    readings, quarantined, count = client.blocking_portal.call(_held, client.app.state.store, serial)

    faulty = {r.seq for r in logged if r.temperature_c == PROBE_FAULT_C}
    assert count == len(readings) == len(logged) - len(faulty)
    assert [r.seq for r, _ in quarantined] == sorted(faulty)
    by_seq = {r.seq: r for r in logged}
    assert sorted(r.seq for r in readings) == sorted(set(by_seq) - faulty)
    for reading in readings:
        assert reading == expected_reading(by_seq[reading.seq])
    for reading, reason in quarantined:
        assert reading == expected_reading(by_seq[reading.seq])
        assert reason.startswith("temperature_c -127.0 is outside the physical range")
    return status.last_seq


async def sync_status(client: Client) -> dict[str, dict[str, Any]]:
    response = await client.get("/v1/trackers", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {tracker["tracker_id"]: tracker["sync"] for tracker in response.json()}


@pytest.mark.parametrize("scenario", ["multi-day-offline", "compressor-failure", "freeze"])
async def test_a_tracker_playing_a_whole_trip_ends_with_every_reading_held_once(
    client: Client, tmp_path: Path, scenario: str
) -> None:
    credentials = await register_tracker(client, admin_token=ADMIN_TOKEN, serial=f"TRK-{scenario}")
    logbook_path = tmp_path / "logbook.db"

    report = await run_tracker(
        BUILTIN_SCENARIOS[scenario],
        credentials,
        logbook_path=logbook_path,
        http=client,
        speed=None,
        seed=7,
        start=START,
        retention=timedelta(days=3650),
    )

    assert report.error is None
    assert report.complete
    last_seq = await assert_the_service_holds_exactly_the_logbook(client, credentials.tracker_id, logbook_path)
    assert report.readings_logged == report.acked_through == last_seq > 50
    sync = (await sync_status(client))[credentials.tracker_id]
    assert (sync["acked_through"], sync["max_seq"]) == (last_seq, last_seq)
    # Whatever answers the network lost on the way, each reading was new to the service exactly once.
    assert sync["readings_new"] + sync["readings_quarantined"] == last_seq
    if scenario == "multi-day-offline":
        assert report.batches > 1  # two days without coverage: the backlog went up in several batches
    if scenario == "freeze":
        assert sync["readings_quarantined"] > 0  # the loose probe's -127 °C, acknowledged all the same


async def test_a_fleet_pushes_every_trackers_logbook_and_each_is_acknowledged_through_its_last_reading(
    client: Client, tmp_path: Path
) -> None:
    plays = [BUILTIN_SCENARIOS[name] for name in ("compressor-failure", "reefer-road", "freeze")]
    logbook_dir = tmp_path / "fleet"

    result = await run_fleet(
        admin_token=ADMIN_TOKEN,
        count=3,
        scenarios=plays,
        batch_size=40,
        concurrency=3,
        wire_format="msgpack",
        gzip=True,
        logbook_dir=logbook_dir,
        seed=11,
        start=START,
        serial_prefix="fleet",
        http=client,
    )

    assert result.errors == ()
    assert result.readings_acked == result.readings_logged > 200
    statuses = await sync_status(client)
    assert (
        sorted(statuses)
        == sorted(c.tracker_id for c in result.credentials)
        == [
            "fleet-00000",
            "fleet-00001",
            "fleet-00002",
        ]
    )
    total = 0
    for credentials in result.credentials:
        logbook_path = logbook_dir / f"{credentials.tracker_id}.db"
        last_seq = await assert_the_service_holds_exactly_the_logbook(client, credentials.tracker_id, logbook_path)
        assert statuses[credentials.tracker_id]["acked_through"] == last_seq
        total += last_seq
    assert total == result.readings_logged
