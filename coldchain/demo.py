"""``coldchain demo``: the live product on an embedded SQLite file of its own, with simulated trackers syncing.

The demo runs on one clock for everyone: it reads *now* when the demo starts and then runs ``speed`` times faster
than real time (one simulated minute per second by default). The service, its background jobs and every
simulated tracker share it, so alarms are live, ETAs are meaningful and jobs (silent trackers, escalation, ETA
refresh) run, while a day passes in under half an hour.

Through the real HTTP API, with the operator token of this run, it sets up what a distributor would: the example
stability profiles; a shipper, a carrier and a receiving pharmacy with a token for each role that has work to
do; a vaccine and a biologic with a lot each; and five shipments placed around *now*:

==================  ====================================================================================
shipment            what it shows
==================  ====================================================================================
delivered           a reefer truck Berlin → Munich that arrived before the demo began: a complete custody
                    chain (packed, picked up, arrived by geofence, delivered, received) and a short freeze
                    at a stop, on the receiving pharmacist's worklist
live-alarm          Helsinki → Oulu: a thermostat fault is freezing the load; the freeze alarm is raised
                    live a few minutes of demo time after the summary and escalates unless acknowledged
at-risk             an urgent biologic Lyon → Rungis with a tight promised time; its reefer compressor
                    fails, so its ETA and its stability budget put it at risk
silent              Mombasa → Kampala: the tracker is out of coverage, is reported silent, and catches up
                    later; what happened meanwhile is raised then, labelled late
in-flight           an air-freight box Marburg → New Jersey, silent while airborne
==================  ====================================================================================

Each tracker logs the part of its trip before *now* at once (it happened before anyone watched) and syncs it
when the demo starts; from then on it logs and syncs on the demo clock for as long as the demo runs.

Emails go to an SMTP server of the demo's own (aiosmtpd on a free port of 127.0.0.1) that keeps each one as a file
in a Maildir beside the database (``coldchain-demo-mail/``): the shipper's logistics desk and the receiving
pharmacist chose alarm emails, and the shipper's escalation chain tells its logistics desk, then its admin, about
an alarm nobody acknowledges.

The demo only ever creates, uses or deletes its own database file: the file it creates is stamped with an
SQLite application id, a file without that stamp is never touched, and the file is locked while a demo runs,
so a second demo beside a running one leaves it alone. The port is claimed before anything else happens.
SIGINT or SIGTERM stops the trackers, then the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import mailbox
import os
import secrets
import signal
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session

from coldchain.http.app import create_app
from coldchain.jobs import running_jobs
from coldchain.settings import Settings
from tracker_sim import BUILTIN_SCENARIOS, RunReport, Scenario, TrackerCredentials, register_tracker, run_tracker
from tracker_sim.clock import AcceleratedClock
from tracker_sim.network import OfflineWindow
from tracker_sim.scenarios import Freeze

__all__ = ["DEFAULT_DATABASE", "DEFAULT_SPEED", "EXAMPLE_PROFILES", "DemoError", "DemoOptions", "run_demo"]

EXAMPLE_PROFILES = files("coldchain") / "examples" / "profiles.json"
DEFAULT_DATABASE = Path("coldchain-demo.db")
DEFAULT_SPEED = 60.0
APPLICATION_ID = 0x43434445
"""Stamped into the header of every database file the demo creates (SQLite's ``PRAGMA application_id``)."""
SYNC_INTERVAL_MIN = 5.0
"""How often a demo tracker in coverage syncs, in demo minutes (well inside the 15 minutes that make an alarm late)."""
_STOP_GRACE_S = 5.0


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


class DemoOptions(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    database: Path = DEFAULT_DATABASE
    speed: float = DEFAULT_SPEED
    """Demo seconds per real second."""


# --- the demo's own database ------------------------------------------------------------------------------------


def _stamped(path: Path) -> bool:
    """Whether ``path`` is an SQLite file the demo created: its header carries the demo's application id."""
    with path.open("rb") as file:
        header = file.read(100)
    return (
        len(header) == 100
        and header.startswith(b"SQLite format 3\x00")
        and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    )


@contextlib.contextmanager
def own_database(path: Path) -> Iterator[str]:
    """A fresh database file at ``path`` for this demo, locked against other demos while the context is open.

    An existing file is replaced only when a demo created it and no demo is running on it; anything else is
    refused with :class:`DemoError` and left exactly as it was.
    """
    path = path.resolve()
    lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        created = os.fstat(lock_fd).st_size == 0
        if not created and not _stamped(path):
            raise DemoError(
                f"{path} exists and is not a demo database: the demo never touches a database it did not create."
                " Give it a new file with --database, or move that one away."
            )
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError(
                f"another demo is running on {path}; stop it first, or give this one its own file with --database"
            ) from None
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.ftruncate(lock_fd, 0)
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("CREATE TABLE demo_stamp (created_at TEXT NOT NULL)")  # writes the header with the stamp
            db.execute("INSERT INTO demo_stamp VALUES (?)", (datetime.now(UTC).isoformat(),))
            db.commit()
        yield f"sqlite:///{path}"
    finally:
        os.close(lock_fd)  # releases the lock


def claim_port(host: str, port: int) -> socket.socket:
    """The listening socket the service will serve on, bound before anything else happens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"cannot listen on {host}:{port} ({exc.strerror}): another program holds port {port}."
            f" Pick another port: `make demo PORT={port + 10}` or `coldchain demo --port {port + 10}`."
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


# --- set-up through the API ---------------------------------------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _call(http: httpx.AsyncClient, method: str, path: str, token: str, body: Any = None) -> Any:
    response = await http.request(method, path, json=body, headers=_bearer(token))
    if response.status_code >= 400:
        raise DemoError(f"the service refused {method} {path}: {response.status_code} {response.text}")
    return response.json()


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """One demo shipment: which trip, placed where around the demo's now, and what it is for."""

    label: str
    scenario: Scenario
    started_h_ago: float
    product: str
    urgent: bool = False
    promised_in_h: float = 72.0
    """Promised delivery, hours after the demo's start."""


def plans() -> list[Plan]:
    """The five demo shipments (times in hours relative to the demo's start)."""
    freeze = BUILTIN_SCENARIOS["freeze"]
    reefer = BUILTIN_SCENARIOS["reefer-road"]
    offline = BUILTIN_SCENARIOS["multi-day-offline"]
    return [
        # A short freeze at a stop, within the rule's hour: an excursion without an alarm, for the pharmacist's
        # worklist (release recommended, a decision still needed).
        Plan(
            label="delivered",
            scenario=msgspec.structs.replace(
                reefer, events=(*reefer.events, Freeze(at_h=5.0, duration_h=0.75, target_c=-3.0, tau_min=20.0))
            ),
            started_h_ago=12.0,
            product="vaccine",
        ),
        # The load crosses -0.5 °C about 35 min into the freeze; the alarm needs 60 min more: met ~45 min in.
        Plan(
            label="live-alarm",
            scenario=msgspec.structs.replace(
                freeze, events=(Freeze(at_h=2.2, duration_h=3.0, target_c=-8.0, tau_min=60.0), *freeze.events[1:])
            ),
            started_h_ago=3.0,
            product="vaccine",
        ),
        Plan(
            label="at-risk",
            scenario=BUILTIN_SCENARIOS["compressor-failure"],
            started_h_ago=1.5,
            product="biologic",
            urgent=True,
            promised_in_h=2.5,
        ),
        # Out of coverage from an hour before the start to 1.5 h after; a freeze in between is raised late.
        Plan(
            label="silent",
            scenario=msgspec.structs.replace(
                offline,
                network=msgspec.structs.replace(offline.network, offline=(OfflineWindow(start_h=1.0, duration_h=2.5),)),
                events=(Freeze(at_h=1.4, duration_h=1.6, target_c=-6.0, tau_min=40.0),),
            ),
            started_h_ago=2.0,
            product="vaccine",
        ),
        Plan(
            label="in-flight",
            scenario=msgspec.structs.replace(BUILTIN_SCENARIOS["air-freight"], clock_offset_s=0.0),
            started_h_ago=1.0,
            product="vaccine",
        ),
    ]


PRODUCTS = {
    # name, stability profile, GTIN-14 (under GS1's example company prefix 4012345, check digits valid)
    "vaccine": ("Vaccine, 10-dose vial", "who-e006-tr06-fridge", "04012345000016"),
    "biologic": ("Biologic, prefilled syringe", "biologic-air-freight", "04012345000023"),
}


class Tokens(msgspec.Struct, frozen=True, kw_only=True):
    shipper_admin: str
    shipper_logistics: str
    carrier: str
    pharmacist: str
    goods_in: str
    """The receiving pharmacy's goods-in desk (logistics), who records the receipt."""
    auditor: str


class Shipment(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    plan: Plan
    start: datetime
    credentials: TrackerCredentials


class Login(msgspec.Struct, frozen=True, kw_only=True):
    """A person of the demo who signs in to the portal."""

    who: str
    email: str
    password: str


class World(msgspec.Struct, frozen=True, kw_only=True):
    tokens: Tokens
    orgs: dict[str, int]
    shipments: list[Shipment]
    logins: list[Login]
    users: dict[str, int]
    """User ids by email."""


DEMO_USERS = (
    ("shipper", "admin", "Ada Admin", "admin@pharma.demo", "shipper admin"),
    ("shipper", "logistics", "Lena Logistics", "logistics@pharma.demo", "shipper logistics"),
    ("carrier", "carrier", "Carl Carrier", "dispatch@reefer.demo", "carrier dispatch"),
    ("receiver", "pharmacist", "Paula Pharmacist", "pharmacist@pharmacy.demo", "receiving pharmacist"),
    ("shipper", "auditor", "Otto Auditor", "qa@pharma.demo", "QA auditor"),
)
"""One portal user per role with work to do: (organisation, role, name, email, who)."""


DEMO_EMAILS = (
    # (email, kinds, time zone): who is emailed about what, at once
    (
        "logistics@pharma.demo",
        ["alarm.raised", "alarm.escalated", "eta.at_risk", "tracker.silent"],
        "Europe/Berlin",
    ),
    ("pharmacist@pharmacy.demo", ["alarm.raised", "decision.needed"], "Europe/Helsinki"),
)
"""The demo's people who chose email notifications; the shipper's escalation chain is :data:`DEMO_CHAIN`."""
DEMO_CHAIN = (("logistics@pharma.demo", 10), ("admin@pharma.demo", 20))
"""The shipper's escalation chain: who is told, in order, after how many demo minutes without acknowledgement."""


async def _set_up_emails(http: httpx.AsyncClient, operator: str, orgs: dict[str, int], users: dict[str, int]) -> None:
    """Email preferences for the demo's people and the shipper's escalation chain, as their admins would set them."""
    owners = {email: orgs[kind] for kind, _, _, email, _ in DEMO_USERS}
    for email, kinds, zone in DEMO_EMAILS:
        path = f"/v1/organisations/{owners[email]}/users/{users[email]}/notification-preferences"
        await _call(http, "PUT", path, operator, {"kinds": kinds, "time_zone": zone})
    steps = [{"user_id": users[email], "delay_min": delay} for email, delay in DEMO_CHAIN]
    await _call(http, "PUT", f"/v1/organisations/{orgs['shipper']}/escalation-chain", operator, {"steps": steps})


def _place(route_point: Any) -> dict[str, Any]:
    return {"name": route_point.name, "lat": route_point.latitude, "lon": route_point.longitude}


async def _set_up(http: httpx.AsyncClient, operator: str, now: datetime, stamp: str) -> World:
    for profile in json.loads(EXAMPLE_PROFILES.read_text(encoding="utf-8"))["profiles"]:
        await _call(http, "POST", "/v1/profiles", operator, profile)
    orgs: dict[str, int] = {}
    for name, kind in (("Demo Pharma", "shipper"), ("Demo Reefer Lines", "carrier"), ("Demo Pharmacy", "receiver")):
        orgs[kind] = (await _call(http, "POST", "/v1/organisations", operator, {"name": name, "kind": kind}))["id"]

    async def token(kind: str, role: str, name: str) -> str:
        body = {"role": role, "name": name}
        return str((await _call(http, "POST", f"/v1/organisations/{orgs[kind]}/tokens", operator, body))["token"])

    tokens = Tokens(
        shipper_admin=await token("shipper", "admin", "demo shipper admin"),
        shipper_logistics=await token("shipper", "logistics", "demo logistics desk"),
        carrier=await token("carrier", "carrier", "demo carrier dispatch"),
        pharmacist=await token("receiver", "pharmacist", "demo receiving pharmacist"),
        goods_in=await token("receiver", "logistics", "demo goods-in desk"),
        auditor=await token("shipper", "auditor", "demo QA auditor"),
    )
    logins = []
    users: dict[str, int] = {}
    for kind, role, name, email, who in DEMO_USERS:
        password = secrets.token_urlsafe(9)
        user = {"role": role, "name": name, "email": email, "password": password}
        created = await _call(http, "POST", f"/v1/organisations/{orgs[kind]}/users", operator, user)
        users[email] = created["id"]
        logins.append(Login(who=who, email=email, password=password))
    await _set_up_emails(http, operator, orgs, users)
    shipper = tokens.shipper_logistics
    lots: dict[str, tuple[int, int]] = {}
    for key, (name, profile_id, gtin) in PRODUCTS.items():
        product = await _call(
            http, "POST", "/v1/products", shipper, {"name": name, "profile_id": profile_id, "gtin": gtin}
        )
        lot = await _call(
            http, "POST", f"/v1/products/{product['id']}/lots", shipper, {"lot_number": f"{key[0].upper()}{stamp[-6:]}"}
        )
        lots[key] = (product["id"], lot["id"])

    shipments = []
    for n, plan in enumerate(plans(), start=1):
        route = plan.scenario.route
        start = now - timedelta(hours=plan.started_h_ago)
        reference = f"DEMO-{n}-{stamp}"
        credentials = await register_tracker(http, admin_token=shipper, serial=reference, model="tracker_sim")
        product_id, lot_id = lots[plan.product]
        body = {
            "reference": reference,
            "product_id": product_id,
            "lot_id": lot_id,
            "quantity": 400,
            "origin": _place(route[0]),
            "destination": _place(route[-1]),
            "waypoints": [[w.latitude, w.longitude] for w in route[1:-1]],
            "legs": [{"carrier_id": orgs["carrier"], "mode": plan.scenario.mode}],
            "receiver_id": orgs["receiver"],
            "promised_at": (now + timedelta(hours=plan.promised_in_h)).isoformat(),
            "priority": "urgent" if plan.urgent else "standard",
        }
        shipment = await _call(http, "POST", "/v1/shipments", shipper, body)
        path = f"/v1/shipments/{shipment['id']}"
        await _call(http, "POST", f"{path}/trackers", shipper, {"serial": reference, "starts_at": start.isoformat()})
        origin = _place(route[0])
        packed = {"kind": "packed", "place": origin, "occurred_at": start.isoformat()}
        await _call(http, "POST", f"{path}/custody", shipper, packed)
        picked_up = {**packed, "kind": "picked_up", "occurred_at": (start + timedelta(minutes=20)).isoformat()}
        await _call(http, "POST", f"{path}/custody", tokens.carrier, picked_up)
        shipments.append(
            Shipment(id=shipment["id"], reference=reference, plan=plan, start=start, credentials=credentials)
        )
    return World(tokens=tokens, orgs=orgs, shipments=shipments, logins=logins, users=users)


async def _complete_delivery(http: httpx.AsyncClient, world: World, shipment: Shipment, now: datetime) -> None:
    """Delivered and received at the destination, after the tracker's readings recorded the arrival."""
    destination = _place(shipment.plan.scenario.route[-1])
    path = f"/v1/shipments/{shipment.id}/custody"
    chain = await _call(http, "GET", path, world.tokens.shipper_logistics)
    last = max(datetime.fromisoformat(e["occurred_at"]) for e in chain["events"])
    delivered_at = min(last + timedelta(minutes=10), now)
    delivered = {"kind": "delivered", "place": destination, "occurred_at": delivered_at.isoformat()}
    await _call(http, "POST", path, world.tokens.carrier, delivered)
    received_at = min(delivered_at + timedelta(minutes=15), now)
    received = {"kind": "received", "place": destination, "occurred_at": received_at.isoformat()}
    await _call(http, "POST", path, world.tokens.goods_in, received)


# --- what the demo prints -----------------------------------------------------------------------------------------


def _mkt(status: dict[str, Any]) -> str:
    value = status["mkt"]["shipment_mkt_c"]
    return "-" if value is None else f"{value:.2f}"


def _summary(world: World, statuses: list[dict[str, Any]], url: str, speed: float, mail: MailSink) -> str:
    header = (
        f"{'shipment':<24} {'story':<11} {'status':<10} {'judged':>6} {'excursions':>10} {'alarms':>6}"
        f" {'late':>4} {'MKT °C':>7}  recommendation"
    )
    lines = [header]
    for shipment, status in zip(world.shipments, statuses, strict=True):
        alarms = [a for a in status["alarms"] if a["withdrawn_at"] is None]
        lines.append(
            f"{status['reference']:<24} {shipment.plan.label:<11} {status['status']:<10} {status['readings']:>6}"
            f" {len(status['excursions']):>10} {len(alarms):>6} {sum(a['late'] for a in alarms):>4}"
            f" {_mkt(status):>7}  {status['disposition']['recommendation']}"
        )
    tokens = world.tokens
    first = world.shipments[0].id
    live = world.shipments[1].id
    urgent = world.shipments[2].id

    def curl(token: str, method: str, path: str, body: str | None = None) -> str:
        data = f" -H 'Content-Type: application/json' -d '{body}'" if body else ""
        verb = "" if method == "GET" else f" -X {method}"
        return f"curl -s{verb} -H 'Authorization: Bearer {token}'{data} {url}{path}"

    lines += [
        "",
        f"The portal: {url}/portal (its board moves as the trackers sync). Sign in as:",
        *(f"  {login.email:<26} password {login.password:<14} ({login.who})" for login in world.logins),
        "",
        "Tokens, one per role with work to do, each with a call to try:",
        f"  shipper admin      {tokens.shipper_admin}",
        f"    {curl(tokens.shipper_admin, 'GET', '/v1/webhooks')}",
        f"  shipper logistics  {tokens.shipper_logistics}",
        f"    {curl(tokens.shipper_logistics, 'GET', f'/v1/shipments/{live}/alarms')}",
        f"  carrier            {tokens.carrier}",
        f"    {curl(tokens.carrier, 'GET', f'/v1/shipments/{urgent}/eta')}",
        f"  receiver pharmacist {tokens.pharmacist}",
        f"    {curl(tokens.pharmacist, 'GET', f'/v1/shipments/{live}/status')}",
        f"  auditor            {tokens.auditor}",
        f"    {curl(tokens.auditor, 'GET', f'/v1/shipments/{first}/custody/verify')}",
        f"    {curl(tokens.auditor, 'GET', f'/v1/shipments/{first}/certificate')} > certificate.json",
        f"    curl -s {url}/.well-known/coldchain-keys > keys.json"
        " && .venv/bin/coldchain verify certificate.json --key keys.json",
        "",
        f"Demo time runs {speed:g}x real time (one minute of it every {60 / speed:g} s): the trackers of the"
        " shipments in transit keep logging and syncing, and the background jobs run.",
        f"Watch the live alarm arrive: {curl(tokens.shipper_logistics, 'GET', f'/v1/shipments/{live}/alarms')}",
        f"Emails go to the demo's own SMTP server on 127.0.0.1:{mail.port}, which keeps each one as a file in"
        f" {mail.directory}/new/ (a Maildir; read one with `cat`, or all with `mutt -f {mail.directory}`):"
        " the shipper's logistics desk and the receiving pharmacist are emailed about alarms, and an alarm nobody"
        " acknowledges is emailed to the logistics desk after 10 demo minutes and to the shipper's admin after 20"
        " (the escalation chain).",
        f"The event stream: curl -sN -H 'Authorization: Bearer {tokens.shipper_logistics}' {url}/v1/events",
        f"The service is running at {url} (try {url}/health or {url}/schema). Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


# --- running it ---------------------------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops the trackers first, then the service."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _say(message: str) -> None:
    print(f"coldchain demo: {message}", flush=True)


async def _play(
    http: httpx.AsyncClient, world: World, shipment: Shipment, logbooks: Path, clock: AcceleratedClock, seed: int
) -> RunReport:
    report = await run_tracker(
        shipment.plan.scenario,
        shipment.credentials,
        logbook_path=logbooks / f"{shipment.reference}.db",
        http=http,
        speed=clock.speed,
        world=clock.now,
        seed=seed,
        start=shipment.start,
        sync_interval_min=SYNC_INTERVAL_MIN,
        give_up_after=timedelta(days=30),
        progress=lambda message: None,
    )
    if report.error:
        _say(f"tracker {shipment.reference} stopped: {report.error}")
    return report


async def _demo(
    http: httpx.AsyncClient, operator: str, clock: AcceleratedClock, url: str, logbooks: Path, mail: MailSink
) -> None:
    """Set up, let every tracker sync what it logged before now, print the summary, play on until cancelled."""
    now = clock.now()
    stamp = now.strftime("%Y%m%d%H%M%S")
    _say("setting up organisations, users, tokens, products, lots and five shipments through the API")
    world = await _set_up(http, operator, now, stamp)
    _say("playing the trips: each tracker syncs what it logged before now, then lives on the demo clock")
    runs = [
        asyncio.create_task(_play(http, world, shipment, logbooks, clock, seed), name=shipment.reference)
        for seed, shipment in enumerate(world.shipments)
    ]
    try:
        await asyncio.wait({runs[0]})  # the delivered trip is all in the past: one sync holds it
        await _complete_delivery(http, world, world.shipments[0], clock.now())
        await _wait_for_first_syncs(http, world)
        statuses = [
            await _call(http, "GET", f"/v1/shipments/{s.id}/status", world.tokens.shipper_logistics)
            for s in world.shipments
        ]
        print(_summary(world, statuses, url, clock.speed, mail), flush=True)
        await asyncio.gather(*runs)
        await asyncio.Event().wait()  # every trip is over: keep serving
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)


async def _wait_for_first_syncs(http: httpx.AsyncClient, world: World) -> None:
    """Until every tracker in coverage has delivered what it logged before the demo began (at most ~30 s)."""
    for _ in range(300):
        trackers = await _call(http, "GET", "/v1/trackers", world.tokens.shipper_logistics)
        synced = {t["tracker_id"] for t in trackers if t["sync"]["last_sync_at"] is not None}
        waiting = [s for s in world.shipments if s.reference not in synced and s.plan.label != "silent"]
        if not waiting:
            return
        await asyncio.sleep(0.1)


class MailSink(msgspec.Struct, frozen=True, kw_only=True):
    """The demo's SMTP server: where it listens and the Maildir it keeps every email in."""

    port: int
    directory: Path
    server: Any


class _Keeper:
    """aiosmtpd's handler: each email it takes is kept as a file of the Maildir, byte for byte as it came."""

    def __init__(self, directory: Path) -> None:
        self.maildir = mailbox.Maildir(directory)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        self.maildir.add(content if isinstance(content, bytes) else content.encode())
        return "250 2.0.0 kept"


async def _mail_sink(host: str, directory: Path) -> MailSink:
    """An SMTP server on a free port of ``host`` (aiosmtpd) keeping every email it takes in the Maildir
    ``directory``, which it creates; emails of earlier demos stay there."""
    handler = _Keeper(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="coldchain-demo-mail"), host=host, port=0)
    return MailSink(port=server.sockets[0].getsockname()[1], directory=directory, server=server)


def _demo_keys(database: Path) -> dict[str, str]:
    """The demo's certificate keys, kept beside its database (``<name>-keys/``): made once, then reused, so the
    certificates of earlier runs still verify."""
    from coldchain.documents.signing import make_pilot_signer
    from coldchain.keys import generate_keys

    folder = database.with_name(database.stem + "-keys")
    existing = sorted(folder.glob("signing-*.pem"))
    if existing:
        signing = existing[-1]
    else:
        _say(f"making the demo's certificate keys in {folder}")
        signing = generate_keys(
            folder, pdf_signer=make_pilot_signer("coldchain demo", "coldchain demo")
        ).signing_key_file
    return {
        "signing_key_file": str(signing),
        "published_keys_file": str(folder / "published-keys.json"),
        "pdf_signer_file": str(folder / "pdf-signer.p12"),
    }


async def run_demo(settings: Settings, options: DemoOptions) -> int:
    """Run the demo until SIGINT or SIGTERM; the exit status (0 after a clean stop)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        sock = claim_port(options.host, options.port)
        with contextlib.closing(sock), own_database(options.database) as database_url:
            return await _serve_demo(settings, options, sock, database_url, stop)
    except DemoError as exc:
        print(f"coldchain demo: {exc}", flush=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _serve_demo(
    settings: Settings, options: DemoOptions, sock: socket.socket, database_url: str, stop: asyncio.Event
) -> int:
    operator = settings.admin_token or secrets.token_urlsafe(24)
    clock = AcceleratedClock(datetime.now(UTC).replace(microsecond=0), speed=options.speed)
    host = f"[{options.host}]" if ":" in options.host else options.host
    url = f"http://{host}:{options.port}"
    mail = await _mail_sink("127.0.0.1", options.database.with_name(options.database.stem + "-mail"))
    try:
        settings = msgspec.structs.replace(
            settings,
            database_url=database_url,
            admin_token=operator,
            host=options.host,
            port=options.port,
            job_interval_s=5.0,
            webhook_interval_s=2.0,
            public_url=url,
            smtp_host="127.0.0.1",
            smtp_port=mail.port,
            smtp_tls="none",
            smtp_username=None,
            smtp_password=None,
            smtp_from="coldchain demo <alerts@coldchain.demo>",
            email_interval_s=2.0,
            **_demo_keys(options.database),
        )
        return await _serve(settings, options, sock, clock, operator, url, mail, stop)
    finally:
        mail.server.close()
        await mail.server.wait_closed()


async def _serve(
    settings: Settings,
    options: DemoOptions,
    sock: socket.socket,
    clock: AcceleratedClock,
    operator: str,
    url: str,
    mail: MailSink,
    stop: asyncio.Event,
) -> int:
    app = create_app(
        settings, clock=clock.now, background=[lambda store: running_jobs(store, settings, clock=clock.now)]
    )
    # The client lets idle connections go well before the server closes them: otherwise a request sent on a
    # connection the server is closing at that moment fails ("server disconnected").
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=30))
    _say(f"migrating {options.database} and starting the service")
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    while not server.started:
        done, _ = await asyncio.wait({serving, stopping}, timeout=0.05)
        if serving in done:
            stopping.cancel()
            serving.result()
            raise DemoError("the service stopped while starting")
        if stopping in done:
            await _stop(server, serving, None)
            return 0
    _say(f"serving on {url} from {settings.database_url.removeprefix('sqlite:///')}")
    print(f"operator token for this run: {operator}", flush=True)
    with tempfile.TemporaryDirectory(prefix="coldchain-demo-") as logbooks:
        limits = httpx.Limits(keepalive_expiry=5.0)
        async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:
            work = asyncio.create_task(_demo(http, operator, clock, url, Path(logbooks), mail))
            done, _ = await asyncio.wait({work, stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
            await _stop(server, serving, work)
            stopping.cancel()
            if work in done and not work.cancelled() and (error := work.exception()) is not None:
                raise error
    return 0


async def _stop(server: _Server, serving: asyncio.Task[None], work: asyncio.Task[None] | None) -> None:
    """Trackers first, then the service; a service that does not stop in a few seconds is made to."""
    if work is not None and not work.done():
        _say("stopping the trackers")
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
    _say("stopping the service")
    server.should_exit = True
    try:
        await asyncio.wait_for(asyncio.shield(serving), timeout=_STOP_GRACE_S)
    except TimeoutError:
        server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(serving, timeout=_STOP_GRACE_S)
