"""Email notifications from alarm to mailbox, on SQLite and PostgreSQL.

    python tests/benchmarks/bench_emails.py [--engines sqlite,postgresql] [--people 100] [--alarms 3]
        [--postgres-url URL]

Set-up per engine, in a scratch database: a shipment with three parties, ``--people`` users in each party who chose
alarm emails at once (a third of them in Europe/Helsinki), and readings synced through the ingest use case that
raise ``--alarms`` alarms (so 3 x people x alarms emails). Then, timed:

- *plan*: the planner turns the alarm notifications into emails (one transaction per 500 notifications);
- *send*: the delivery job sends every email through :class:`~coldchain.services.mail.SmtpTransport` to an SMTP
  server in this process (aiosmtpd on 127.0.0.1, which keeps nothing), four at a time, one connection each.

Prints the emails per second of each step; asserts nothing but that every email arrived once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg

# Run as a script, sys.path starts with this file's folder, not the repository root that holds the ``tests``
# package: this line puts the root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from coldchain.documents.email import render_email
from coldchain.domain.access import OPERATOR
from coldchain.services import emails
from coldchain.services.emails import EmailPolicy, PreferencesChange
from coldchain.storage import open_store
from tests.mail import SmtpSink
from tests.services.test_evaluation_ingest import at, log, make_world, sync

POLICY = EmailPolicy(sender="coldchain <alerts@coldchain.test>", public_url="https://coldchain.test")


@asynccontextmanager
async def scratch_url(engine: str, server_url: str, folder: Path) -> AsyncIterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"coldchain_bench_emails_{os.getpid()}"
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


async def run(engine: str, server_url: str, people: int, alarms: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with scratch_url(engine, server_url, Path(folder)) as url:
            store = await open_store(url, pool_size=6)
            try:
                world = await make_world(store)
                for party in (world.shipper, world.carrier, world.receiver):
                    for n in range(people):
                        async with store.transaction() as tx:
                            user = await tx.create_user(
                                organisation_id=party,
                                role="logistics",
                                name=f"Person {n}",
                                email=f"p{n}@org{party}.test",
                                password_hash="-",
                                now=at(0),
                            )
                        change = PreferencesChange(
                            kinds=["alarm.raised"], time_zone="Europe/Helsinki" if n % 3 == 0 else "UTC"
                        )
                        await emails.save_preferences(
                            store, OPERATOR, change, organisation_id=party, user_id=user.id, now=at(0)
                        )
                await emails.plan_emails(store, now=at(0))  # the planner starts here
                # One spike above 25 °C (the reject rule) per alarm, in range between.
                readings = log([5.0, 26.0] * alarms)
                await sync(store, world, readings, now=at(20 * alarms + 5))
                expected = 3 * people * alarms

                started = time.perf_counter()
                made = await emails.plan_emails(store, now=at(20 * alarms + 5))
                planned_s = time.perf_counter() - started
                async with SmtpSink() as sink:
                    policy = EmailPolicy(sender=POLICY.sender, public_url=POLICY.public_url, max_per_round=expected)
                    started = time.perf_counter()
                    sent = await emails.deliver_due_emails(
                        store,
                        sink.transport(),
                        render=render_email,
                        clock=lambda: at(20 * alarms + 5) + timedelta(seconds=1),
                        worker="bench",
                        policy=policy,
                        rng=random.Random(1),
                    )
                    sent_s = time.perf_counter() - started
                assert made == expected == sent.sent == len(sink.received), (made, expected, sent, len(sink.received))
                print(
                    f"{engine:<11} {expected:>6} emails   plan {planned_s * 1000:8.0f} ms ({made / planned_s:8.0f}/s)"
                    f"   send {sent_s * 1000:8.0f} ms ({sent.sent / sent_s:6.0f}/s)",
                    flush=True,
                )
            finally:
                await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--alarms", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("COLDCHAIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    for engine in args.engines.split(","):
        await run(engine, args.postgres_url, args.people, args.alarms)


if __name__ == "__main__":
    asyncio.run(main())
