"""Two real ``coldchain serve`` processes on one PostgreSQL database run every job once per tick.

Both processes run the jobs on half-second intervals. A tracker on duty is silent, so the silent-tracker job
reports it; the shipper's webhook points at a real HTTP receiver in this test that fails the first two attempts.
Then the tracker syncs and falls silent again. A person of the shipper chose emails about silent trackers; the
SMTP server (aiosmtpd, in this test) refuses the first message for now. At the end: each (job, tick) was run by
exactly one process (the job-run rows and each process's own log say the same), both processes took part, no job
failed, each silence was reported once to each organisation, the receiver got each attempt once, retries included,
and the person got one email per silence, the first after a retry.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from coldchain.domain.access import OPERATOR
from coldchain.services import emails
from coldchain.services.jobs import job_runs
from coldchain.services.webhooks import create_webhook
from coldchain.storage import Store, open_store
from tests.factories import OPERATOR_TOKEN, assign, make_org, make_shipment, make_tracker
from tests.mail import SmtpSink
from tests.served import ServedColdchain
from tests.services.test_emails import person
from tests.services.test_webhooks import Receiver, verifies

pytestmark = pytest.mark.slow

INTERVAL_S = 0.5
SETTINGS = {
    "JOBS_ENABLED": "true",
    "JOB_INTERVAL_S": str(INTERVAL_S),
    "WEBHOOK_INTERVAL_S": str(INTERVAL_S),
    "SILENT_TRACKER_S": "1",
    "WEBHOOK_RETRY_S": "0.2",
    "WEBHOOK_RETRY_MAX_S": "0.4",
    "WEBHOOK_TIMEOUT_S": "5",
    "WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver listens on 127.0.0.1: an on-premise receiver
    "EMAIL_INTERVAL_S": str(INTERVAL_S),
    "EMAIL_RETRY_S": "0.2",
    "EMAIL_RETRY_MAX_S": "0.4",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_TLS": "none",
    "SMTP_FROM": "coldchain <alerts@coldchain.test>",
    "PUBLIC_URL": "https://coldchain.test",
}
JOBS = ("tracker-silence", "alarm-escalation", "escalation-chain", "eta-refresh", "webhook-delivery", "email-delivery")
_RAN = re.compile(r"job (\S+) runs tick (\S+) in (\S+)")


async def _synced_now(store: Store, tracker_id: int) -> None:
    async with store.transaction() as tx:
        state = await tx.sync_state(tracker_id)
        state.last_sync_at = datetime.now(UTC)
        await tx.save_sync_state(state)


async def _wait_until(timeout_s: float, check: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not check():  # noqa: ASYNC110 (the receiver fills a list, not an event)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout_s)


async def test_two_service_processes_run_each_job_once_per_tick(
    postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(f"COLDCHAIN_{name}", value)
    store = await open_store(postgres_database, pool_size=2)
    services: list[ServedColdchain] = []
    try:
        shipper, carrier = await make_org(store, "Shipper"), await make_org(store, "Carrier", "carrier")
        tracker = await make_tracker(store, carrier.id, "QUIET-1")
        shipment = await make_shipment(store, owner=shipper.id, carriers=[carrier.id])
        await assign(store, shipment.id, tracker.id, starts_at=datetime.now(UTC) - timedelta(hours=1))

        watcher = await person(store, shipper.id, "Watcher", kinds=["tracker.silent"])
        await emails.plan_emails(store, now=datetime.now(UTC))  # the planner starts before the first silence

        async with (
            Receiver([500, 500]) as receiver,
            SmtpSink(["451 4.3.0 try again later"]) as sink,
            httpx.AsyncClient() as http,
        ):
            monkeypatch.setenv("COLDCHAIN_SMTP_PORT", str(sink.port))
            _, secret = await create_webhook(
                store, OPERATOR, organisation_id=shipper.id, url=receiver.url, kinds=["tracker.silent"],
                now=datetime.now(UTC), allow_private=True,
            )  # fmt: skip
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                services.append(
                    ServedColdchain(postgres_database, tmp_path / name, admin_token=OPERATOR_TOKEN, log_level="debug")
                )
            for service in services:
                service.start()
            for service in services:
                await service.wait_healthy(http)

            # The first silence: reported, delivered after two refusals.
            await _wait_until(20, lambda: len(receiver.received) >= 3)
            # A sync ends it; a second of silence later, the next silence is reported and delivered.
            await _synced_now(store, tracker.id)
            await _wait_until(20, lambda: len(receiver.received) >= 4)
            await _wait_until(20, lambda: len(sink.received) >= 2)
            await asyncio.sleep(6 * INTERVAL_S)  # more ticks: nothing is reported or sent again
            for service in services:
                service.stop()  # SIGTERM: the jobs stop before the store closes
                assert "Application shutdown complete" in service.output()

        runs = await job_runs(store)
        sent = await emails.email_log(store, OPERATOR, shipper.id)
        async with store.transaction() as tx:
            notices = [n for org in (shipper.id, carrier.id) for n in await tx.notifications(org)]
    finally:
        for service in services:
            service.kill()
        await store.close()

    workers = {f"{socket.gethostname()}:{service.process.pid}" for service in services if service.process}
    ran_in_logs = Counter(
        (job, datetime.fromisoformat(tick), worker)
        for service in services
        for job, tick, worker in _RAN.findall(service.output())
    )

    # Every (job, tick) ran once, in one of the two processes, and each process's log agrees with the rows.
    assert ran_in_logs == Counter((run.job, run.tick, run.worker) for run in runs)
    assert set(ran_in_logs.values()) == {1}
    assert {run.worker for run in runs} == workers  # both processes took part
    for job in JOBS:
        ticks = sorted(run.tick for run in runs if run.job == job)
        assert len(ticks) >= 8, (job, ticks)
        assert all(b - a >= timedelta(seconds=INTERVAL_S) for a, b in itertools.pairwise(ticks))
    assert [(run.job, run.error) for run in runs if run.error is not None] == []

    # Each silence reported once to each organisation; each attempt received once.
    silences = [n for n in notices if n.kind == "tracker.silent"]
    assert Counter(n.organisation_id for n in silences) == {shipper.id: 2, carrier.id: 2}
    assert len({n.payload["silent_since"] for n in silences}) == 2
    attempts = [(r.headers["x-coldchain-delivery"], r.headers["x-coldchain-attempt"]) for r in receiver.received]
    first, second = attempts[0][0], attempts[-1][0]
    assert attempts == [(first, "1"), (first, "2"), (first, "3"), (second, "1")]
    assert all(r.event()["kind"] == "tracker.silent" and verifies(r, secret) for r in receiver.received)

    # One email per silence to the person who chose them, the first after the server's refusal.
    assert [r.recipients for r in sink.received] == [[watcher.email], [watcher.email]]
    assert all("[coldchain] Tracker QUIET-1 silent on" in r.subject for r in sink.received)
    assert sink.refusals == ["451 4.3.0 try again later"]
    assert sorted((e.status, e.attempts) for e in sent) == [("sent", 1), ("sent", 2)]
    assert {a.worker for e in sent for a in e.log} <= workers
