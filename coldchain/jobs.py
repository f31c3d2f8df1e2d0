"""Background jobs: APScheduler inside every service process, each job a call of a service.

=================  ==========================  ====================================================================
job                every                       does
=================  ==========================  ====================================================================
tracker-silence    ``job_interval_s``          reports trackers on duty silent for ``silent_tracker_s`` (once each)
alarm-escalation   ``job_interval_s``          escalates alarms unacknowledged for ``escalate_after_s``
escalation-chain   ``job_interval_s``          tells the next person of each organisation's escalation chain about
                                               an alarm still unacknowledged (:mod:`coldchain.services.escalation`)
eta-refresh        ``job_interval_s``          recomputes the ETA of shipments in transit
webhook-delivery   ``webhook_interval_s``      sends due webhook deliveries, retries included
session-retention  an hour                     deletes sessions ended more than ``session_retention_s`` ago and
                                               failed sign-ins past the lock-out window
chain-verification an hour                     verifies the audit trail and every custody chain, notifies a break
                                               once (:func:`coldchain.services.audit.check_chains`)
email-delivery     ``email_interval_s``        plans new notifications into emails and sends the due ones, retries
                                               included (only with ``smtp_host`` set)
email-digest       ``job_interval_s``          makes the daily digests whose local hour has come (only with
                                               ``smtp_host`` set)
reading-months     an hour                     makes the monthly partitions of readings ``readings_partitions_ahead``
                                               months ahead (PostgreSQL; :mod:`coldchain.services.retention`)
reading-retention  an hour                     removes months of readings past ``readings_retention_days``, when
                                               set, sealing each shipment's readings digest first
=================  ==========================  ====================================================================

Once per tick across processes: every job fires on a grid aligned to the Unix epoch, so every process fires it
at the same instants and names each tick alike (:func:`tick_of`). Before running a tick, a process claims
``(job, tick)`` in a transaction (:func:`coldchain.services.jobs.claim_tick`: a try-lock on the job's name, then
a row keyed by job and tick); only the process that claims it runs it, and the row says which process that was.
The jobs are idempotent besides, so a tick begun by a process that died repeats no notification and no attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from coldchain.documents.email import render_email
from coldchain.metrics import JOB_RUNS, JOB_SECONDS
from coldchain.services import alarms, audit, emails, escalation, eta, retention, silence, users, webhooks
from coldchain.services.jobs import claim_tick, finish_tick
from coldchain.services.mail import MailTransport, SmtpSettings, SmtpTransport
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = [
    "CHAIN_CHECK_INTERVAL_S",
    "READING_MONTHS_INTERVAL_S",
    "RETENTION_INTERVAL_S",
    "Job",
    "JobScheduler",
    "running_jobs",
    "service_jobs",
    "smtp_transport",
    "tick_of",
    "worker_name",
]

log = logging.getLogger("coldchain.jobs")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RETENTION_INTERVAL_S = 3600.0
"""How often the retention job runs: what it deletes is kept for days, so an hour late is no matter."""
CHAIN_CHECK_INTERVAL_S = 3600.0
"""How often the audit and custody chains are verified: a full pass over both, and a break is no emergency of
minutes (nothing is appended to a broken custody chain in the meantime)."""
READING_MONTHS_INTERVAL_S = 3600.0
"""How often the readings' months are made ahead and retention is applied: months are made weeks ahead, and
removing a month an hour late is no matter."""
_STOP_GRACE_S = 5.0
"""How long stopping waits for ticks under way before cancelling them (what they were doing is retried later)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def worker_name() -> str:
    """How job runs and webhook attempts name this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def tick_of(moment: datetime, interval_s: float) -> datetime:
    """The tick ``moment`` falls in: the start of its ``interval_s`` slot, counted from the Unix epoch."""
    step = max(1, round(interval_s * 1_000_000))
    elapsed = (moment - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=elapsed - elapsed % step)


class Job(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    interval_s: float
    run: Callable[[datetime], Awaitable[object]]
    """Called with the time the tick began to run."""


def smtp_transport(settings: Settings) -> SmtpTransport | None:
    """The mail transport ``settings`` configure; ``None`` while email is off."""
    if settings.smtp_host is None or settings.smtp_from is None:
        return None
    return SmtpTransport(
        SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            timeout_s=settings.smtp_timeout_s,
        )
    )


def service_jobs(
    store: Store,
    settings: Settings,
    *,
    client: httpx.AsyncClient,
    clock: Callable[[], datetime] = _utcnow,
    mail: MailTransport | None = None,
) -> list[Job]:
    """The service's jobs, configured by ``settings``; webhook deliveries go out through ``client``, emails through
    ``mail`` (by default the SMTP server the settings name), each attempt taking its time from ``clock``."""
    worker = worker_name()
    mail = mail or smtp_transport(settings)
    policy = webhooks.DeliveryPolicy(
        timeout_s=settings.webhook_timeout_s,
        max_attempts=settings.webhook_max_attempts,
        retry_s=settings.webhook_retry_s,
        retry_max_s=settings.webhook_retry_max_s,
        allow_private=settings.webhook_allow_private,
    )

    async def notice_silent_trackers(now: datetime) -> object:
        return await silence.notice_silent_trackers(store, now=now, after=timedelta(seconds=settings.silent_tracker_s))

    async def escalate_alarms(now: datetime) -> object:
        return await alarms.escalate_unacknowledged(store, now=now, after=timedelta(seconds=settings.escalate_after_s))

    async def refresh_etas(now: datetime) -> object:
        return await eta.refresh_etas(store, now=now)

    async def deliver_webhooks(now: datetime) -> object:
        return await webhooks.deliver_due(store, client, clock=clock, worker=worker, policy=policy)

    async def forget_ended_sessions(now: datetime) -> object:
        deleted = await users.forget_ended_sessions(
            store,
            now=now,
            retention=timedelta(seconds=settings.session_retention_s),
            idle=timedelta(seconds=settings.session_idle_s),
            failure_window=timedelta(seconds=settings.login_failure_window_s),
        )
        if deleted:
            log.info("deleted %d session(s) ended more than %g s ago", deleted, settings.session_retention_s)
        return deleted

    async def verify_chains(now: datetime) -> object:
        report = await audit.check_chains(store, now=now)
        return report.broken

    async def walk_escalation_chains(now: datetime) -> object:
        return await escalation.walk_escalation_chains(store, now=now)

    async def prepare_reading_months(now: datetime) -> object:
        made = await retention.prepare_reading_months(store, now=now, months=settings.readings_partitions_ahead)
        if made:
            log.info("made the readings partitions of %s", ", ".join(m.strftime("%Y-%m") for m in made))
        return made

    retention_policy = retention.RetentionPolicy(
        days=settings.readings_retention_days, below_gdp=settings.readings_retention_below_gdp
    )

    async def apply_retention(now: datetime) -> object:
        return await retention.apply_retention(store, now=now, policy=retention_policy)

    jobs = [
        Job(name="tracker-silence", interval_s=settings.job_interval_s, run=notice_silent_trackers),
        Job(name="alarm-escalation", interval_s=settings.job_interval_s, run=escalate_alarms),
        Job(name="escalation-chain", interval_s=settings.job_interval_s, run=walk_escalation_chains),
        Job(name="eta-refresh", interval_s=settings.job_interval_s, run=refresh_etas),
        Job(name="webhook-delivery", interval_s=settings.webhook_interval_s, run=deliver_webhooks),
        Job(name="session-retention", interval_s=RETENTION_INTERVAL_S, run=forget_ended_sessions),
        Job(name="chain-verification", interval_s=CHAIN_CHECK_INTERVAL_S, run=verify_chains),
        Job(name="reading-months", interval_s=READING_MONTHS_INTERVAL_S, run=prepare_reading_months),
        Job(name="reading-retention", interval_s=READING_MONTHS_INTERVAL_S, run=apply_retention),
    ]
    if mail is None or settings.smtp_from is None:
        return jobs
    transport = mail
    email_policy = emails.EmailPolicy(
        sender=settings.smtp_from,
        public_url=settings.links_base,
        max_attempts=settings.email_max_attempts,
        retry_s=settings.email_retry_s,
        retry_max_s=settings.email_retry_max_s,
        timeout_s=settings.smtp_timeout_s,
    )

    async def send_emails(now: datetime) -> object:
        planned = await emails.plan_emails(store, now=now)
        sent = await emails.deliver_due_emails(
            store, transport, render=render_email, clock=clock, worker=worker, policy=email_policy
        )
        return planned, sent

    async def make_digests(now: datetime) -> object:
        return await emails.make_digests(store, now=now)

    return [
        *jobs,
        Job(name="email-delivery", interval_s=settings.email_interval_s, run=send_emails),
        Job(name="email-digest", interval_s=settings.job_interval_s, run=make_digests),
    ]


class JobScheduler:
    """Fires ``jobs`` on their grids in this process, and runs the ticks this process claims."""

    def __init__(
        self,
        store: Store,
        jobs: Sequence[Job],
        *,
        worker: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._jobs = list(jobs)
        self.worker = worker or worker_name()
        self._clock = clock
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def run_tick(self, job: Job) -> bool:
        """Run ``job`` for the current tick if this process claims it; whether it did. A failing job is logged
        and its error recorded with the run; it never stops the scheduler."""
        now = self._clock()
        tick = tick_of(now, job.interval_s)
        if not await claim_tick(self._store, job.name, tick, worker=self.worker, now=now):
            return False
        log.debug("job %s runs tick %s in %s", job.name, tick.isoformat(), self.worker)
        error = None
        started = time.perf_counter()
        try:
            await job.run(now)
        except Exception as exc:
            log.exception("job %s failed at tick %s", job.name, tick.isoformat())
            error = f"{type(exc).__name__}: {exc}"[:500]
        JOB_SECONDS.labels(job=job.name).observe(time.perf_counter() - started)
        JOB_RUNS.labels(job=job.name, outcome="ok" if error is None else "failed").inc()
        await finish_tick(self._store, job.name, tick, now=self._clock(), error=error)
        return True

    async def _fire(self, job: Job) -> None:
        if self._stopping:
            return
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await self.run_tick(job)
        except Exception:  # the claim or the bookkeeping failed (database away): the next tick tries again
            log.exception("job %s could not run", job.name)
        finally:
            self._running.discard(task)

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        for job in self._jobs:
            for outcome in ("ok", "failed"):  # every series exists from the start, at 0
                JOB_RUNS.labels(job=job.name, outcome=outcome)
            scheduler.add_job(
                self._fire,
                IntervalTrigger(seconds=job.interval_s, start_date=_EPOCH, timezone=UTC),
                args=(job,),
                id=job.name,
                name=job.name,
                max_instances=1,  # a tick still running in this process makes it skip the next
                coalesce=True,
                misfire_grace_time=max(1, int(job.interval_s)),
            )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Fire nothing more, let the ticks under way finish (cancel them after a grace period), then stop."""
        if self._scheduler is None:
            return
        self._stopping = True
        self._scheduler.pause()
        await asyncio.sleep(0)  # a tick submitted just before starts now: it registers as running, or sees the flag
        if self._running:
            await asyncio.wait(set(self._running), timeout=_STOP_GRACE_S)
        for task in set(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(set(self._running))
        self._scheduler.shutdown(wait=False)
        self._scheduler = None
        await asyncio.sleep(0)  # the shutdown runs on the event loop


@asynccontextmanager
async def running_jobs(
    store: Store, settings: Settings, *, clock: Callable[[], datetime] = _utcnow
) -> AsyncIterator[JobScheduler]:
    """The service's jobs running in this process while the context is open, on ``clock`` (give it the clock of
    ``create_app`` so the jobs and the routes share one "now")."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout_s) as client:
        scheduler = JobScheduler(store, service_jobs(store, settings, client=client, clock=clock), clock=clock)
        scheduler.start()
        try:
            yield scheduler
        finally:
            await scheduler.stop()
