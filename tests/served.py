"""``python -m coldchain serve`` as a real child process, for the tests and benchmarks that need one.

The service runs in a session of its own, so it and every uvicorn worker it starts can be signalled as one
process group (the crash test SIGKILLs the whole group mid-sync). Its output goes to ``serve.log`` in the
working folder rather than to a pipe: a pipe nobody reads fills up and stalls the server. The port is fixed
for the object's life, so a service stopped or killed and started again answers at the same URL::

    async with served(database_url, workdir, http=http, admin_token="...") as service:
        await http.get(f"{service.url}/health")

or, to control start-up and shutdown step by step (``with`` only guarantees a SIGKILL at the end)::

    with ServedColdchain(database_url, workdir) as service:
        service.start()
        await service.wait_healthy(http)
        service.kill()
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

__all__ = ["ServedColdchain", "free_port", "served", "session_pids"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def session_pids(session: int) -> list[int]:
    """Every process in ``session``: the served process (a session leader) and the workers it started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain anything.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session:
            pids.append(int(entry.name))
    return sorted(pids)


class ServedColdchain:
    """``python -m coldchain serve`` as a child process in a session of its own, so it can be stopped whole.

    ``workers`` and ``pool_size`` are passed on (``--workers``, ``COLDCHAIN_DB_POOL_SIZE``) only when given;
    ``admin_token`` likewise (``COLDCHAIN_ADMIN_TOKEN``); ``settings`` are further ``COLDCHAIN_*`` variables
    (``{"DRAIN_S": "1"}``). Used as a context manager, the service is SIGKILLed on the way out if it is still
    running.
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        port: int | None = None,
        workers: int | None = None,
        pool_size: int | None = None,
        admin_token: str | None = None,
        log_level: str = "warning",
        startup_s: float = 30.0,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.startup_s = startup_s
        self._workdir = workdir
        self._env = {**os.environ, "COLDCHAIN_DATABASE_URL": database_url, "COLDCHAIN_LOG_LEVEL": log_level}
        if admin_token is not None:
            self._env["COLDCHAIN_ADMIN_TOKEN"] = admin_token
        if pool_size is not None:
            self._env["COLDCHAIN_DB_POOL_SIZE"] = str(pool_size)
        for name, value in (settings or {}).items():
            self._env[f"COLDCHAIN_{name}"] = value
        self._log_path = workdir / "serve.log"
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServedColdchain:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.kill()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the service on this object's port; its output is appended to ``serve.log``."""
        if self.running:
            raise RuntimeError(f"the service on port {self.port} is already running")
        self._close_log()
        command = [sys.executable, "-m", "coldchain", "serve", "--port", str(self.port)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        self._log = self._log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            env=self._env,
            cwd=self._workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        """Everything the service has written so far, over all its starts."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def pids(self) -> list[int]:
        """The served process and the workers it started; empty before the first start."""
        return [] if self.process is None else session_pids(self.process.pid)

    async def wait_healthy(self, http: httpx.AsyncClient) -> None:
        """Wait until ``/health`` answers 200 and every worker has started.

        Raises ``RuntimeError`` with the service's output if it exits or does not answer within ``startup_s``.
        """
        if self.process is None:
            raise RuntimeError("the service was never started")
        deadline = time.monotonic() + self.startup_s
        while True:
            with suppress(httpx.TransportError):
                if (await http.get(f"{self.url}/health", timeout=2)).status_code == 200:
                    break
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the service exited at start-up with code {self.process.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer within {self.startup_s} s:\n{self.output()}")
            await asyncio.sleep(0.05)
        # With several workers, /health answering means one is up; wait until all have started.
        workers = self.workers or 1
        expected = 1 + (workers if workers > 1 else 0)
        for _ in range(int(self.startup_s * 10)):
            if len(self.pids()) >= expected:
                break
            await asyncio.sleep(0.1)

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace_s``; return the exit code (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        self._close_log()
        return self.process.returncode

    def kill(self) -> int | None:
        """SIGKILL the service and everything it started; wait until it is gone and return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._close_log()
        return self.process.returncode

    def restart(self) -> None:
        """Stop the service gracefully and start it again on the same port (``wait_healthy`` is up to the caller)."""
        self.stop()
        self.start()

    def _signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@asynccontextmanager
async def served(
    database_url: str,
    workdir: Path,
    *,
    http: httpx.AsyncClient,
    port: int | None = None,
    workers: int | None = None,
    pool_size: int | None = None,
    admin_token: str | None = None,
    log_level: str = "warning",
    startup_s: float = 30.0,
    settings: Mapping[str, str] | None = None,
) -> AsyncIterator[ServedColdchain]:
    """A started, healthy service; stopped gracefully (SIGTERM, then SIGKILL) on the way out."""
    service = ServedColdchain(
        database_url,
        workdir,
        port=port,
        workers=workers,
        pool_size=pool_size,
        admin_token=admin_token,
        log_level=log_level,
        startup_s=startup_s,
        settings=settings,
    )
    try:
        service.start()
        await service.wait_healthy(http)
        yield service
    finally:
        service.stop()
