"""Fixtures shared by the whole suite: a store on each engine, and the app on each engine.

PostgreSQL tests never skip: without a reachable server the run fails and says how to get one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from hypothesis import HealthCheck, settings

from coldchain.storage import Store, open_store
from tests.postgres_server import postgres_server_url

# Properties check behaviour, not speed: on a loaded 2-core machine a slow draw or a slow example is no failure.
settings.register_profile("coldchain", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("coldchain")

# Named per process, so that two test runs against one server never share a database.
_TEMPLATE = f"coldchain_test_template_{os.getpid()}"
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _cheap_password_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords are hashed at argon2's cheapest cost in the test process (under a millisecond instead of about
    130 ms a hash or a check, which made sign-ins the largest CPU cost of the HTTP tests). Only the cost changes:
    the hashes are still argon2id, checked as the service checks them. The tests marked ``full_cost_passwords``,
    and every service started as a process of its own, hash at the service's own cost."""
    if request.node.get_closest_marker("full_cost_passwords") is None:
        monkeypatch.setattr("coldchain.services.users._hasher", PasswordHasher.from_parameters(CHEAPEST))


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated template database on a real PostgreSQL; each test copies it."""
    with postgres_server_url() as server:
        try:
            asyncio.run(_admin(server, f"DROP DATABASE IF EXISTS {_TEMPLATE}", f"CREATE DATABASE {_TEMPLATE}"))
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"PostgreSQL at {server} is not reachable: {exc}", pytrace=False)

        async def migrate() -> None:
            store = await open_store(_with_database(server, _TEMPLATE), pool_size=1)
            await store.close()

        asyncio.run(migrate())
        yield server
        asyncio.run(_admin(server, f"DROP DATABASE IF EXISTS {_TEMPLATE}"))


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database of its own for one test."""
    name = f"coldchain_test_{os.getpid()}_{next(_counter)}"
    await _admin(postgres_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
    yield _with_database(postgres_url, name)
    await _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def empty_postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a fresh database with no tables."""
    name = f"coldchain_empty_{os.getpid()}_{next(_counter)}"
    await _admin(postgres_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    yield _with_database(postgres_url, name)
    await _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no schema yet, on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("empty_postgres_database")
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database; each test copies it, as each PostgreSQL test copies the template database."""
    path = tmp_path_factory.mktemp("sqlite-template") / "coldchain.db"

    async def migrate() -> None:
        store = await open_store(f"sqlite:///{path}", pool_size=1)
        await store.close()

    asyncio.run(migrate())
    leftovers = sorted(p.name for p in path.parent.iterdir() if p != path)
    assert not leftovers, f"the migrated SQLite template left {leftovers} beside it"
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each engine, of a migrated database of the test's own: the contract suites run once per
    engine."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "coldchain.db")
        return f"sqlite:///{tmp_path / 'coldchain.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url, pool_size=4)
    yield opened
    await opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests ran on each engine, so a run shows that PostgreSQL was really exercised."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call" and outcome != "error":
                continue
            for engine in ("sqlite", "postgresql"):
                if f"[{engine}" in report.nodeid or f"-{engine}]" in report.nodeid:
                    counts.setdefault(engine, {}).setdefault(outcome, 0)
                    counts[engine][outcome] += 1
    for engine, outcomes in sorted(counts.items()):
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        terminalreporter.write_line(f"storage engine {engine}: {summary}")
