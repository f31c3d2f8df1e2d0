"""``coldchain serve --workers 2`` on PostgreSQL: whichever worker answers a scrape, the metrics are the sums over
both workers, on the service's address (with the metrics token) and on the internal metrics address (without).

Each batch goes on a connection of its own, so the kernel hands the batches to both workers; each worker's own
figures are read from its files in the folder ``coldchain serve`` made for them, which is gone after the stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from tests.http.test_metrics_api import METRICS, METRICS_TOKEN, Samples, parse, value
from tests.http.test_sync_api import sign
from tests.served import ServedColdchain, free_port

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "metrics-processes-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TRACKERS = 4
BATCHES = 6
BATCH = 100
POOL_SIZE = 3
START = datetime(2026, 3, 1, tzinfo=UTC)


def _body(first_seq: int, count: int) -> bytes:
    readings = [
        {"seq": seq, "device_time": (START + timedelta(minutes=seq)).isoformat(), "temperature_c": 5.0}
        for seq in range(first_seq, first_seq + count)
    ]
    return json.dumps({"readings": readings}).encode()


async def _push(url: str, serial: str, secret: str) -> None:
    """BATCHES new batches, then the first again (all duplicates); each on a fresh connection."""
    for first in [*(1 + BATCH * n for n in range(BATCHES)), 1]:
        body = _body(first, BATCH)
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{url}/v1/trackers/{serial}/sync",
                content=body,
                headers={"Content-Type": "application/json", "X-Signature": sign(body, secret)},
            )
        assert response.status_code == 200, response.text


def _shared_folder(pid: int) -> str:
    """The metrics folder the service's child processes were started with (from their environment)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    [folder] = [entry.split(b"=", 1)[1].decode() for entry in environ if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return folder


def _new_readings_of(counters: Path) -> float:
    """What one worker's own file says it counted as new readings."""
    families: list[Metric] = MultiProcessCollector.merge([str(counters)])  # type: ignore[no-untyped-call]
    return sum(
        float(sample.value)
        for family in families
        for sample in family.samples
        if sample.name == "coldchain_sync_readings_total" and sample.labels == {"outcome": "new"}
    )


def _per_worker(folder: str) -> dict[int, float]:
    """New readings counted by each process, from its own counter file (``counter_<pid>.db``)."""
    return {
        int(path.stem.removeprefix("counter_")): _new_readings_of(path) for path in Path(folder).glob("counter_*.db")
    }


async def _scrape(url: str, headers: dict[str, str]) -> Samples:
    async with httpx.AsyncClient(timeout=10) as http:  # a fresh connection: any worker may answer
        response = await http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_every_scrape_of_either_address_sums_both_workers(postgres_database: str, tmp_path: Path) -> None:
    metrics_address = f"127.0.0.1:{free_port()}"
    settings = {"METRICS_TOKEN": METRICS_TOKEN, "METRICS_ADDRESS": metrics_address}
    with ServedColdchain(
        postgres_database, tmp_path, workers=2, pool_size=POOL_SIZE, admin_token=ADMIN_TOKEN, settings=settings
    ) as service:
        service.start()
        async with httpx.AsyncClient(timeout=10) as http:
            await service.wait_healthy(http)
            secrets = {}
            for n in range(TRACKERS):
                response = await http.post(f"{service.url}/v1/trackers", json={"serial": f"W-{n}"}, headers=ADMIN)
                assert response.status_code == 201, response.text
                secrets[f"W-{n}"] = response.json()["secret"]
            assert (await http.get(f"{service.url}/metrics")).status_code == 401
        await asyncio.gather(*(_push(service.url, serial, secret) for serial, secret in secrets.items()))

        scrapes = [await _scrape(f"{service.url}/metrics", METRICS) for _ in range(8)]
        scrapes += [await _scrape(f"http://{metrics_address}/metrics", {}) for _ in range(2)]
        assert service.process is not None
        folder = _shared_folder(next(pid for pid in service.pids() if pid != service.process.pid))
        per_worker = _per_worker(folder)

        os.killpg(service.process.pid, signal.SIGTERM)
        returncode = await asyncio.to_thread(service.process.wait, 30)

    new = TRACKERS * BATCHES * BATCH
    for samples in scrapes:
        assert value(samples, "coldchain_sync_readings_total", outcome="new") == new
        assert value(samples, "coldchain_sync_readings_total", outcome="duplicate") == TRACKERS * BATCH
        assert value(samples, "coldchain_sync_batches_total") == TRACKERS * (BATCHES + 1)
        assert value(samples, "coldchain_sync_batch_seconds_count") == TRACKERS * (BATCHES + 1)
        assert value(samples, "coldchain_sync_inflight_batches") == 0
        # each worker's pool (POOL_SIZE at most), summed: both workers' live gauges are in every scrape
        assert value(samples, "coldchain_db_pool_max_connections") == 2 * POOL_SIZE
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
    assert sum(per_worker.values()) == new
    assert returncode == 0
    assert not Path(folder).exists(), "the shared folder is removed when the service ends"  # noqa: ASYNC240
