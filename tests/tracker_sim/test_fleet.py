from __future__ import annotations

from pathlib import Path

import pytest

from tests.tracker_sim.fake_service import FakeService
from tracker_sim.fleet import RegistrationError, percentile, register_tracker, run_fleet
from tracker_sim.logbook import open_logbook
from tracker_sim.scenarios import BUILTIN_SCENARIOS
from tracker_sim.sync import TrackerCredentials


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError, match="q must"):
        percentile(values, 0)


async def test_registering_a_tracker_returns_its_id_and_secret_and_a_second_time_is_refused() -> None:
    fake = FakeService()
    async with fake.client() as http:
        created = await register_tracker(http, admin_token=fake.admin_token, serial="TRK-9", model="sim")
        assert created.tracker_id == "TRK-9"
        assert created.secret == fake.secrets["TRK-9"]
        assert created.secret not in repr(created)
        with pytest.raises(RegistrationError) as refused:
            await register_tracker(http, admin_token=fake.admin_token, serial="TRK-9")
        assert refused.value.status_code == 409
        with pytest.raises(RegistrationError, match="401"):
            await register_tracker(http, admin_token="wrong", serial="TRK-10")


async def test_a_fleet_registers_its_trackers_pushes_every_reading_and_measures(tmp_path: Path) -> None:
    fake = FakeService()
    scenarios = [BUILTIN_SCENARIOS["reefer-road"], BUILTIN_SCENARIOS["compressor-failure"]]
    async with fake.client() as http:
        result = await run_fleet(
            admin_token=fake.admin_token,
            count=3,
            scenarios=scenarios,
            readings_per_tracker=250,
            batch_size=100,
            concurrency=2,
            wire_format="msgpack",
            gzip=True,
            logbook_dir=tmp_path,
            serial_prefix="load",
            http=http,
        )
    assert result.errors == ()
    assert (result.trackers, result.readings_logged, result.readings_acked, result.batches) == (
        3,
        750,
        750,
        9,
    )
    assert [c.tracker_id for c in result.credentials] == ["load-00000", "load-00001", "load-00002"]
    for credentials in result.credentials:
        assert sorted(fake.held(credentials.tracker_id)) == list(range(1, 251))
        async with open_logbook(tmp_path / f"{credentials.tracker_id}.db") as logbook:
            assert (await logbook.status()).acked_through == 250
    assert {b.content_type for b in fake.batches} == {"application/msgpack"}
    assert {b.content_encoding for b in fake.batches} == {"gzip"}
    assert 0 < result.latency_p50_ms <= result.latency_p95_ms <= result.latency_p99_ms
    assert result.readings_per_s > 0
    assert "readings/s acknowledged" in result.summary()
    # Tracker 1 played the second scenario: its trip started in July.
    assert fake.held("load-00001")[1].device_time.startswith("2026-07-14T06:00")


async def test_a_fleet_can_push_for_trackers_registered_beforehand_and_rides_out_throttling() -> None:
    fake = FakeService(secrets_by_tracker={"A": "a-secret", "B": "b-secret"}, retry_after_s=30)
    fake.faults.extend(["429", "503", "429"])
    trackers = [TrackerCredentials("A", "a-secret"), TrackerCredentials("B", "b-secret")]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with fake.client() as http:
        result = await run_fleet(
            trackers=trackers,
            readings_per_tracker=40,
            batch_size=25,
            http=http,
            concurrency=1,
            seed=5,
            sleep=sleep,
        )
    assert result.errors == ()
    assert len(waits) == 3
    assert waits[0] >= 30
    assert waits[2] >= 30
    assert result.readings_acked == 80
    assert result.throttled == 2
    assert result.failures == 1
    assert sorted(fake.held("A")) == sorted(fake.held("B")) == list(range(1, 41))


async def test_a_tracker_the_service_refuses_is_reported_and_the_others_still_push() -> None:
    fake = FakeService(secrets_by_tracker={"good": "g", "bad": "b"})
    trackers = [TrackerCredentials("good", "g"), TrackerCredentials("bad", "not b")]
    async with fake.client() as http:
        result = await run_fleet(trackers=trackers, readings_per_tracker=10, http=http)
    assert result.readings_acked == 10
    (error,) = result.errors
    assert error.startswith("bad:")
    assert "401" in error


async def test_a_fleet_without_trackers_or_admin_token_is_a_usage_error() -> None:
    fake = FakeService()
    async with fake.client() as http:
        with pytest.raises(ValueError, match="admin_token"):
            await run_fleet(count=1, http=http)


async def test_trackers_whose_ids_differ_only_in_unsafe_characters_get_their_own_logbooks(
    tmp_path: Path,
) -> None:
    fake = FakeService(secrets_by_tracker={"depot 7": "x", "depot_7": "y"})
    trackers = [TrackerCredentials("depot 7", "x"), TrackerCredentials("depot_7", "y")]
    async with fake.client() as http:
        result = await run_fleet(trackers=trackers, readings_per_tracker=12, http=http, logbook_dir=tmp_path)
    assert result.errors == ()
    assert result.readings_acked == 24
    assert sorted(fake.held("depot 7")) == sorted(fake.held("depot_7")) == list(range(1, 13))
    async with open_logbook(tmp_path / "depot_7.db") as logbook:
        assert (await logbook.status()).last_seq == 12  # not 24: the other tracker has its own file
