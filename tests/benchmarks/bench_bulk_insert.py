"""Bulk insert of readings on each engine, next to the plain baselines, measured in one run.

    python tests/benchmarks/bench_bulk_insert.py [--readings 100000] [--postgres-url URL]

Prints readings/s for the store's two write paths and the baselines:

- the fast path, ``store.append_readings``: readings ingest knows are new (under the tracker's lock), written
  straight in (COPY into the partitioned ``readings`` on PostgreSQL, a multi-row INSERT on SQLite);
- the careful path, ``store.insert_readings``, on fresh readings and on the same readings again (all duplicates,
  all ignored): every number looked up (PostgreSQL: COPY into a staging table, then ``INSERT ... SELECT`` of the
  numbers no partition holds);
- baselines: ``executemany`` of a one-row INSERT on both engines; on PostgreSQL, COPY into the partitioned
  ``readings``, and COPY into an unpartitioned table keyed ``(tracker_id, seq)`` with the time index, as readings
  were before migration 0018 (neither can ignore duplicates, so both are measured on fresh rows only).

Every figure is on the same machine in the same run; compare ratios, not absolutes. The PostgreSQL server is the
one ``--postgres-url`` names (default ``COLDCHAIN_TEST_POSTGRES_URL``, else the local server); a scratch database
is created and dropped. The readings span 70 days from 1 March 2026, whose monthly partitions are made first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from coldchain.domain.readings import Reading
from coldchain.storage import Store, open_store

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SCRATCH = "coldchain_bench"


def make_readings(count: int) -> list[Reading]:
    return [
        Reading(
            seq=seq,
            device_time=NOW + timedelta(minutes=seq),
            utc_offset_min=60,
            temperature_c=5.0 + (seq % 13) / 10,
            humidity_pct=50.0,
            pressure_kpa=101.3,
            latitude=52.5,
            longitude=13.4,
            battery_pct=90.0,
        )
        for seq in range(1, count + 1)
    ]


def row(tracker_id: int, r: Reading, received_at: datetime, as_text: bool) -> tuple[object, ...]:
    def t(value: datetime) -> object:
        return value.isoformat(timespec="microseconds") if as_text else value

    return (
        tracker_id,
        r.seq,
        t(r.device_time),
        r.utc_offset_min,
        t(received_at),
        r.temperature_c,
        r.humidity_pct,
        r.pressure_kpa,
        r.latitude,
        r.longitude,
        r.battery_pct,
    )


async def timed(label: str, count: int, action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    rate = count / (time.perf_counter() - started)
    print(f"  {label:<44} {rate:>12,.0f} readings/s")
    return rate


async def new_tracker(store: Store, serial: str) -> int:
    async with store.transaction() as tx:
        return (await tx.create_tracker(serial=serial, secret="x", organisation_id=None, model=None, now=NOW)).id


async def bench_store(store: Store, readings: list[Reading]) -> dict[str, float]:
    results = {}
    months = sorted({datetime(r.device_time.year, r.device_time.month, 1, tzinfo=UTC) for r in readings})
    async with store.transaction() as tx:
        await tx.prepare_reading_months([month.date() for month in months])
    tracker_id = await new_tracker(store, "bulk")
    fast_tracker_id = await new_tracker(store, "fast")
    warm_tracker_id = await new_tracker(store, "warm-up")
    async with store.transaction() as tx:  # the connection's first COPY and statements, outside the timings
        await tx.append_readings(warm_tracker_id, readings[:100], received_at=NOW)
        await tx.insert_readings(warm_tracker_id, readings[100:200], received_at=NOW)

    async def bulk() -> None:
        async with store.transaction() as tx:
            await tx.insert_readings(tracker_id, readings, received_at=NOW)

    async def fast() -> None:
        async with store.transaction() as tx:
            await tx.append_readings(fast_tracker_id, readings, received_at=NOW)

    results["fast, fresh"] = await timed("store.append_readings, fresh readings", len(readings), fast)
    results["bulk, fresh"] = await timed("store.insert_readings, fresh readings", len(readings), bulk)
    results["bulk, repeated"] = await timed("store.insert_readings, all repeated", len(readings), bulk)
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == len(readings), "idempotency broken"
        assert await tx.count_readings(fast_tracker_id) == len(readings)
    return results


async def bench_sqlite(count: int) -> None:
    readings = make_readings(count)
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
        print(f"SQLite, {count:,} readings")
        results = await bench_store(store, readings)
        tracker_id = await new_tracker(store, "baseline")
        conn = store._conn  # type: ignore[attr-defined]
        sql = (
            "INSERT INTO readings (tracker_id, seq, device_time, utc_offset_min, received_at, temperature_c,"
            " humidity_pct, pressure_kpa, latitude, longitude, battery_pct)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )

        async def executemany() -> None:
            rows = [row(tracker_id, r, NOW, as_text=True) for r in readings]
            await conn.execute("BEGIN IMMEDIATE")
            await conn.executemany(sql, rows)
            await conn.execute("COMMIT")

        baseline = await timed("baseline: executemany one-row INSERT, fresh", count, executemany)
        await store.close()
    print(f"  ratio careful/executemany (fresh): {results['bulk, fresh'] / baseline:.2f}")
    print(f"  ratio fast/careful (fresh):        {results['fast, fresh'] / results['bulk, fresh']:.2f}")


async def bench_postgres(count: int, server_url: str) -> None:
    readings = make_readings(count)
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {SCRATCH}")
    base, _, _ = server_url.rpartition("/")
    try:
        store = await open_store(f"{base}/{SCRATCH}")
        print(f"PostgreSQL, {count:,} readings")
        results = await bench_store(store, readings)
        conn = await asyncpg.connect(f"{base}/{SCRATCH}")
        columns = [
            "tracker_id", "seq", "device_time", "utc_offset_min", "received_at", "temperature_c",
            "humidity_pct", "pressure_kpa", "latitude", "longitude", "battery_pct",
        ]  # fmt: skip
        executemany_tracker = await new_tracker(store, "executemany")
        copy_tracker = await new_tracker(store, "copy")
        await conn.execute(
            "CREATE TABLE readings_unpartitioned (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
            " PRIMARY KEY (tracker_id, seq));"
            "CREATE INDEX readings_unpartitioned_by_tracker_time ON readings_unpartitioned (tracker_id, device_time)"
        )

        async def executemany() -> None:
            rows = [row(executemany_tracker, r, NOW, as_text=False) for r in readings]
            async with conn.transaction():
                await conn.executemany(
                    f"INSERT INTO readings ({', '.join(columns)}) VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                    rows,
                )

        async def copy() -> None:
            rows = [row(copy_tracker, r, NOW, as_text=False) for r in readings]
            async with conn.transaction():
                await conn.copy_records_to_table("readings", records=rows, columns=columns)

        async def copy_unpartitioned() -> None:
            rows = [row(copy_tracker, r, NOW, as_text=False) for r in readings]
            async with conn.transaction():
                await conn.copy_records_to_table("readings_unpartitioned", records=rows, columns=columns)

        executemany_rate = await timed("baseline: executemany one-row INSERT, fresh", count, executemany)
        copy_rate = await timed("baseline: COPY, partitioned readings", count, copy)
        plain_rate = await timed("baseline: COPY, unpartitioned keyed table", count, copy_unpartitioned)
        await conn.close()
        await store.close()
        fast, careful = results["fast, fresh"], results["bulk, fresh"]
        print(f"  ratio careful/executemany (fresh):       {careful / executemany_rate:.2f}")
        print(f"  ratio careful/COPY (fresh):              {careful / copy_rate:.2f}")
        print(f"  ratio fast/careful (fresh):              {fast / careful:.2f}")
        print(f"  ratio fast/COPY (fresh):                 {fast / copy_rate:.2f}")
        print(f"  ratio COPY partitioned/unpartitioned:    {copy_rate / plain_rate:.2f}")
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("COLDCHAIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    asyncio.run(bench_sqlite(args.readings))
    asyncio.run(bench_postgres(args.readings, args.postgres_url))


if __name__ == "__main__":
    main()
