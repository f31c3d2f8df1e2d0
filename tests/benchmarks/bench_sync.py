"""Sync ingest through a served coldchain, next to the raw bulk insert rate measured in the same run.

    python tests/benchmarks/bench_sync.py [--engines sqlite,postgresql] [--workers 1[,2,4]] [--load fleet|lean]
        [--trackers 50] [--readings-per-tracker 5000] [--batch-size 1000] [--format json] [--gzip]
        [--catch-up-readings 43200] [--bulk-readings 100000] [--rounds 1] [--copy-connections 8]
        [--evaluation off[,on]] [--postgres-url URL]

``--workers`` takes a list: each count is measured on a database of its own, one after the other in the same run,
and the summary gives each count's rate as a ratio of the first's.

``--load lean`` (:mod:`tests.benchmarks.load`) measures the service rather than the tracker simulator: batches are
built and signed beforehand and sent as raw HTTP/1.1 on one keep-alive connection per tracker; per round, on
PostgreSQL, it first measures the durable COPY reference (the same readings COPYed in batches of 1,000, each
committed, over ``--copy-connections`` connections, into a plain keyed table), then each worker count, and prints
the sustained ingest as a share of that reference, and the CPU seconds per 1,000 readings spent by the load
generator, the service's processes and the PostgreSQL backends of its database. Best of ``--rounds`` per
configuration.

``--evaluation`` (lean load only) takes a list of ``off`` and ``on``: each worker count is measured in each mode
listed, one after the other, each on a fresh scratch database and a freshly started service; set-up is not timed.

- ``off`` (the default): the trackers are registered through the admin API and assigned to no shipment, so the
  service judges nothing;
- ``on``: the trackers are created in the scratch database before the push (``trackers_on_shipments`` of
  ``bench_ingest_evaluation.py``), each assigned, from before its first reading and open-ended, to a shipment of
  its own; all shipments are of one product and lot whose profile is ``bench_engine.PROFILE``, with a carrier
  leg. Every batch is judged by the service's judge after it commits (the service's default; the push's clock
  then stops only when the database says no tracker waits to be judged, so the rate counts the judging), or, with
  ``--judging in_transaction``, inside its ingest transaction (``COLDCHAIN_JUDGE_AFTER_COMMIT=false``).

The readings depend on the list, not on the mode, so both modes of a run push the same readings (see
:mod:`tests.benchmarks.load`): with ``off`` alone (or no ``--evaluation``), the lean load's quiet log as before,
so earlier figures stay comparable; as soon as ``on`` is listed, the eventful log of ``bench_engine.py`` (about
four excursions and one alarm per 1,000 readings) for every mode. With a mode given, each run's line also tells
what the service judged, read from the scratch database after the push: readings judged over every stream,
excursions and alarms stored. A run counts as ``on`` only when it judged every reading acknowledged and stored a
finding, as ``off`` only when it judged nothing; the other runs are reported and left out of the summary. With
both modes, the ratio on/off is printed per round and, in the summary, per worker count (best of the rounds of
each mode), against the target of the scale issue: evaluation on >= 0.75 of off. The summary's "vs first" compares
each worker count with the first in the same mode.

``--load fleet`` (the default) is what follows:

For each engine, ``python -m coldchain serve`` runs as a subprocess (``--workers`` processes) on a scratch
database: a temporary SQLite file, or a PostgreSQL database created on the server ``--postgres-url`` names
(default ``COLDCHAIN_TEST_POSTGRES_URL``, else the local server) and dropped afterwards. Printed per engine:

a. raw bulk insert: ``store.insert_readings`` of fresh readings in one transaction, in this process, with the
   code of ``bench_bulk_insert.py``;
b. sustained ingest: ``--trackers`` trackers pushing at once (``tracker_sim.run_fleet``; their readings are
   generated and logged before the clock starts, the push phase is timed): readings acknowledged per second,
   batch latency p50/p95/p99, and the ratio to the raw bulk rate;
c. catch-up: one tracker back after 30 days offline at one reading a minute (43,200 readings): seconds from
   its first send until the service acknowledges the last reading;
d. server memory: peak RSS of the served process and its uvicorn workers (``/proc/<pid>/status``), sampled
   during the sustained load, and each process's VmHWM at the end.

The load generator runs on the same machine as the service and the database, so every figure includes its
cost; compare ratios measured in one run, not absolutes across machines. Not collected by pytest (no
``test_`` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import msgspec

# Run as a script, sys.path starts with this file's folder, not the repository root that holds the ``tests``
# package. The editable install (``pip install -e .``) adds the root through its .pth file; this line keeps the
# script working without one.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from coldchain.storage import open_store
from coldchain.storage.sqlite import sqlite_path
from tests.benchmarks.bench_bulk_insert import bench_store, make_readings
from tests.benchmarks.bench_ingest_evaluation import SECRET, trackers_on_shipments
from tests.benchmarks.bench_ingest_evaluation import TARGET_RATIO as TARGET_EVALUATION_RATIO
from tests.benchmarks.load import (
    CopyReference,
    LeanResult,
    Log,
    copy_reference,
    cpu_seconds,
    postgres_backends_cpu_s,
    prepare_trackers,
    push,
    register_trackers,
)
from tests.served import ServedColdchain, served, session_pids
from tracker_sim import BUILTIN_SCENARIOS, FleetResult, run_fleet

ADMIN_TOKEN = "bench-sync-admin-token"
ENGINES = ("sqlite", "postgresql")
EVALUATION_MODES = ("off", "on")
STARTUP_S = 60.0

# The sync feature's targets; the script reports against them, it does not enforce them.
TARGET_POSTGRES_READINGS_PER_S = 100_000
TARGET_RATIO_TO_BULK = 0.25
TARGET_CATCH_UP_S = 3.0


# --- the served process's memory ---------------------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemorySampler:
    """Samples the summed RSS of a served process tree; remembers the peak and each process's VmHWM."""

    session: int
    interval_s: float = 0.05
    peak_rss_kib: int = 0
    peak_processes: int = 0
    hwm_kib: dict[int, int] = field(default_factory=dict)

    def sample(self) -> None:
        pids = session_pids(self.session)
        total = sum(_status_kib(pid, "VmRSS") for pid in pids)
        if total > self.peak_rss_kib:
            self.peak_rss_kib, self.peak_processes = total, len(pids)
        for pid in pids:
            self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), _status_kib(pid, "VmHWM"))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)


# --- scratch databases ---------------------------------------------------------------------------------------


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@asynccontextmanager
async def scratch_postgres(server_url: str, name: str) -> AsyncIterator[str]:
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


@contextmanager
def scratch_sqlite(folder: Path, name: str) -> Iterator[str]:
    path = folder / f"{name}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@asynccontextmanager
async def scratch_database(engine: str, args: argparse.Namespace, folder: Path, name: str) -> AsyncIterator[str]:
    if engine == "sqlite":
        with scratch_sqlite(folder, name) as url:
            yield url
    else:
        async with scratch_postgres(args.postgres_url, f"{name}_{os.getpid()}") as url:
            yield url


# --- the measurements ---------------------------------------------------------------------------------------


class EngineFigures(msgspec.Struct, kw_only=True):
    engine: str
    workers: int
    bulk_readings_per_s: float = 0.0
    sustained: FleetResult | None = None
    catch_up: FleetResult | None = None
    catch_up_acked_through: int = 0
    peak_rss_kib: int = 0
    peak_processes: int = 0
    hwm_kib: dict[int, int] = msgspec.field(default_factory=dict)


async def raw_bulk_rate(database_url: str, readings: int) -> float:
    """The store's bulk path on fresh readings, one transaction, as ``bench_bulk_insert.py`` measures it."""
    store = await open_store(database_url)
    try:
        results = await bench_store(store, make_readings(readings))
    finally:
        await store.close()
    rate: float = results["bulk, fresh"]
    return rate


async def sustained_ingest(
    service: ServedColdchain, args: argparse.Namespace, sampler: MemorySampler, logbooks: Path
) -> FleetResult:
    sampling = asyncio.create_task(sampler.run())
    try:
        return await run_fleet(
            service.url,
            admin_token=ADMIN_TOKEN,
            count=args.trackers,
            readings_per_tracker=args.readings_per_tracker,
            batch_size=args.batch_size,
            concurrency=args.trackers,
            wire_format=args.format,
            gzip=args.gzip,
            logbook_dir=logbooks,
            serial_prefix="sustained",
        )
    finally:
        sampling.cancel()
        with suppress(asyncio.CancelledError):
            await sampling
        sampler.sample()


async def catch_up(
    service: ServedColdchain, args: argparse.Namespace, http: httpx.AsyncClient, logbooks: Path
) -> tuple[FleetResult, int]:
    """One tracker back after 30 days offline at 1-minute logging; returns the run and the service's ack."""
    offline = timedelta(minutes=args.catch_up_readings)
    scenario = msgspec.structs.replace(
        BUILTIN_SCENARIOS["reefer-road"],
        name="catch-up",
        interval_min=1.0,
        duration_h=offline / timedelta(hours=1),
    )
    result = await run_fleet(
        service.url,
        admin_token=ADMIN_TOKEN,
        count=1,
        scenarios=[scenario],
        readings_per_tracker=args.catch_up_readings,
        batch_size=args.catch_up_batch_size,
        concurrency=1,
        wire_format=args.format,
        gzip=args.gzip,
        logbook_dir=logbooks,
        start=datetime.now(UTC) - offline,
        serial_prefix="catch-up",
    )
    (tracker,) = result.credentials
    response = await http.get(
        f"{service.url}/v1/trackers/{tracker.tracker_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    response.raise_for_status()
    acked_through: int = response.json()["sync"]["acked_through"]
    return result, acked_through


async def bench_engine(engine: str, args: argparse.Namespace, workers: int) -> EngineFigures:
    figures = EngineFigures(engine=engine, workers=workers)
    print(f"\n== {engine}, {workers} worker(s) ==", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_sync-") as folder:
        workdir = Path(folder)
        print(f"a. raw bulk insert, {args.bulk_readings:,} readings, in this process:")
        async with scratch_database(engine, args, workdir, "coldchain_bench_raw") as url:
            figures.bulk_readings_per_s = await raw_bulk_rate(url, args.bulk_readings)

        limits = httpx.Limits(max_connections=4)
        async with (
            scratch_database(engine, args, workdir, "coldchain_bench_sync") as url,
            httpx.AsyncClient(limits=limits, timeout=60) as http,
            served(
                url,
                workdir,
                http=http,
                workers=workers,
                pool_size=args.db_pool_size,
                admin_token=ADMIN_TOKEN,
                startup_s=STARTUP_S,
            ) as service,
        ):
            assert service.process is not None
            sampler = MemorySampler(session=service.process.pid)
            sampler.sample()
            idle_rss_kib = sampler.peak_rss_kib
            sustained = await sustained_ingest(service, args, sampler, workdir / "sustained")
            figures.sustained = sustained
            figures.peak_rss_kib, figures.peak_processes = sampler.peak_rss_kib, sampler.peak_processes
            figures.hwm_kib = dict(sampler.hwm_kib)
            _print_sustained(figures, args)
            figures.catch_up, figures.catch_up_acked_through = await catch_up(service, args, http, workdir / "catch-up")
            _print_catch_up(figures, args)
            print(
                f"d. server memory ({figures.peak_processes} processes): idle RSS {idle_rss_kib / 1024:.0f} MiB, "
                f"peak RSS during the load {figures.peak_rss_kib / 1024:.0f} MiB (sum over the processes); "
                "VmHWM per process: "
                + ", ".join(f"{pid}: {kib / 1024:.0f} MiB" for pid, kib in sorted(figures.hwm_kib.items()))
            )
            if "Traceback" in (output := service.output()):
                print(f"   the service logged errors:\n{output[-4000:]}")
    return figures


# --- the lean load: the service's own rate, workers side by side, the COPY reference --------------------------


class Judged(msgspec.Struct, frozen=True, kw_only=True):
    """What the service judged on a scratch database: readings over every stream, findings stored."""

    readings: int
    excursions: int
    alarms: int

    def bears_out(self, evaluation: str, readings_acked: int) -> bool:
        """Whether a run in mode ``evaluation`` judged what the mode says: with ``on``, every reading acknowledged
        and at least one finding stored; with ``off``, nothing."""
        if evaluation == "on":
            return self.readings == readings_acked > 0 and self.excursions + self.alarms > 0
        return self.readings == self.excursions == self.alarms == 0


_JUDGED_SQL = (
    "SELECT (SELECT coalesce(sum(readings), 0) FROM evaluation_streams),"
    " (SELECT count(*) FROM excursions), (SELECT count(*) FROM alarms)"
)


async def judged(database_url: str) -> Judged:
    """Read what the service judged from the scratch database (after the push: it is not timed)."""
    if database_url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(database_url))) as db:
            row = db.execute(_JUDGED_SQL).fetchone()
    else:
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow(_JUDGED_SQL)
        finally:
            await conn.close()
    readings, excursions, alarms = row
    return Judged(readings=int(readings), excursions=int(excursions), alarms=int(alarms))


async def trackers_for(
    evaluation: str, service: ServedColdchain, database_url: str, count: int
) -> list[tuple[str, bytes]]:
    """The trackers of a run, (serial, secret) each: registered through the admin API and on no shipment (``off``),
    or created in the database, each on a shipment of its own with the benchmark profile (``on``)."""
    if evaluation == "off":
        return await register_trackers(service.url, admin_token=ADMIN_TOKEN, count=count)
    store = await open_store(database_url, pool_size=1)
    try:
        created = await trackers_on_shipments(store, "lean", count)
    finally:
        await store.close()
    return [(serial, SECRET.encode()) for _, serial in created]


def _log(args: argparse.Namespace) -> Log:
    """The eventful log as soon as evaluation ``on`` is listed, for every mode of the run; else the quiet one."""
    return "eventful" if "on" in args.evaluation else "quiet"


def _by_mode(args: argparse.Namespace) -> bool:
    """Whether the run measures evaluation modes (an ``--evaluation`` other than ``off`` alone): only then does
    the output name the mode and what was judged, so the default output stays as it was."""
    return bool(args.evaluation != ["off"])


class LeanFigures(msgspec.Struct, kw_only=True):
    engine: str
    workers: int
    evaluation: str
    result: LeanResult
    service_cpu_s: float
    backends_cpu_s: float
    peak_rss_kib: int
    judged: Judged

    @property
    def counts(self) -> bool:
        """Whether the run judged what its mode says, so it may stand for the mode."""
        return self.judged.bears_out(self.evaluation, self.result.readings_acked)


async def until_judged(database_url: str) -> float:
    """Judging after commit: seconds until no tracker of the scratch database waits to be judged."""
    started = time.perf_counter()
    store = await open_store(database_url, pool_size=1, migrate=False)
    try:
        while True:
            async with store.transaction() as tx:
                if not await tx.trackers_waiting_for_judgement(limit=1):
                    return time.perf_counter() - started
            await asyncio.sleep(0.01)
    finally:
        await store.close()


METRICS_TOKEN = "bench-metrics-token-0123456789"


async def judge_passes(http: httpx.AsyncClient, url: str) -> str:
    """What the service's judges did after commit, from its metrics: passes, readings per pass, and how many
    readings were read back from the database rather than taken as handed over."""
    response = await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    figures: dict[str, float] = {}
    for line in response.text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(("coldchain_judgements_after_commit_total", "coldchain_judged_after_commit_readings")):
            figures[name] = float(value)
    passes = figures.get("coldchain_judgements_after_commit_total", 0.0)
    handed = figures.get('coldchain_judged_after_commit_readings_total{source="handed"}', 0.0)
    read_back = figures.get('coldchain_judged_after_commit_readings_total{source="read_back"}', 0.0)
    per_pass = (handed + read_back) / passes if passes else 0.0
    return f"judged after commit in {passes:,.0f} passes, {per_pass:,.0f} readings a pass, {read_back:,.0f} read back"


async def lean_once(engine: str, args: argparse.Namespace, workers: int, evaluation: str, workdir: Path) -> LeanFigures:
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (before the service starts: nothing waits)
    async with (
        scratch_database(engine, args, workdir, "coldchain_bench_lean") as url,
        httpx.AsyncClient(timeout=60) as http,
        served(
            url,
            workdir,
            http=http,
            workers=workers,
            pool_size=args.db_pool_size,
            admin_token=ADMIN_TOKEN,
            startup_s=STARTUP_S,
            settings={
                "JUDGE_AFTER_COMMIT": "true" if args.judging == "after_commit" else "false",
                "METRICS_TOKEN": METRICS_TOKEN,
            },
        ) as service,
    ):
        assert service.process is not None
        trackers = prepare_trackers(
            service.url,
            await trackers_for(evaluation, service, url, args.trackers),
            readings_per_tracker=args.readings_per_tracker,
            batch_size=args.batch_size,
            wire_format=args.format,
            compress=args.gzip,
            log=_log(args),
        )
        database = url.rpartition("/")[2]
        sampler = MemorySampler(session=service.process.pid)
        pids = service.pids()
        service_cpu = cpu_seconds(pids)
        backends = postgres_backends_cpu_s(database) if engine == "postgresql" else {}
        sampling = asyncio.create_task(sampler.run())
        try:
            result = await push(service.url, trackers)
            if args.judging == "after_commit":  # the clock stops when every reading is judged
                result.push_s += await until_judged(url)
                print(f"   {await judge_passes(http, service.url)}", flush=True)
        finally:
            sampling.cancel()
            with suppress(asyncio.CancelledError):
                await sampling
        service_cpu_s = cpu_seconds(pids) - service_cpu
        backends_after = postgres_backends_cpu_s(database) if engine == "postgresql" else {}
        backends_cpu_s = sum(cpu - backends.get(pid, 0.0) for pid, cpu in backends_after.items())
        found = await judged(url)
        if "Traceback" in (output := service.output()):
            print(f"   the service logged errors:\n{output[-4000:]}")
    figures = LeanFigures(
        engine=engine,
        workers=workers,
        evaluation=evaluation,
        result=result,
        service_cpu_s=service_cpu_s,
        backends_cpu_s=backends_cpu_s,
        peak_rss_kib=sampler.peak_rss_kib,
        judged=found,
    )
    _print_lean(figures, by_mode=_by_mode(args))
    return figures


def _per_thousand_ms(seconds: float, readings: int) -> float:
    return seconds / readings * 1_000_000 if readings else 0.0


def _print_lean(f: LeanFigures, *, by_mode: bool) -> None:
    r = f.result
    mode = f", evaluation {f.evaluation}" if by_mode else ""
    print(
        f"   {f.engine}, {f.workers} worker(s){mode}: {r.readings_acked:,} of {r.readings_sent:,} readings in "
        f"{r.push_s:.2f} s: {r.readings_per_s:,.0f}/s; batch p50 {r.latency_ms(0.5):.0f} ms, "
        f"p95 {r.latency_ms(0.95):.0f} ms, p99 {r.latency_ms(0.99):.0f} ms; waited {r.waited}, "
        f"reconnects {r.reconnects}, errors {len(r.errors)}; CPU ms per 1,000 readings: generator "
        f"{_per_thousand_ms(r.generator_cpu_s, r.readings_acked):.1f}, service "
        f"{_per_thousand_ms(f.service_cpu_s, r.readings_acked):.1f}, database backends "
        f"{_per_thousand_ms(f.backends_cpu_s, r.readings_acked):.1f}; peak RSS {f.peak_rss_kib / 1024:.0f} MiB"
        + (_judged_text(f) if by_mode else ""),
        flush=True,
    )
    for error in r.errors[:5]:
        print(f"   error: {error}")


def _judged_text(f: LeanFigures) -> str:
    j = f.judged
    text = f"; judged {j.readings:,} readings, stored {j.excursions:,} excursions and {j.alarms:,} alarms"
    return text if f.counts else f"{text}: NOT evaluation {f.evaluation}, left out of the summary"


def _ratio_text(on: float, off: float) -> str:
    ratio = on / off
    verdict = "meets the target" if ratio >= TARGET_EVALUATION_RATIO else "below the target"
    return f"{ratio:.2f}, {verdict} (>= {TARGET_EVALUATION_RATIO:.2f})"


def _print_round_ratio(this_round: dict[str, LeanFigures]) -> None:
    off, on = this_round.get("off"), this_round.get("on")
    if off is None or on is None:
        return
    if off.counts and on.counts:
        ratio = _ratio_text(on.result.readings_per_s, off.result.readings_per_s)
    else:
        ratio = "none: a run did not judge what its mode says"
    print(f"   {on.engine}, {on.workers} worker(s), ratio on/off this round: {ratio}", flush=True)


async def bench_lean(engine: str, args: argparse.Namespace) -> None:
    references: list[CopyReference] = []
    runs: dict[tuple[int, str], list[LeanFigures]] = {
        (workers, evaluation): [] for workers in args.workers for evaluation in args.evaluation
    }
    for round_number in range(1, args.rounds + 1):
        print(f"\n== {engine}, lean load, round {round_number} of {args.rounds} ==", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench_sync-") as folder:
            workdir = Path(folder)
            if engine == "postgresql" and args.copy_connections:
                async with scratch_database(engine, args, workdir, "coldchain_bench_copy") as url:
                    reference = await copy_reference(
                        url,
                        trackers=args.trackers,
                        readings_per_tracker=args.readings_per_tracker,
                        batch_size=1_000,
                        connections=args.copy_connections,
                    )
                references.append(reference)
                print(
                    f"   COPY reference: {reference.readings:,} readings in batches of {reference.batch_size:,}, "
                    f"each committed (synchronous_commit={reference.synchronous_commit}), "
                    f"{reference.connections} connections: {reference.readings_per_s:,.0f}/s",
                    flush=True,
                )
            for workers in args.workers:
                this_round = {}
                for evaluation in args.evaluation:
                    figures = await lean_once(engine, args, workers, evaluation, workdir / f"w{workers}-{evaluation}")
                    runs[workers, evaluation].append(figures)
                    this_round[evaluation] = figures
                _print_round_ratio(this_round)
    _print_lean_summary(engine, args, references, runs)


def _print_lean_summary(
    engine: str,
    args: argparse.Namespace,
    references: list[CopyReference],
    runs: dict[tuple[int, str], list[LeanFigures]],
) -> None:
    by_mode = _by_mode(args)
    best = {
        key: max(counted, key=lambda f: f.result.readings_per_s)
        for key, figures in runs.items()
        if (counted := [f for f in figures if f.counts])
    }
    reference = max((r.readings_per_s for r in references), default=0.0)
    first = {evaluation: best.get((args.workers[0], evaluation)) for evaluation in args.evaluation}
    print(f"\n== summary, {engine}, lean load (best of {args.rounds}) ==")
    if reference:
        print(f"COPY reference: {reference:,.0f} readings/s")
    mode_heading = f" {'evaluation':>10}" if by_mode else ""
    print(
        f"{'workers':>7}{mode_heading} {'ingest/s':>10} {'vs first':>8} {'vs COPY':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'gen ms/1k':>9} {'svc ms/1k':>9} {'db ms/1k':>9}"
    )
    for workers, evaluation in runs:
        mode = f" {evaluation:>10}" if by_mode else ""
        f = best.get((workers, evaluation))
        if f is None:
            print(f"{workers:>7}{mode} no run judged what evaluation {evaluation} says (see the runs above)")
            continue
        r = f.result
        base = first[evaluation]
        versus_first = f"{r.readings_per_s / base.result.readings_per_s:>8.2f}" if base else f"{'-':>8}"
        versus_copy = f"{r.readings_per_s / reference:>8.2f}" if reference else f"{'-':>8}"
        print(
            f"{workers:>7}{mode} {r.readings_per_s:>10,.0f} {versus_first} {versus_copy} "
            f"{r.latency_ms(0.5):>7.0f} {r.latency_ms(0.95):>7.0f} {r.latency_ms(0.99):>7.0f} "
            f"{_per_thousand_ms(r.generator_cpu_s, r.readings_acked):>9.1f} "
            f"{_per_thousand_ms(f.service_cpu_s, r.readings_acked):>9.1f} "
            f"{_per_thousand_ms(f.backends_cpu_s, r.readings_acked):>9.1f}"
        )
    if {"off", "on"} <= set(args.evaluation):
        print(f"evaluation on/off, {_log(args)} log, best of {args.rounds} each:")
        for workers in args.workers:
            off, on = best.get((workers, "off")), best.get((workers, "on"))
            ratio = (
                _ratio_text(on.result.readings_per_s, off.result.readings_per_s)
                if off and on
                else "none: a mode has no run that judged what it says"
            )
            print(f"{workers:>7} worker(s): {ratio}")


def _print_sustained(figures: EngineFigures, args: argparse.Namespace) -> None:
    result = figures.sustained
    assert result is not None
    ratio = result.readings_per_s / figures.bulk_readings_per_s
    target = (
        f" (target {TARGET_POSTGRES_READINGS_PER_S:,})" if figures.engine == "postgresql" else " (no target on SQLite)"
    )
    print(
        f"b. sustained ingest: {result.trackers} trackers at once, {args.readings_per_tracker:,} readings each, "
        f"batches of {args.batch_size:,}, {args.format}{' + gzip' if args.gzip else ''}\n"
        f"   {result.readings_acked:,} of {result.readings_logged:,} readings acknowledged in {result.push_s:.2f} s "
        f"(generated beforehand in {result.generate_s:.1f} s): {result.readings_per_s:,.0f} readings/s{target}\n"
        f"   batch latency p50 {result.latency_p50_ms:.0f} ms, p95 {result.latency_p95_ms:.0f} ms, "
        f"p99 {result.latency_p99_ms:.0f} ms over {result.batches:,} batches; "
        f"transient failures {result.failures}, throttled {result.throttled}, errors {len(result.errors)}\n"
        f"   ratio to the raw bulk rate: {ratio:.2f} (target ≥ {TARGET_RATIO_TO_BULK})"
    )
    for error in result.errors[:5]:
        print(f"   error: {error}")


def _print_catch_up(figures: EngineFigures, args: argparse.Namespace) -> None:
    result = figures.catch_up
    assert result is not None
    print(
        f"c. catch-up: one tracker, {result.readings_logged:,} readings (1 a minute, "
        f"{args.catch_up_readings / 1440:.0f} days offline), batches of {args.catch_up_batch_size:,}: "
        f"acked_through = {figures.catch_up_acked_through:,} after {result.push_s:.2f} s "
        f"(target < {TARGET_CATCH_UP_S:g} s), {result.batches} batches, "
        f"p50 {result.latency_p50_ms:.0f} ms, p99 {result.latency_p99_ms:.0f} ms"
    )
    for error in result.errors[:5]:
        print(f"   error: {error}")


def _print_summary(all_figures: list[EngineFigures]) -> None:
    print("\n== summary ==")
    print(
        f"{'engine':<11} {'workers':>7} {'bulk/s':>10} {'ingest/s':>10} {'ratio':>6} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'catch-up s':>10} {'peak RSS MiB':>12}"
    )
    for f in all_figures:
        s, c = f.sustained, f.catch_up
        assert s is not None and c is not None
        print(
            f"{f.engine:<11} {f.workers:>7} {f.bulk_readings_per_s:>10,.0f} {s.readings_per_s:>10,.0f} "
            f"{s.readings_per_s / f.bulk_readings_per_s:>6.2f} {s.latency_p50_ms:>7.0f} {s.latency_p95_ms:>7.0f} "
            f"{s.latency_p99_ms:>7.0f} {c.push_s:>10.2f} {f.peak_rss_kib / 1024:>12.0f}"
        )


def _engines(text: str) -> list[str]:
    engines = [name.strip() for name in text.split(",") if name.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown or not engines:
        raise argparse.ArgumentTypeError(f"engines are a comma-separated subset of {', '.join(ENGINES)}")
    return engines


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("workers are positive numbers, comma-separated: 1,2,4")
    return counts


def _evaluation_modes(text: str) -> list[str]:
    modes = [name.strip() for name in text.split(",") if name.strip()]
    if not modes or set(modes) - set(EVALUATION_MODES) or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError("evaluation is off, on, or both, comma-separated: off,on")
    return modes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", type=_engines, default=list(ENGINES), help="default: sqlite,postgresql")
    parser.add_argument(
        "--workers", type=_counts, default=[1], help="service processes (uvicorn workers), or a list: 1,2,4"
    )
    parser.add_argument(
        "--load", choices=("fleet", "lean"), default="fleet", help="tracker_sim's fleet, or prepared batches"
    )
    parser.add_argument("--rounds", type=int, default=1, help="lean load: rounds, the best of each is reported")
    parser.add_argument(
        "--judging",
        choices=("after_commit", "in_transaction"),
        default="after_commit",
        help="lean load: the service judges after each batch commits (its default; the clock then stops when every"
        " reading is judged), or inside each batch's transaction (COLDCHAIN_JUDGE_AFTER_COMMIT=false)",
    )
    parser.add_argument(
        "--copy-connections", type=int, default=8, help="lean load on PostgreSQL: COPY reference connections (0: none)"
    )
    parser.add_argument(
        "--evaluation",
        type=_evaluation_modes,
        default=["off"],
        help="lean load: off (trackers on no shipment), on (each on a shipment), or both: off,on (default: off)",
    )
    parser.add_argument("--db-pool-size", type=int, help="PostgreSQL connections per service process")
    parser.add_argument("--trackers", type=int, default=50, help="trackers pushing at once")
    parser.add_argument("--readings-per-tracker", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--format", choices=("json", "msgpack"), default="json")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--catch-up-readings", type=int, default=43_200, help="default: 30 days at 1 a minute")
    parser.add_argument("--catch-up-batch-size", type=int, default=1_000)
    parser.add_argument("--bulk-readings", type=int, default=100_000, help="readings for the raw bulk rate")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("COLDCHAIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    return parser


def _load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if args.load != "lean" and args.evaluation != ["off"]:
        parser.error("--evaluation on is measured by the lean load only: add --load lean")
    print(
        f"bench_sync: {os.cpu_count()} CPUs; service, database and load generator share them. "
        f"{args.trackers} trackers × {args.readings_per_tracker:,} readings, batches of {args.batch_size:,}, "
        f"{args.load} load. Load average before: {_load_average()}"
    )
    if args.load == "lean":
        for engine in args.engines:
            asyncio.run(bench_lean(engine, args))
    else:
        results = [
            asyncio.run(bench_engine(engine, args, workers)) for engine in args.engines for workers in args.workers
        ]
        _print_summary(results)
    print(f"load average after: {_load_average()}")


if __name__ == "__main__":
    main()
