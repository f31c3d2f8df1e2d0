"""The portal's answers on a realistic load, on SQLite and PostgreSQL.

    python tests/benchmarks/bench_portal.py [--engines sqlite,postgresql] [--runs 40] [--board 500]
        [--postgres-url URL]

Set-up per engine, in a scratch database (SQLite: a temporary file; PostgreSQL: a database created on the server
``--postgres-url`` names, default ``COLDCHAIN_TEST_POSTGRES_URL``, else the local server, and dropped after):

- one 30-day shipment in transit with one reading a minute (43,200 readings with temperature, humidity and
  position, a freezing spell among them), ingested through the sync use case, so judged as in production;
- ``--board`` shipments in transit in all (the long one and the others with a tracker and a few readings each).

Then, through the app in process (an ASGI client: no network, the same handlers, templates and database), each
request ``--runs`` times after three warm-ups, with a signed-in user's session:

- chart data: ``GET /v1/shipments/{id}/readings?resolution=<the page's>`` (about 1,500 buckets over 30 days);
- the shipment page: ``GET /portal/shipments/{id}`` and its chart data, the two requests a browser makes;
- the board: ``GET /v1/board``, and the board page ``GET /portal``;
- the long shipment's investigation (``--runs`` / 4 times): as JSON, as the portal page, and as the PDF excursion
  report (the whole path: the judgement, the readings' SHA-256 over all 43,200 readings, the charts, WeasyPrint);
- its certificate: the signed JSON form, and the PAdES-signed PDF with the JSON form attached.

Prints p50 and p95 in milliseconds; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from litestar.testing import AsyncTestClient

# Run as a script, sys.path starts with this file's folder, not the repository root that holds the ``tests``
# package: this line puts the root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from coldchain.documents.signing import make_pilot_signer
from coldchain.domain.access import OPERATOR
from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.keys import generate_keys
from coldchain.services.sync import record_batch
from coldchain.services.users import create_user
from coldchain.settings import load_settings
from coldchain.storage import Store, open_store
from tests.factories import make_org, make_shipment, make_tracker

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DAYS = 30
PASSWORD = "benchmark password"
BATCH = 4_320


@asynccontextmanager
async def scratch_url(engine: str, server_url: str, folder: Path) -> AsyncIterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"coldchain_bench_portal_{os.getpid()}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            base, _, _ = server_url.rpartition("/")
            yield f"{base}/{name}"
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


def month_of_readings(start: datetime) -> list[Reading]:
    readings = []
    for minute in range(DAYS * 24 * 60):
        share = minute / (DAYS * 24 * 60)
        temperature = 5.0 + 1.5 * math.sin(minute / 180)
        if 20_000 <= minute < 20_090:  # a 90-minute freezing spell: an excursion and an alarm
            temperature = -2.0
        readings.append(
            Reading(
                seq=minute + 1,
                device_time=start + timedelta(minutes=minute),
                utc_offset_min=60,
                temperature_c=temperature,
                humidity_pct=55.0 + 5 * math.sin(minute / 600),
                pressure_kpa=None,
                latitude=52.52 + (48.137 - 52.52) * share,
                longitude=13.405 + (11.575 - 13.405) * share,
                battery_pct=None,
            )
        )
    return readings


async def populate(store: Store, board: int) -> tuple[int, int]:
    """The world described in the module's docstring: (organisation id, the long shipment's id)."""
    shipper = await make_org(store, "Shipper")
    carrier = await make_org(store, "Carrier", "carrier")
    await create_user(
        store,
        OPERATOR,
        organisation_id=shipper.id,
        role="logistics",
        name="Bench User",
        email="bench@example.org",
        password=PASSWORD,
        now=NOW,
    )
    start = NOW - timedelta(days=DAYS)
    shipment_ids = []
    for n in range(board):
        shipment = await make_shipment(store, owner=shipper.id, carriers=[carrier.id], reference=f"SHP-{n:04d}")
        tracker = await make_tracker(store, shipper.id, f"TRK-{n:04d}")
        async with store.transaction() as tx:
            await tx.assign_tracker(
                shipment_id=shipment.id, tracker_id=tracker.id, starts_at=start, ends_at=None, now=NOW
            )
            await tx.set_shipment_status(shipment.id, "in_transit", now=NOW)
        if n == 0:
            readings = month_of_readings(start)
        else:
            readings = [
                Reading(
                    seq=k + 1,
                    device_time=NOW - timedelta(minutes=30 - 10 * k),
                    utc_offset_min=0,
                    temperature_c=4.0 + (n % 7) * 0.3,
                    humidity_pct=None,
                    pressure_kpa=None,
                    latitude=45 + (n % 50) * 0.2,
                    longitude=5 + (n // 50) * 0.8,
                    battery_pct=None,
                )
                for k in range(3)
            ]
        for first in range(0, len(readings), BATCH):
            await record_batch(store, tracker.id, readings[first : first + BATCH], now=NOW)
        shipment_ids.append(shipment.id)
    return shipper.id, shipment_ids[0]


async def timed(runs: int, request: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    for _ in range(3):
        await request()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await request()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, math.ceil(0.95 * len(samples)) - 1)]


def ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text[:300]}")


async def bench(engine: str, url: str, runs: int, board: int) -> list[tuple[str, str, float, float]]:
    began = time.perf_counter()
    store = await open_store(url, pool_size=4)
    try:
        _, shipment_id = await populate(store, board)
    finally:
        await store.close()
    print(f"{engine}: set up {board} shipments and {DAYS * 1440:,} readings in {time.perf_counter() - began:.0f} s")
    keys = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    made = generate_keys(keys, pdf_signer=make_pilot_signer("coldchain benchmark", "coldchain"))
    app = create_app(
        load_settings(
            {},
            database_url=url,
            jobs_enabled=False,
            signing_key_file=str(made.signing_key_file),
            published_keys_file=str(made.published_keys_file),
            pdf_signer_file=str(made.pdf_signer_file),
        )
    )
    async with AsyncTestClient(app, base_url="http://127.0.0.1:8000") as client:
        signed = await client.post("/v1/session", json={"email": "bench@example.org", "password": PASSWORD})
        if signed.status_code != 201:
            raise SystemExit(f"sign-in failed: {signed.text}")
        page = await client.get(f"/portal/shipments/{shipment_id}")
        ok(page)
        chart_url = page.text.split('data-readings-url="', 1)[1].split('"', 1)[0]
        chart = await client.get(chart_url)
        ok(chart)
        buckets = len(chart.json()["buckets"])
        board_answer = await client.get("/v1/board")
        ok(board_answer)
        on_board = len(board_answer.json()["shipments"])

        async def chart_data() -> None:
            ok(await client.get(chart_url))

        async def shipment_page() -> None:
            ok(await client.get(f"/portal/shipments/{shipment_id}"))
            ok(await client.get(chart_url))

        async def board_api() -> None:
            ok(await client.get("/v1/board"))

        async def board_page() -> None:
            ok(await client.get("/portal"))

        async def investigation_json() -> None:
            ok(await client.get(f"/v1/shipments/{shipment_id}/investigation"))

        async def investigation_page() -> None:
            ok(await client.get(f"/portal/shipments/{shipment_id}/investigation"))

        async def excursion_report() -> None:
            ok(await client.get(f"/v1/shipments/{shipment_id}/excursion-report"))

        async def certificate_json() -> None:
            ok(await client.get(f"/v1/shipments/{shipment_id}/certificate"))

        async def certificate_pdf() -> None:
            ok(await client.get(f"/v1/shipments/{shipment_id}/certificate.pdf"))

        report_runs = max(3, runs // 4)

        return [
            (engine, f"chart data ({buckets} buckets of 43,200 readings)", *await timed(runs, chart_data)),
            (engine, "shipment page + its chart data", *await timed(runs, shipment_page)),
            (engine, f"GET /v1/board ({on_board} shipments)", *await timed(runs, board_api)),
            (engine, f"board page ({on_board} shipments)", *await timed(runs, board_page)),
            (engine, "investigation JSON (43,200 readings)", *await timed(report_runs, investigation_json)),
            (engine, "investigation page (43,200 readings)", *await timed(report_runs, investigation_page)),
            (engine, "excursion report PDF (43,200 readings)", *await timed(report_runs, excursion_report)),
            (engine, "certificate JSON, signed", *await timed(report_runs, certificate_json)),
            (engine, "certificate PDF, signed (JSON attached)", *await timed(report_runs, certificate_pdf)),
        ]


async def main(args: argparse.Namespace) -> None:
    results = []
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory() as folder:
            async with scratch_url(engine, args.postgres_url, Path(folder)) as url:
                results += await bench(engine, url, args.runs, args.board)
    print(f"\n{'engine':<11} {'request':<48} {'p50 ms':>8} {'p95 ms':>8}")
    for engine, what, p50, p95 in results:
        print(f"{engine:<11} {what:<48} {p50:>8.1f} {p95:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--board", type=int, default=500)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("COLDCHAIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
