"""``coldchain demo``: the service on SQLite, set up as a distributor would, with simulated trackers syncing.

Through the real HTTP API, with the operator token of this run: the example stability profiles are loaded, a
shipper, a carrier and a receiving pharmacy get an organisation and a token each, the shipper sets up a product
and a lot, and one shipment per built-in ``tracker_sim`` scenario (a reefer truck, an air-freight leg, a
multi-day stretch without network, a compressor failure with an excursion above 8 °C, a freezing episode with a
probe fault) with its tracker assigned. The trackers then play their trips at accelerated time through the sync
API; every batch is judged against the shipment's pinned profile as it arrives. The demo prints, per shipment,
what arrived and what the service concluded (excursions, alarms, MKT, the disposition it recommends), then
keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn

from coldchain.http.app import create_app
from coldchain.settings import Settings
from coldchain.storage.sqlite import sqlite_path
from tracker_sim import BUILTIN_SCENARIOS, RunReport, TrackerCredentials, register_tracker, run_tracker

__all__ = ["EXAMPLE_PROFILES", "run_demo"]

SCENARIOS = ("reefer-road", "air-freight", "multi-day-offline", "compressor-failure", "freeze")
EXAMPLE_PROFILES = files("coldchain") / "examples" / "profiles.json"
DEMO_PROFILE = "who-e006-tr06-fridge"  # 2-8 °C with the WHO E006 alarms: what a vaccine carton is judged by


class DemoError(RuntimeError):
    """The service refused a set-up request of the demo."""


def _fresh_database(settings: Settings) -> None:
    """The demo starts from an empty database file of its own each time."""
    if not settings.database_url.startswith("sqlite://"):
        return
    path = sqlite_path(settings.database_url)
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _call(http: httpx.AsyncClient, method: str, path: str, token: str, body: Any = None) -> Any:
    response = await http.request(method, path, json=body, headers=_bearer(token))
    if response.status_code >= 400:
        raise DemoError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


class Shipment(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    scenario: str
    credentials: TrackerCredentials


async def _set_up(http: httpx.AsyncClient, operator: str, start: datetime, stamp: str) -> tuple[str, list[Shipment]]:
    """Profiles, organisations, tokens, product, lot, trackers and shipments; returns the shipper's token."""
    for profile in json.loads(EXAMPLE_PROFILES.read_text(encoding="utf-8"))["profiles"]:
        await _call(http, "POST", "/v1/profiles", operator, profile)
    orgs = {}
    for name, kind in (("Demo Pharma", "shipper"), ("Demo Reefer Lines", "carrier"), ("Demo Pharmacy", "receiver")):
        orgs[kind] = (await _call(http, "POST", "/v1/organisations", operator, {"name": name, "kind": kind}))["id"]
    token = {"role": "logistics", "name": "demo logistics"}
    shipper = (await _call(http, "POST", f"/v1/organisations/{orgs['shipper']}/tokens", operator, token))["token"]
    product = await _call(
        http, "POST", "/v1/products", shipper, {"name": "Vaccine, 10-dose vial", "profile_id": DEMO_PROFILE}
    )
    lot = await _call(http, "POST", f"/v1/products/{product['id']}/lots", shipper, {"lot_number": f"L{stamp[-6:]}"})
    shipments = []
    for n, name in enumerate(SCENARIOS, start=1):
        scenario = BUILTIN_SCENARIOS[name]
        route = scenario.route
        credentials = await register_tracker(http, admin_token=shipper, serial=f"DEMO-{n}-{stamp}", model="tracker_sim")
        body = {
            "reference": f"DEMO-{n}-{stamp}",
            "product_id": product["id"],
            "lot_id": lot["id"],
            "quantity": 400,
            "origin": {"name": route[0].name, "lat": route[0].latitude, "lon": route[0].longitude},
            "destination": {"name": route[-1].name, "lat": route[-1].latitude, "lon": route[-1].longitude},
            "waypoints": [[w.latitude, w.longitude] for w in route[1:-1]],
            "legs": [{"carrier_id": orgs["carrier"], "mode": scenario.mode}],
            "receiver_id": orgs["receiver"],
            "promised_at": (start + timedelta(days=3)).isoformat(),
            "priority": "urgent" if scenario.mode == "air" else "standard",
        }
        shipment = await _call(http, "POST", "/v1/shipments", shipper, body)
        assignment = {"serial": credentials.tracker_id, "starts_at": (start - timedelta(hours=1)).isoformat()}
        await _call(http, "POST", f"/v1/shipments/{shipment['id']}/trackers", shipper, assignment)
        await _call(http, "POST", f"/v1/shipments/{shipment['id']}/status", shipper, {"status": "in_transit"})
        shipments.append(
            Shipment(id=shipment["id"], reference=body["reference"], scenario=name, credentials=credentials)
        )
    return shipper, shipments


async def _play(http: httpx.AsyncClient, shipments: list[Shipment], logbooks: Path, start: datetime) -> list[RunReport]:
    runs = [
        run_tracker(
            BUILTIN_SCENARIOS[shipment.scenario],
            shipment.credentials,
            logbook_path=logbooks / f"{shipment.credentials.tracker_id}.db",
            http=http,
            speed=None,
            seed=n,
            start=start,
        )
        for n, shipment in enumerate(shipments)
    ]
    return list(await asyncio.gather(*runs))


def _mkt(status: dict[str, Any]) -> str:
    value = status["mkt"]["shipment_mkt_c"]
    return "-" if value is None else f"{value:.2f}"


def _summary(reports: list[RunReport], statuses: list[dict[str, Any]], url: str) -> str:
    header = (
        f"{'shipment':<24} {'scenario':<19} {'logged':>6} {'judged':>6} {'excursions':>10} {'alarms':>6}"
        f" {'late':>4} {'MKT °C':>7}  recommendation"
    )
    lines = [header]
    for report, status in zip(reports, statuses, strict=True):
        alarms = [a for a in status["alarms"] if a["withdrawn_at"] is None]
        row = (
            f"{status['reference']:<24} {report.scenario:<19} {report.readings_logged:>6} {status['readings']:>6}"
            f" {len(status['excursions']):>10} {len(alarms):>6} {sum(a['late'] for a in alarms):>4} {_mkt(status):>7}"
            f"  {status['disposition']['recommendation']}"
        )
        if not report.complete:
            row += f"  (sync incomplete: {report.error or f'{report.pending} pending'})"
        lines.append(row)
    lines.append("")
    for status in statuses:
        for reason in status["disposition"]["reasons"][:3]:
            lines.append(f"  {status['reference']}: {reason['calls_for']}: {reason['message']}")
    lines += [
        "",
        f"The service is running at {url}: try {url}/v1/shipments/{statuses[0]['shipment_id']}/status with the token"
        f" above, {url}/health or {url}/schema. Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def run_demo(settings: Settings) -> None:
    _fresh_database(settings)
    operator = settings.admin_token or secrets.token_urlsafe(24)
    settings = msgspec.structs.replace(settings, admin_token=operator)
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
    print(f"operator token for this run: {operator}", flush=True)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        shipper, shipments = await _set_up(http, operator, start, stamp)
        print(f"shipper (logistics) token: {shipper}", flush=True)
        print(f"playing {len(shipments)} shipments at accelerated time: {', '.join(SCENARIOS)}...", flush=True)
        with tempfile.TemporaryDirectory(prefix="coldchain-demo-") as logbooks:
            reports = await _play(http, shipments, Path(logbooks), start)
        statuses = [await _call(http, "GET", f"/v1/shipments/{s.id}/status", shipper) for s in shipments]
    print(_summary(reports, statuses, url), flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await serving
