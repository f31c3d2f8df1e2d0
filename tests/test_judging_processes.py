"""Judging after commit across real processes, on each storage engine: readings a served coldchain acknowledged
and had not judged yet are judged by the same process on SIGTERM, and, after a SIGKILL, by the next process to
start; what ends up stored is what one pass of the engine over the whole log finds.

Real ``python -m coldchain serve`` processes on free 127.0.0.1 ports; the tracker is a plain HTTP client sending
signed batches. The judges of the first processes linger a minute and sweep every minute, so nothing is judged
before the signal unless the process judges it on its way out.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from coldchain.domain.evaluation import evaluate
from coldchain.domain.readings import Reading
from coldchain.domain.sync import SyncState
from coldchain.storage import Store, open_store
from tests.http.test_sync_api import sign
from tests.served import ServedColdchain
from tests.services.test_evaluation_ingest import TRIP, World, excursions_of, found, log, make_world

pytestmark = pytest.mark.slow

LINGERING = {"JUDGE_AFTER_COMMIT": "true", "JUDGE_LINGER_S": "60", "JUDGE_SWEEP_S": "60"}
SWEEPING = {"JUDGE_AFTER_COMMIT": "true", "JUDGE_LINGER_S": "60", "JUDGE_SWEEP_S": "0.5"}


async def push(url: str, serial: str, readings: Sequence[Reading]) -> None:
    body = json.dumps(
        {
            "readings": [
                {"seq": r.seq, "device_time": r.device_time.isoformat(), "temperature_c": r.temperature_c}
                for r in readings
            ]
        }
    ).encode()
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{url}/v1/trackers/{serial}/sync",
            content=body,
            headers={"Content-Type": "application/json", "X-Signature": sign(body, "secret")},
        )
    assert response.status_code == 200, response.text


async def sync_state(store: Store, world: World) -> SyncState:
    async with store.transaction() as tx:
        return await tx.sync_state(world.tracker_id)


async def serial_of(store: Store, world: World) -> str:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker_by_id(world.tracker_id)
    assert tracker is not None
    return tracker.serial


async def test_what_a_process_left_unjudged_is_judged_when_it_stops_or_by_the_next_after_a_kill(
    database_url: str, tmp_path: Path
) -> None:
    store = await open_store(database_url, pool_size=2)
    try:
        world = await make_world(store)
        serial = await serial_of(store, world)
        readings = log(TRIP * 4)
        first, second = readings[:60], readings[60:]
        for folder in ("stopped", "killed", "next"):
            (tmp_path / folder).mkdir()

        with ServedColdchain(database_url, tmp_path / "stopped", settings=LINGERING) as service:
            service.start()
            async with httpx.AsyncClient() as http:
                await service.wait_healthy(http)
            await push(service.url, serial, first)
            assert (await sync_state(store, world)).judge_count == len(first), "acknowledged, not judged yet"
            assert service.process is not None
            os.killpg(service.process.pid, signal.SIGTERM)
            assert service.process.wait(30) == 0, service.output()
        waiting = await sync_state(store, world)
        assert (waiting.judge_count, waiting.judge_from) == (0, None), "judged on the way out"
        assert found(await excursions_of(store, world.shipment.id)) == evaluate(world.profile, first).excursions

        with ServedColdchain(database_url, tmp_path / "killed", settings=LINGERING) as service:
            service.start()
            async with httpx.AsyncClient() as http:
                await service.wait_healthy(http)
            await push(service.url, serial, second)
            service.kill()
        assert (await sync_state(store, world)).judge_count == len(second), "killed before judging"

        with ServedColdchain(database_url, tmp_path / "next", settings=SWEEPING) as service:
            service.start()
            async with httpx.AsyncClient() as http:
                await service.wait_healthy(http)
            for _ in range(300):  # its sweep at start, or half a second later, takes the waiting tracker
                if (await sync_state(store, world)).judge_count == 0:
                    break
                await asyncio.sleep(0.05)
            output = service.output()
        assert (await sync_state(store, world)).judge_count == 0, output
        assert "Traceback" not in output, output
        assert found(await excursions_of(store, world.shipment.id)) == evaluate(world.profile, readings).excursions
    finally:
        await store.close()
