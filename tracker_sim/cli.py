"""``python -m tracker_sim``: run one simulated tracker, a fleet, register a tracker, list scenarios.

Examples::

    python -m tracker_sim register --url http://localhost:8000 --admin-token T --serial TRK-0001
    python -m tracker_sim run --url http://localhost:8000 --tracker-id TRK-0001 --secret S \\
        --logbook trk-0001.db --scenario compressor-failure --speed 3600
    python -m tracker_sim fleet --url http://localhost:8000 --admin-token T --count 100 \\
        --readings-per-tracker 5000 --batch-size 1000 --concurrency 32 --format msgpack
    python -m tracker_sim scenarios --show air-freight > my-trip.json

Parsing yields typed commands (:func:`parse_command`), so what the shell accepts is tested without running.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec

from tracker_sim.fleet import FleetResult, RegistrationError, register_tracker, run_fleet
from tracker_sim.runner import run_tracker
from tracker_sim.scenarios import (
    BUILTIN_SCENARIOS,
    Scenario,
    ScenarioError,
    load_scenarios,
    resolve_scenarios,
)
from tracker_sim.sync import SyncSettings, TrackerCredentials
from tracker_sim.wire import WireFormat

__all__ = [
    "FleetCommand",
    "RegisterCommand",
    "RunCommand",
    "ScenariosCommand",
    "build_parser",
    "main",
    "parse_command",
]

SECRET_ENV = "TRACKER_SIM_SECRET"


@dataclass(frozen=True)
class RunCommand:
    url: str
    credentials: TrackerCredentials
    logbook: Path
    scenario: Scenario
    speed: float | None
    settings: SyncSettings
    seed: int
    start: datetime | None
    sync_interval_min: float
    retention: timedelta
    verbose: bool = False


@dataclass(frozen=True)
class FleetCommand:
    url: str
    admin_token: str = field(repr=False)
    count: int
    scenarios: tuple[Scenario, ...]
    readings_per_tracker: int | None
    batch_size: int
    concurrency: int
    wire_format: WireFormat
    gzip: bool
    logbook_dir: Path | None
    seed: int
    start: datetime | None
    serial_prefix: str | None
    as_json: bool


@dataclass(frozen=True)
class RegisterCommand:
    url: str
    admin_token: str = field(repr=False)
    serial: str
    model: str | None


@dataclass(frozen=True)
class ScenariosCommand:
    show: str | None


Command = RunCommand | FleetCommand | RegisterCommand | ScenariosCommand


def _speed(text: str) -> float | None:
    if text.lower() in ("max", "fast", "asap"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the speed factor must be positive")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


_RELATIVE = re.compile(r"^now-(\d+(?:\.\d+)?)([mhd])$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def _start(text: str, now: datetime) -> datetime:
    """'now', some time before now ('now-36h', 'now-2d', 'now-90m') or an RFC 3339 time with offset."""
    if text == "now":
        return now
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now - amount * _UNITS[unit]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start {text!r}: use 'now', 'now-36h' or an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"--start {text!r} needs a UTC offset")
    return moment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tracker_sim", description="Simulated cold-chain trackers.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one tracker through a scenario against a service")
    run.add_argument("--url", required=True, help="base URL of the service")
    run.add_argument("--tracker-id", required=True)
    run.add_argument("--secret", help=f"the tracker's signing secret (or set {SECRET_ENV})")
    run.add_argument("--logbook", required=True, type=Path, help="SQLite logbook file (resumed if it exists)")
    run.add_argument("--scenario", required=True, help="built-in scenario name or a .json/.toml file")
    run.add_argument(
        "--speed",
        type=_speed,
        default=3600.0,
        help="simulated seconds per real second (default 3600), or 'max' for as fast as possible",
    )
    run.add_argument("--format", choices=("json", "msgpack"), default="json")
    run.add_argument("--gzip", action="store_true")
    run.add_argument("--batch-size", type=_positive_int, default=500)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--start", help="trip start: 'now', 'now-36h' or RFC 3339 (default: the scenario's)")
    run.add_argument("--sync-interval-min", type=float, default=15.0)
    run.add_argument("--retention-days", type=float, default=7.0)
    run.add_argument("-v", "--verbose", action="store_true")

    fleet = commands.add_parser("fleet", help="register N trackers, log their readings, push them concurrently")
    fleet.add_argument("--url", required=True)
    fleet.add_argument("--admin-token", required=True)
    fleet.add_argument("--count", type=_positive_int, default=10)
    fleet.add_argument("--scenario", action="append", default=[], help="built-in name or file (repeatable)")
    fleet.add_argument("--scenario-file", action="append", default=[], type=Path, help="repeatable")
    fleet.add_argument("--readings-per-tracker", type=_positive_int, help="default: the whole trip")
    fleet.add_argument("--batch-size", type=_positive_int, default=1000)
    fleet.add_argument("--concurrency", type=_positive_int, default=32)
    fleet.add_argument("--format", choices=("json", "msgpack"), default="json")
    fleet.add_argument("--gzip", action="store_true")
    fleet.add_argument("--logbook-dir", type=Path, help="keep logbooks here (default: a temporary directory)")
    fleet.add_argument("--seed", type=int, default=0)
    fleet.add_argument("--start", help="trip start: 'now', 'now-36h' or RFC 3339 (default: the scenario's)")
    fleet.add_argument("--serial-prefix", help="serials are <prefix>-00000... (default: sim-<random>)")
    fleet.add_argument("--json", action="store_true", help="print the result as JSON")

    register = commands.add_parser("register", help="register one tracker and print its secret")
    register.add_argument("--url", required=True)
    register.add_argument("--admin-token", required=True)
    register.add_argument("--serial", required=True)
    register.add_argument("--model")

    scenarios = commands.add_parser("scenarios", help="list built-in scenarios, or print one as JSON")
    scenarios.add_argument("--show", metavar="NAME", help="print this built-in scenario as a JSON file")
    return parser


def parse_command(
    argv: Sequence[str] | None = None, *, now: datetime | None = None, environ: dict[str, str] | None = None
) -> Command:
    """Parse the command line into a typed command (exits with a usage message on bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    environ = dict(os.environ) if environ is None else environ
    moment = now or datetime.now(UTC)
    try:
        start = _start(args.start, moment) if getattr(args, "start", None) else None
        if args.command == "run":
            secret = args.secret or environ.get(SECRET_ENV)
            if not secret:
                parser.error(f"run needs --secret or {SECRET_ENV}")
            found = resolve_scenarios(args.scenario)
            if len(found) != 1:
                parser.error(f"{args.scenario} holds {len(found)} scenarios; run plays exactly one")
            return RunCommand(
                url=args.url,
                credentials=TrackerCredentials(tracker_id=args.tracker_id, secret=secret),
                logbook=args.logbook,
                scenario=found[0],
                speed=args.speed,
                settings=SyncSettings(wire_format=args.format, gzip=args.gzip, batch_size=args.batch_size),
                seed=args.seed,
                start=start,
                sync_interval_min=args.sync_interval_min,
                retention=timedelta(days=args.retention_days),
                verbose=args.verbose,
            )
        if args.command == "fleet":
            plays = [s for spec in args.scenario for s in resolve_scenarios(spec)]
            plays += [s for path in args.scenario_file for s in load_scenarios(path)]
            return FleetCommand(
                url=args.url,
                admin_token=args.admin_token,
                count=args.count,
                scenarios=tuple(plays or [BUILTIN_SCENARIOS["reefer-road"]]),
                readings_per_tracker=args.readings_per_tracker,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
                wire_format=args.format,
                gzip=args.gzip,
                logbook_dir=args.logbook_dir,
                seed=args.seed,
                start=start,
                serial_prefix=args.serial_prefix,
                as_json=args.json,
            )
    except (ScenarioError, ValueError) as exc:
        parser.error(str(exc))
    if args.command == "register":
        return RegisterCommand(url=args.url, admin_token=args.admin_token, serial=args.serial, model=args.model)
    return ScenariosCommand(show=args.show)


async def _execute(command: Command) -> int:
    if isinstance(command, RunCommand):
        report = await run_tracker(
            command.scenario,
            command.credentials,
            logbook_path=command.logbook,
            url=command.url,
            speed=command.speed,
            settings=command.settings,
            seed=command.seed,
            start=command.start,
            sync_interval_min=command.sync_interval_min,
            retention=command.retention,
            progress=print,
        )
        summary = msgspec.structs.asdict(report)
        summary.pop("latencies_s")
        print(msgspec.json.encode(summary).decode())
        return 0 if report.complete else 1
    if isinstance(command, FleetCommand):
        try:
            result = await _fleet(command)
        except (RegistrationError, httpx.HTTPError) as exc:
            print(f"fleet stopped: {exc}", file=sys.stderr)
            return 1
        if command.as_json:
            numbers = msgspec.structs.asdict(result)
            numbers.pop("credentials")  # secrets stay out of output that gets pasted around
            print(msgspec.json.encode(numbers).decode())
        else:
            print(result.summary())
        return 0 if not result.errors else 1
    if isinstance(command, RegisterCommand):
        return await _register(command)
    if command.show is not None:
        try:
            scenario = BUILTIN_SCENARIOS[command.show]
        except KeyError:
            print(f"no built-in scenario {command.show!r}", file=sys.stderr)
            return 1
        print(msgspec.json.format(msgspec.json.encode(scenario).decode(), indent=2))
        return 0
    for name, scenario in BUILTIN_SCENARIOS.items():
        print(f"{name:20} {scenario.description}")
    return 0


async def _fleet(command: FleetCommand) -> FleetResult:
    return await run_fleet(
        command.url,
        admin_token=command.admin_token,
        count=command.count,
        scenarios=command.scenarios,
        readings_per_tracker=command.readings_per_tracker,
        batch_size=command.batch_size,
        concurrency=command.concurrency,
        wire_format=command.wire_format,
        gzip=command.gzip,
        logbook_dir=command.logbook_dir,
        seed=command.seed,
        start=command.start,
        serial_prefix=command.serial_prefix,
    )


async def _register(command: RegisterCommand) -> int:
    async with httpx.AsyncClient() as http:
        try:
            created = await register_tracker(
                http,
                url=command.url,
                admin_token=command.admin_token,
                serial=command.serial,
                model=command.model,
            )
        except (RegistrationError, httpx.HTTPError) as exc:
            print(f"registration failed: {exc}", file=sys.stderr)
            return 1
    print(f"tracker_id: {created.tracker_id}\nsecret: {created.secret}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    command = parse_command(argv)
    verbose = isinstance(command, RunCommand) and command.verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return asyncio.run(_execute(command))
