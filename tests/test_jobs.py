"""The background jobs on each engine: ticks on a shared grid, one claim per tick, the silent-tracker job, and the
scheduler firing real ticks. Two real processes on one PostgreSQL are in ``test_jobs_processes.py``."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from coldchain.domain.notifications import Notification
from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.jobs import RETENTION_INTERVAL_S, Job, JobScheduler, service_jobs, tick_of
from coldchain.metrics import REGISTRY
from coldchain.services.jobs import claim_tick, job_runs
from coldchain.services.retention import prepare_reading_months
from coldchain.services.silence import notice_silent_trackers
from coldchain.settings import load_settings
from coldchain.storage import Store, open_store
from tests.factories import assign, make_org, make_shipment, make_tracker
from tests.mail import SmtpSink
from tests.services.test_emails import person
from tests.services.test_evaluation_ingest import at, log, make_world, sync

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@given(
    # hypothesis takes naive bounds and attaches the zone itself
    moment=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001
    interval_s=st.sampled_from([0.25, 0.5, 1.0, 5.0, 60.0, 3600.0, 86_400.0]),
)
def test_a_tick_is_the_start_of_the_interval_slot_its_moment_falls_in(moment: datetime, interval_s: float) -> None:
    tick = tick_of(moment, interval_s)
    assert tick <= moment < tick + timedelta(seconds=interval_s)
    assert tick_of(tick, interval_s) == tick
    # Aligned to the epoch: every process names the slot alike, whenever it started.
    assert (tick - datetime(1970, 1, 1, tzinfo=UTC)) % timedelta(seconds=interval_s) == timedelta(0)


async def test_a_tick_is_claimed_by_one_of_two_concurrent_claimants(database_url: str) -> None:
    first, second = await open_store(database_url, pool_size=2), await open_store(database_url, pool_size=2)
    ticks = [T0 + timedelta(seconds=n) for n in range(20)]
    winners = []
    try:
        for tick in ticks:
            claimed = await asyncio.gather(
                claim_tick(first, "job", tick, worker="a", now=T0), claim_tick(second, "job", tick, worker="b", now=T0)
            )
            winners.append(claimed)
        runs = await job_runs(first, "job")
    finally:
        await first.close()
        await second.close()
    # A claimant that finds the job's lock taken gives up; the holder claims the tick: never both, never neither.
    assert all(sorted(claimed) == [False, True] for claimed in winners)
    assert [run.tick for run in runs] == ticks
    assert [run.worker for run in runs] == ["a" if a else "b" for a, _ in winners]


async def test_a_tick_claimed_before_is_not_claimed_again(store: Store) -> None:
    assert await claim_tick(store, "job", T0, worker="a", now=T0)
    assert not await claim_tick(store, "job", T0, worker="b", now=T0 + HOUR)
    assert await claim_tick(store, "other-job", T0, worker="b", now=T0)
    assert [(r.job, r.worker) for r in await job_runs(store)] == [("job", "a"), ("other-job", "b")]


async def test_runs_older_than_a_week_are_forgotten_when_a_new_tick_is_claimed(store: Store) -> None:
    await claim_tick(store, "job", T0, worker="a", now=T0)
    await claim_tick(store, "job", T0 + timedelta(days=3), worker="a", now=T0)
    await claim_tick(store, "job", T0 + timedelta(days=8), worker="a", now=T0)
    assert [r.tick for r in await job_runs(store, "job")] == [T0 + timedelta(days=3), T0 + timedelta(days=8)]


async def test_a_scheduler_runs_a_tick_once_and_a_second_scheduler_not_at_all(store: Store) -> None:
    calls: list[datetime] = []

    async def count(now: datetime) -> None:
        calls.append(now)

    job = Job(name="count", interval_s=60.0, run=count)
    clock = iter([T0 + timedelta(seconds=5), T0 + timedelta(seconds=6), T0 + timedelta(seconds=7)])
    first = JobScheduler(store, [job], worker="first", clock=lambda: next(clock))
    second = JobScheduler(store, [job], worker="second", clock=lambda: T0 + timedelta(seconds=30))

    assert await first.run_tick(job)
    assert not await second.run_tick(job)

    assert calls == [T0 + timedelta(seconds=5)]
    [run] = await job_runs(store, "count")
    assert (run.tick, run.worker, run.finished_at, run.error) == (T0, "first", T0 + timedelta(seconds=6), None)


async def test_a_failing_job_records_its_error_and_the_next_tick_runs(store: Store) -> None:
    ticks = iter([T0, T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=1)])
    outcomes = iter([RuntimeError("receiver exploded"), None])

    async def flaky(now: datetime) -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    job = Job(name="flaky", interval_s=60.0, run=flaky)
    scheduler = JobScheduler(store, [job], worker="w", clock=lambda: next(ticks))
    assert await scheduler.run_tick(job)
    assert await scheduler.run_tick(job)
    assert [r.error for r in await job_runs(store, "flaky")] == ["RuntimeError: receiver exploded", None]


async def test_each_run_is_counted_in_the_metrics_by_outcome_and_a_tick_not_claimed_is_not(store: Store) -> None:
    def runs(outcome: str) -> float:
        return REGISTRY.get_sample_value("coldchain_job_runs_total", {"job": "metered", "outcome": outcome}) or 0.0

    def timed() -> float:
        return REGISTRY.get_sample_value("coldchain_job_seconds_count", {"job": "metered"}) or 0.0

    before = (runs("ok"), runs("failed"), timed())
    outcomes = iter([RuntimeError("down"), None])

    async def metered(now: datetime) -> None:
        await asyncio.sleep(0.02)
        if (error := next(outcomes)) is not None:
            raise error

    job = Job(name="metered", interval_s=60.0, run=metered)
    first = JobScheduler(store, [job], worker="first", clock=lambda: T0)
    later = JobScheduler(store, [job], worker="later", clock=lambda: T0 + timedelta(minutes=1))
    assert await first.run_tick(job)
    assert not await JobScheduler(store, [job], worker="second", clock=lambda: T0).run_tick(job)
    assert await later.run_tick(job)

    assert (runs("ok") - before[0], runs("failed") - before[1], timed() - before[2]) == (1, 1, 2)
    seconds = REGISTRY.get_sample_value("coldchain_job_seconds_sum", {"job": "metered"}) or 0.0
    assert seconds >= 0.04


async def test_the_scheduler_fires_every_tick_once_with_two_schedulers_on_one_database(database_url: str) -> None:
    """Two schedulers in one process, each with its own store (its own connections): a real interval grid."""
    stores = [await open_store(database_url, pool_size=2) for _ in range(2)]
    ran: Counter[datetime] = Counter()

    async def tally(now: datetime) -> None:
        ran[tick_of(now, 0.2)] += 1

    job = Job(name="tally", interval_s=0.2, run=tally)
    schedulers = [JobScheduler(store, [job], worker=f"w{n}") for n, store in enumerate(stores)]
    try:
        for scheduler in schedulers:
            scheduler.start()
        await asyncio.sleep(2.1)
        for scheduler in schedulers:
            await scheduler.stop()
        runs = await job_runs(stores[0], "tally")
    finally:
        for store in stores:
            await store.close()
    ticks = [run.tick for run in runs]
    assert len(ticks) >= 6
    assert set(ran.values()) == {1}
    assert sorted(ran) == ticks
    # Consecutive: no tick was left to the other scheduler and then dropped by both.
    assert all(b - a == timedelta(seconds=0.2) for a, b in itertools.pairwise(ticks))
    assert all(run.finished_at is not None for run in runs)


async def test_stopping_the_scheduler_lets_a_tick_under_way_finish(store: Store) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(now: datetime) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.set()

    scheduler = JobScheduler(store, [Job(name="slow", interval_s=0.1, run=slow)], worker="w")
    scheduler.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await scheduler.stop()
    assert finished.is_set()
    [run] = await job_runs(store, "slow")
    assert run.finished_at is not None


# --- silent trackers -------------------------------------------------------------------------------------------


async def _synced(store: Store, tracker_id: int, at: datetime) -> None:
    async with store.transaction() as tx:
        state = await tx.sync_state(tracker_id)
        state.last_sync_at = at
        await tx.save_sync_state(state)


async def _silent_notices(store: Store, *organisation_ids: int) -> list[Notification]:
    async with store.transaction() as tx:
        found = [n for org in organisation_ids for n in await tx.notifications(org)]
    return [n for n in found if n.kind == "tracker.silent"]


async def test_a_tracker_on_duty_is_reported_silent_once_per_silence_to_its_owner_and_the_shipper(
    store: Store,
) -> None:
    shipper = await make_org(store, kind="shipper")
    carrier = await make_org(store, kind="carrier")
    tracker = await make_tracker(store, carrier.id, "SIL-1")
    shipment = await make_shipment(store, owner=shipper.id, carriers=[carrier.id])
    await assign(store, shipment.id, tracker.id, starts_at=T0 - HOUR)
    await _synced(store, tracker.id, T0)

    assert await notice_silent_trackers(store, now=T0 + HOUR, after=HOUR) == []  # silent exactly as long as allowed
    first = await notice_silent_trackers(store, now=T0 + HOUR + timedelta(seconds=1), after=HOUR)
    again = await notice_silent_trackers(store, now=T0 + 5 * HOUR, after=HOUR)

    assert len(first) == 2 and again == []
    notices = await _silent_notices(store, shipper.id, carrier.id)
    assert sorted(n.organisation_id for n in notices) == sorted([shipper.id, carrier.id])
    assert {n.subject for n in notices} == {"tracker:SIL-1"}
    assert {n.shipment_id for n in notices} == {shipment.id}
    assert notices[0].payload["silent_since"] == T0.isoformat()
    assert notices[0].payload["silent_s"] == 3601

    # It syncs again, then falls silent again: a new silence, reported once more.
    await _synced(store, tracker.id, T0 + 6 * HOUR)
    assert await notice_silent_trackers(store, now=T0 + 6 * HOUR + timedelta(minutes=5), after=HOUR) == []
    assert len(await notice_silent_trackers(store, now=T0 + 8 * HOUR, after=HOUR)) == 2
    assert len(await _silent_notices(store, shipper.id, carrier.id)) == 4


async def test_a_tracker_that_never_synced_is_silent_from_the_start_of_its_assignment(store: Store) -> None:
    shipper = await make_org(store)
    tracker = await make_tracker(store, None)  # registered by the operator: no organisation of its own
    shipment = await make_shipment(store, owner=shipper.id)
    await assign(store, shipment.id, tracker.id, starts_at=T0)

    assert await notice_silent_trackers(store, now=T0 + HOUR / 2, after=HOUR) == []
    [notice_id] = await notice_silent_trackers(store, now=T0 + 2 * HOUR, after=HOUR)

    [notice] = await _silent_notices(store, shipper.id)
    assert notice.id == notice_id
    assert notice.payload["last_sync_at"] is None
    assert notice.payload["silent_since"] == T0.isoformat()


async def test_trackers_off_duty_are_never_reported_silent(store: Store) -> None:
    shipper = await make_org(store)
    idle = await make_tracker(store, shipper.id)  # never assigned
    await _synced(store, idle.id, T0 - 10 * HOUR)
    ended = await make_tracker(store, shipper.id)  # its assignment is over
    first = await make_shipment(store, owner=shipper.id)
    await assign(store, first.id, ended.id, starts_at=T0 - 10 * HOUR, ends_at=T0 - 5 * HOUR)
    await _synced(store, ended.id, T0 - 9 * HOUR)
    arrived = await make_tracker(store, shipper.id)  # its shipment was delivered
    second = await make_shipment(store, owner=shipper.id)
    await assign(store, second.id, arrived.id, starts_at=T0 - 10 * HOUR)
    await _synced(store, arrived.id, T0 - 9 * HOUR)
    async with store.transaction() as tx:
        await tx.set_shipment_status(second.id, "delivered", now=T0 - 8 * HOUR)
    future = await make_tracker(store, shipper.id)  # its assignment has not begun
    third = await make_shipment(store, owner=shipper.id)
    await assign(store, third.id, future.id, starts_at=T0 + HOUR)

    assert await notice_silent_trackers(store, now=T0, after=HOUR) == []


async def test_two_processes_noticing_the_same_silence_at_once_report_it_once(database_url: str) -> None:
    stores = [await open_store(database_url, pool_size=2) for _ in range(3)]
    try:
        shipper = await make_org(stores[0])
        for n in range(5):
            tracker = await make_tracker(stores[0], shipper.id)
            shipment = await make_shipment(stores[0], owner=shipper.id)
            await assign(stores[0], shipment.id, tracker.id, starts_at=T0 - n * HOUR)
        published = await asyncio.gather(
            *(notice_silent_trackers(store, now=T0 + 10 * HOUR, after=HOUR) for store in stores)
        )
        notices = await _silent_notices(stores[0], shipper.id)
    finally:
        for store in stores:
            await store.close()
    assert sum(len(ids) for ids in published) == 5
    assert len(notices) == 5
    assert len({n.subject for n in notices}) == 5


# --- session retention -----------------------------------------------------------------------------------------


async def test_the_retention_job_deletes_sessions_ended_longer_ago_than_the_setting_and_stale_failed_sign_ins(
    store: Store,
) -> None:
    settings = load_settings(
        {}, session_retention_s=30 * 86_400, session_idle_s=1800, login_failure_window_s=900, database_url="sqlite://"
    )
    retention, idle = timedelta(days=30), timedelta(minutes=30)
    org = await make_org(store)
    async with store.transaction() as tx:
        user = await tx.create_user(
            organisation_id=org.id, role="logistics", name="Ada", email="ada@example.org", password_hash="x", now=T0
        )

        async def session(name: str, *, begun: datetime, expires: datetime, seen: datetime | None = None) -> None:
            await tx.create_session(
                id_sha256=name, user_id=user.id, csrf_token="c", client="10.0.0.1", now=begun, expires_at=expires
            )
            if seen is not None:
                await tx.touch_session(name, now=seen)

        a_while = T0 - retention  # sessions that ended before this are forgotten
        await session("in use", begun=T0 - HOUR, expires=T0 + 11 * HOUR)
        for name, ended in (("signed out within", a_while + HOUR), ("signed out before", a_while - HOUR)):
            await session(name, begun=ended - HOUR, expires=ended + 11 * HOUR)
            await tx.end_session(name, now=ended)
        for name, expired in (("expired within", a_while + HOUR), ("expired before", a_while - HOUR)):
            await session(name, begun=expired - 12 * HOUR, expires=expired, seen=expired - timedelta(minutes=1))
        # idle: the session ended ``idle`` after its last request, however long its lifetime
        minute = timedelta(minutes=1)
        for name, seen in (("idle within", a_while - idle + minute), ("idle before", a_while - idle - minute)):
            await session(name, begun=seen, expires=T0 + 365 * 24 * HOUR)
        await tx.record_login_failure(email="ada@example.org", client="10.0.0.9", now=T0 - timedelta(minutes=10))
        await tx.record_login_failure(email="ada@example.org", client="10.0.0.9", now=T0 - timedelta(minutes=20))
    async with httpx.AsyncClient() as client:
        job = next(job for job in service_jobs(store, settings, client=client) if job.name == "session-retention")
        ran = await JobScheduler(store, [job], clock=lambda: T0).run_tick(job)
        again = await JobScheduler(store, [job], clock=lambda: T0).run_tick(job)

    async with store.transaction() as tx:
        kept = [name for name in NAMES if await tx.get_session(name) is not None]
        failures = await tx.login_failures(email="ada@example.org", client="10.0.0.9", since=T0 - 365 * 24 * HOUR)
    runs = await job_runs(store, "session-retention")
    assert (ran, again) == (True, False)  # one claim per tick, like every job
    assert kept == ["in use", "signed out within", "expired within", "idle within"]
    assert failures == (1, 1)
    assert [(run.tick, run.error) for run in runs] == [(tick_of(T0, RETENTION_INTERVAL_S), None)]


NAMES = [
    "in use",
    "signed out within",
    "signed out before",
    "expired within",
    "expired before",
    "idle within",
    "idle before",
]


async def test_the_email_jobs_run_only_with_an_smtp_server_and_carry_an_alarm_to_a_person(store: Store) -> None:
    async with httpx.AsyncClient() as client:
        off = [job.name for job in service_jobs(store, load_settings({}), client=client)]
        async with SmtpSink() as sink:
            settings = load_settings(
                {},
                smtp_host="127.0.0.1",
                smtp_port=sink.port,
                smtp_tls="none",
                smtp_from="coldchain <alerts@coldchain.test>",
                public_url="https://coldchain.test",
            )
            jobs = {job.name: job for job in service_jobs(store, settings, client=client, clock=lambda: at(300))}
            world = await make_world(store)
            ann = await person(store, world.receiver, "Ann")
            await jobs["email-delivery"].run(at(299))  # the first plan starts here
            await sync(store, world, log([5.0, 5.0, 26.0]), now=at(300))
            await jobs["email-delivery"].run(at(300))
            await jobs["email-digest"].run(at(300))
            async with store.transaction() as tx:
                assert await tx.email_cursor() == await tx.newest_notification_position()

    assert "escalation-chain" in off and not {"email-delivery", "email-digest"} & set(off)
    assert [r.recipients for r in sink.received] == [[ann.email]]
    assert sink.received[0].message["List-Unsubscribe"] == "<https://coldchain.test/portal/preferences>"


# --- the readings' months --------------------------------------------------------------------------------------


async def test_the_reading_month_jobs_make_months_ahead_and_remove_months_past_the_retention_setting(
    store: Store,
) -> None:
    settings = load_settings({}, readings_partitions_ahead=2, readings_retention_days=1826, database_url="sqlite://")
    now = datetime(2031, 5, 10, 9, 30, tzinfo=UTC)
    old = datetime(2026, 3, 2, tzinfo=UTC)
    await prepare_reading_months(store, now=old, months=0)
    tracker = await make_tracker(store, None)
    kept = Reading(seq=2, device_time=datetime(2026, 6, 2, tzinfo=UTC), temperature_c=5.0)
    async with store.transaction() as tx:
        await tx.append_readings(tracker.id, [Reading(seq=1, device_time=old), kept], received_at=old)
    async with httpx.AsyncClient() as client:
        jobs = {job.name: job for job in service_jobs(store, settings, client=client)}
        scheduler = JobScheduler(store, list(jobs.values()), clock=lambda: now)
        assert await scheduler.run_tick(jobs["reading-months"])
        assert await scheduler.run_tick(jobs["reading-retention"])

    async with store.transaction() as tx:
        made_again = await tx.prepare_reading_months([date(2031, 5, 1), date(2031, 6, 1), date(2031, 7, 1)])
        left = await tx.readings_between(tracker.id, old - HOUR, now)
    assert made_again == []  # the job made them
    assert left == [kept]  # March 2026 ended more than 1826 days before; June did not
    runs = await job_runs(store)
    assert [(run.job, run.error) for run in runs] == [("reading-months", None), ("reading-retention", None)]


async def test_the_service_makes_the_months_ahead_when_it_starts(database_url: str) -> None:
    now = datetime(2032, 11, 20, tzinfo=UTC)
    settings = load_settings({}, database_url=database_url, readings_partitions_ahead=2)
    async with AsyncTestClient(create_app(settings, clock=lambda: now)) as client:
        assert (await client.get("/health")).status_code == 200
    store = await open_store(database_url)
    try:
        async with store.transaction() as tx:
            made_again = await tx.prepare_reading_months([date(2032, 11, 1), date(2032, 12, 1), date(2033, 1, 1)])
            beyond = await tx.prepare_reading_months([date(2033, 2, 1)])
    finally:
        await store.close()
    assert made_again == []
    assert beyond == ([] if store.engine == "sqlite" else [date(2033, 2, 1)])
