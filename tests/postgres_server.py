"""A real PostgreSQL for the test run: the one ``COLDCHAIN_TEST_POSTGRES_URL`` names, or a throwaway server.

The throwaway server is started from the local PostgreSQL binaries (``initdb``, ``pg_ctl``) in a temporary
directory on a free port with trust authentication, and removed afterwards. When the tests run as root, the
server runs as the ``postgres`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

__all__ = ["PostgresUnavailable", "postgres_server_url", "until_waiting_on_a_lock"]

URL_VARIABLE = "COLDCHAIN_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    candidates = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout
        candidates.append(out.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        f"no PostgreSQL server binaries found (initdb, pg_ctl). Either set {URL_VARIABLE} to a server's URL, "
        "or install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql)."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _throwaway_server() -> Iterator[str]:
    bindir = _bindir()
    as_user: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="coldchain-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")
    data, port = workdir / "data", _free_port()
    try:
        subprocess.run(
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c full_page_writes=off"
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(workdir / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        raise PostgresUnavailable(
            f"could not start a throwaway PostgreSQL from {bindir}: {exc.stderr.decode(errors='replace')}"
        ) from exc
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def postgres_server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database for this test run."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
    else:
        with _throwaway_server() as throwaway:
            yield throwaway


async def until_waiting_on_a_lock(url: str, task: asyncio.Task[Any], *, statement_like: str = "%") -> None:
    """Return once a backend of the database ``url`` names waits on a lock, running a statement like
    ``statement_like`` (a SQL LIKE pattern), or once ``task`` has finished (it took no lock another held): how a
    test lets one transaction hold its locks while another runs into them, without guessing a delay."""
    conn = await asyncpg.connect(url)
    try:
        while not task.done():
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                statement_like,
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
