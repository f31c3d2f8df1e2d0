"""``coldchain demo``: the service on SQLite with a handful of simulated trackers syncing to it.

Five trackers play the built-in scenarios of ``tracker_sim`` (a reefer truck, an air-freight leg with cabin
pressure, a multi-day stretch without network, a compressor failure with an excursion above 8 °C, a freezing
episode) at accelerated time, through the real sync API over HTTP, until the service holds every reading. Then
the demo prints what arrived and keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import uvicorn

from coldchain.http.app import create_app
from coldchain.settings import Settings
from coldchain.storage.sqlite import sqlite_path
from tracker_sim import BUILTIN_SCENARIOS, RunReport, register_tracker, run_tracker

__all__ = ["run_demo"]

SCENARIOS = ("reefer-road", "air-freight", "multi-day-offline", "compressor-failure", "freeze")


def _fresh_database(settings: Settings) -> None:
    """The demo starts from an empty database file of its own each time."""
    if not settings.database_url.startswith("sqlite://"):
        return
    path = sqlite_path(settings.database_url)
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


async def _play_fleet(url: str, admin_token: str, logbooks: Path) -> list[RunReport]:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        credentials = [
            await register_tracker(http, admin_token=admin_token, serial=f"DEMO-{n + 1}-{stamp}", model="tracker_sim")
            for n in range(len(SCENARIOS))
        ]
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
        runs = [
            run_tracker(
                BUILTIN_SCENARIOS[name],
                creds,
                logbook_path=logbooks / f"{creds.tracker_id}.db",
                http=http,
                speed=None,
                seed=n,
                start=start,
            )
            for n, (name, creds) in enumerate(zip(SCENARIOS, credentials, strict=True))
        ]
        return list(await asyncio.gather(*runs))


def _summary(reports: list[RunReport], trackers: list[dict[str, object]], url: str) -> str:
    held = {str(t["tracker_id"]): t["sync"] for t in trackers}
    lines = [f"{'tracker':<28} {'scenario':<20} {'logged':>7} {'stored':>7} {'quarantined':>11} {'duplicates':>10}"]
    totals = [0, 0, 0, 0]
    for report in reports:
        sync = held.get(report.tracker_id, {})
        assert isinstance(sync, dict)
        row = [report.readings_logged, sync["readings_new"], sync["readings_quarantined"], sync["readings_duplicate"]]
        totals = [a + int(b) for a, b in zip(totals, row, strict=True)]
        status = "" if report.complete else f"  (incomplete: {report.error or f'{report.pending} pending'})"
        lines.append(
            f"{report.tracker_id:<28} {report.scenario:<20} {row[0]:>7} {row[1]:>7} {row[2]:>11} {row[3]:>10}{status}"
        )
    lines.append(f"{'total':<28} {'':<20} {totals[0]:>7} {totals[1]:>7} {totals[2]:>11} {totals[3]:>10}")
    lines += [
        "",
        f"{len(reports)} trackers synced {totals[1]:,} readings ({totals[2]} quarantined, "
        f"{totals[3]} duplicates ignored).",
        f"The service is running at {url} (try {url}/health, {url}/schema). Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def run_demo(settings: Settings) -> None:
    _fresh_database(settings)
    admin_token = settings.admin_token or secrets.token_urlsafe(24)
    settings = msgspec.structs.replace(settings, admin_token=admin_token)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.05)
    url = f"http://{settings.host}:{settings.port}"
    print(f"coldchain demo: serving on {url} from {sqlite_path(settings.database_url)}", flush=True)
    print(f"admin token for this run: {admin_token}", flush=True)
    print(f"playing {len(SCENARIOS)} trackers at accelerated time: {', '.join(SCENARIOS)}...", flush=True)
    with tempfile.TemporaryDirectory(prefix="coldchain-demo-") as logbooks:
        reports = await _play_fleet(url, admin_token, Path(logbooks))
    async with httpx.AsyncClient(base_url=url) as http:
        trackers = (await http.get("/v1/trackers", headers={"Authorization": f"Bearer {admin_token}"})).json()
    print(_summary(reports, trackers, url), flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await serving
