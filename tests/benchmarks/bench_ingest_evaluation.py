"""What judging readings at ingest costs: ingest throughput with evaluation on and off, measured in one run.

    python tests/benchmarks/bench_ingest_evaluation.py [--engines sqlite,postgresql] [--trackers 20]
        [--readings-per-tracker 5000] [--batch-size 1000] [--concurrency 4] [--rounds 2]
        [--judging after_commit|in_transaction] [--postgres-url URL]

For each engine, on a scratch database (a temporary SQLite file; a PostgreSQL database created on the server
``--postgres-url`` names, default ``COLDCHAIN_TEST_POSTGRES_URL``, else the local server, and dropped
afterwards), ``--trackers`` trackers, each assigned to a shipment of its own with the profile of
``bench_engine.py`` (five temperature rules, 24 h MKT), push logs of one reading a minute, ``--concurrency`` at a
time, in batches of ``--batch-size``. Two logs:

- eventful: the log of ``bench_engine.py`` (a warm excursion every 10 h, a longer one every three days, a freeze
  dip a day, a spike above 25 °C a week, a few gaps): about four excursions and one alarm per 1,000 readings,
  each stored, each alarm told to the shipment's parties;
- quiet: 2–8 °C throughout (what most batches of most shipments look like): nothing to store but the state.

Two paths:

- transaction: ``record_batch``, the ingest use case, called in this process: the ingest transaction's own
  cost, so the stricter ratio;
- request: ``POST /v1/trackers/{serial}/sync`` with signed JSON bodies into the real app (``create_app``) over
  ASGI in this process: everything the service does for a batch, without a network or a load generator.

Each combination runs with ``SyncPolicy(evaluate=False)`` (off) and with evaluation (on), each on fresh trackers,
alternating for ``--rounds`` rounds. "On" is judged after each batch commits, by a judge
(:mod:`coldchain.services.judging`; in the request path the app's own), as the service does by default, and the
clock stops when every reading is judged; ``--judging in_transaction`` judges inside each batch's transaction.
Bodies and readings are built before the clock starts. Printed per engine: readings/s off and on (best round of
each) and their ratio, against the target that evaluation costs at most 25 % of ingest throughput (ratio >= 0.75),
and what the last "on" round judged and stored, to compare the two ways of judging.
Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Leg, Place
from coldchain.http.app import create_app
from coldchain.services.judging import Judge
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.settings import load_settings
from coldchain.storage import Store, open_store
from tests.benchmarks.bench_engine import PROFILE
from tests.benchmarks.bench_engine import make_readings as eventful_readings

ENGINES = ("sqlite", "postgresql")
TARGET_RATIO = 0.75
NOW = datetime(2026, 6, 1, tzinfo=UTC)
SECRET = "bench-secret"
ON = SyncPolicy(max_future=timedelta(days=3650))
ON_AFTER_COMMIT = SyncPolicy(max_future=timedelta(days=3650), judge_after_commit=True)
OFF = SyncPolicy(max_future=timedelta(days=3650), evaluate=False)


def quiet_readings(count: int, *, seed: int = 11) -> list[Reading]:
    randomness = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        Reading(
            seq=seq,
            device_time=start + timedelta(minutes=seq),
            temperature_c=round(5.0 + randomness.uniform(-1.5, 1.5), 1),
        )
        for seq in range(1, count + 1)
    ]


LOGS: dict[str, Callable[[int], list[Reading]]] = {"eventful": eventful_readings, "quiet": quiet_readings}


@dataclass
class Figure:
    path: str
    log: str
    off: float = 0.0
    on: float = 0.0
    found: tuple[int, int, int] = (0, 0, 0)
    """Of the last round with evaluation on: readings judged, excursions and alarms stored."""

    @property
    def ratio(self) -> float:
        return self.on / self.off if self.off else 0.0

    def record(self, evaluate: bool, readings: int, seconds: float) -> None:
        """Keep the best rate of each way."""
        rate = readings / seconds
        if evaluate:
            self.on = max(self.on, rate)
        else:
            self.off = max(self.off, rate)


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@asynccontextmanager
async def scratch_url(engine: str, server_url: str, folder: Path) -> AsyncIterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"coldchain_bench_evaluation_{os.getpid()}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield _with_database(server_url, name)
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def trackers_on_shipments(store: Store, label: str, count: int) -> list[tuple[int, str]]:
    """``count`` trackers, each assigned to a new shipment of the benchmark profile: (tracker id, serial)."""
    async with store.transaction() as tx:
        profile, _ = await tx.save_profile_version(PROFILE, now=NOW)
        shipper = await tx.create_organisation(name=f"Shipper {label}", kind="shipper", now=NOW)
        carrier = await tx.create_organisation(name=f"Carrier {label}", kind="carrier", now=NOW)
        product = await tx.create_product(
            organisation_id=shipper.id, name=f"Product {label}", gtin=None, profile_id=profile.id, now=NOW
        )
        lot = await tx.create_lot(product_id=product.id, lot_number="L-1", expires_on=None, now=NOW)
        trackers = []
        for number in range(count):
            shipment = await tx.create_shipment(
                organisation_id=shipper.id,
                reference=f"{label}-{number}",
                product_id=product.id,
                lot_id=lot.id,
                quantity=1,
                profile=profile,
                origin=Place(name="A", lat=52.5, lon=13.4),
                destination=Place(name="B", lat=48.1, lon=11.6),
                waypoints=[],
                geofence_m=500.0,
                legs=[Leg(leg_no=1, carrier_id=carrier.id, mode="road")],
                receiver_id=None,
                promised_at=None,
                priority="standard",
                now=NOW,
            )
            tracker = await tx.create_tracker(
                serial=f"{label}-{number}", secret=SECRET, organisation_id=carrier.id, model=None, now=NOW
            )
            await tx.assign_tracker(
                shipment_id=shipment.id,
                tracker_id=tracker.id,
                starts_at=datetime(2024, 1, 1, tzinfo=UTC),
                ends_at=None,
                now=NOW,
            )
            trackers.append((tracker.id, tracker.serial))
    return trackers


async def each_tracker(
    trackers: list[tuple[int, str]], concurrency: int, push: Callable[[int, str], Awaitable[None]]
) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(tracker_id: int, serial: str) -> None:
        async with gate:
            await push(tracker_id, serial)

    started = time.perf_counter()
    await asyncio.gather(*(one(tracker_id, serial) for tracker_id, serial in trackers))
    return time.perf_counter() - started


def _body(batch: list[Reading]) -> tuple[bytes, str]:
    wire = {
        "readings": [
            {"seq": r.seq, "device_time": r.device_time.isoformat(), "temperature_c": r.temperature_c} for r in batch
        ]
    }
    body = msgspec.json.encode(wire)
    return body, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def measure_transactions(url: str, args: argparse.Namespace, log: str, readings: list[Reading]) -> Figure:
    batches = [readings[start : start + args.batch_size] for start in range(0, len(readings), args.batch_size)]
    figure = Figure(path="transaction", log=log)
    store = await open_store(url, pool_size=max(args.concurrency, 2))
    after_commit = args.judging == "after_commit"
    try:
        for round_no in range(args.rounds):
            for evaluate in (False, True):
                label = _label("transaction", log, round_no, evaluate)
                trackers = await trackers_on_shipments(store, label, args.trackers)
                policy = OFF if not evaluate else ON_AFTER_COMMIT if after_commit else ON
                judge = Judge(store, clock=lambda: NOW) if evaluate and after_commit else None

                async def push(
                    tracker_id: int, serial: str, policy: SyncPolicy = policy, judge: Judge | None = judge
                ) -> None:
                    hand_over = None if judge is None else judge.hand_over
                    for batch in batches:
                        await record_batch(store, tracker_id, batch, now=NOW, policy=policy, hand_over=hand_over)

                async with judge.running() if judge is not None else nullcontext():
                    started = time.perf_counter()
                    await each_tracker(trackers, args.concurrency, push)
                    if judge is not None:
                        await judge.settle()  # the clock stops when every reading is judged
                    elapsed = time.perf_counter() - started
                figure.record(evaluate, args.trackers * len(readings), elapsed)
                if evaluate:
                    figure.found = await findings_of(store, label)
    finally:
        await store.close()
    return figure


async def measure_requests(url: str, args: argparse.Namespace, log: str, readings: list[Reading]) -> Figure:
    bodies = [_body(readings[start : start + args.batch_size]) for start in range(0, len(readings), args.batch_size)]
    figure = Figure(path="request", log=log)
    after_commit = args.judging == "after_commit"
    settings = load_settings(
        {}, database_url=url, db_pool_size=max(args.concurrency, 2), judge_after_commit=after_commit
    )
    app = create_app(settings, clock=lambda: NOW)
    async with AsyncTestClient(app) as client:
        for round_no in range(args.rounds):
            for evaluate in (False, True):
                label = _label("request", log, round_no, evaluate)
                trackers: list[tuple[int, str]] = client.blocking_portal.call(
                    trackers_on_shipments, app.state.store, label, args.trackers
                )
                app.state.sync_policy = OFF if not evaluate else ON_AFTER_COMMIT if after_commit else ON

                async def push(tracker_id: int, serial: str) -> None:
                    for body, signature in bodies:
                        response = await client.post(
                            f"/v1/trackers/{serial}/sync",
                            content=body,
                            headers={"Content-Type": "application/json", "X-Signature": signature},
                        )
                        assert response.status_code == 200, response.text

                started = time.perf_counter()
                await each_tracker(trackers, args.concurrency, push)
                if app.state.judge is not None:  # the clock stops when every reading is judged
                    client.blocking_portal.call(app.state.judge.settle)
                figure.record(evaluate, args.trackers * len(readings), time.perf_counter() - started)
                if evaluate:
                    figure.found = client.blocking_portal.call(findings_of, app.state.store, label)
    return figure


async def findings_of(store: Store, label: str) -> tuple[int, int, int]:
    """Readings judged, excursions and alarms stored, of the shipments of one measurement (``label``)."""
    judged = excursions = alarms = 0
    async with store.transaction() as tx:
        for shipment_id in await tx.shipment_ids(party=None):
            shipment = await tx.get_shipment(shipment_id)
            if shipment is None or not shipment.reference.startswith(f"{label}-"):
                continue
            judged += sum(stream.readings for stream in await tx.evaluation_streams(shipment_id))
            excursions += len(await tx.excursions_of_shipment(shipment_id))
            alarms += len(await tx.alarms_of_shipment(shipment_id))
    return judged, excursions, alarms


def _label(path: str, log: str, round_no: int, evaluate: bool) -> str:
    return f"{path}-{log}-{round_no}-{'on' if evaluate else 'off'}"


async def main(args: argparse.Namespace) -> None:
    print(
        f"{args.trackers} trackers x {args.readings_per_tracker:,} readings, batches of {args.batch_size},"
        f" {args.concurrency} at a time, best of {args.rounds} rounds; judging {args.judging.replace('_', ' ')}"
    )
    for engine in args.engines:
        print(f"{engine}:")
        print(f"  {'path':<12} {'log':<9} {'off':>13} {'on':>13} {'ratio':>6}")
        with tempfile.TemporaryDirectory() as folder:
            async with scratch_url(engine, args.postgres_url, Path(folder)) as url:
                for measure in (measure_transactions, measure_requests):
                    for log, make in LOGS.items():
                        figure = await measure(url, args, log, make(args.readings_per_tracker))
                        verdict = "meets the target" if figure.ratio >= TARGET_RATIO else "below the target"
                        judged, excursions, alarms = figure.found
                        print(
                            f"  {figure.path:<12} {log:<9} {figure.off:>11,.0f}/s {figure.on:>11,.0f}/s"
                            f" {figure.ratio:>6.2f}  {verdict} ({TARGET_RATIO:.2f}); judged {judged:,} readings,"
                            f" {excursions:,} excursions, {alarms:,} alarms",
                            flush=True,
                        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", type=lambda text: text.split(","), default=list(ENGINES))
    parser.add_argument("--trackers", type=int, default=20)
    parser.add_argument("--readings-per-tracker", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--judging",
        choices=("after_commit", "in_transaction"),
        default="after_commit",
        help="how evaluation on judges: by a judge after each batch commits (the service's default), or inside"
        " each batch's transaction",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("COLDCHAIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    return parser


if __name__ == "__main__":
    asyncio.run(main(_parser().parse_args()))
