from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from tracker_sim.cli import FleetCommand, RunCommand, ScenariosCommand, main, parse_command
from tracker_sim.scenarios import BUILTIN_SCENARIOS, Scenario

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RUN = ["run", "--url", "http://localhost:8000", "--tracker-id", "TRK-1", "--secret", "s", "--logbook", "t.db"]


def run_command(*extra: str, environ: dict[str, str] | None = None, base: list[str] = RUN) -> RunCommand:
    command = parse_command([*base, *extra], now=NOW, environ=environ or {})
    assert isinstance(command, RunCommand)
    return command


def test_run_takes_every_documented_option() -> None:
    command = run_command(
        "--scenario",
        "air-freight",
        "--speed",
        "600",
        "--format",
        "msgpack",
        "--gzip",
        "--batch-size",
        "250",
        "--seed",
        "9",
        "--start",
        "2026-03-01T08:00:00+01:00",
        "--sync-interval-min",
        "30",
        "--retention-days",
        "2",
    )
    assert command.url == "http://localhost:8000"
    assert command.credentials.tracker_id == "TRK-1"
    assert command.credentials.secret == "s"
    assert command.logbook == Path("t.db")
    assert command.scenario == BUILTIN_SCENARIOS["air-freight"]
    assert command.speed == 600.0
    assert (command.settings.wire_format, command.settings.gzip, command.settings.batch_size) == (
        "msgpack",
        True,
        250,
    )
    assert command.seed == 9
    assert command.start == datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    assert command.sync_interval_min == 30.0
    assert command.retention == timedelta(days=2)


def test_run_defaults_to_an_hour_per_second_json_and_the_scenarios_own_start() -> None:
    command = run_command("--scenario", "freeze")
    assert command.speed == 3600.0
    assert (command.settings.wire_format, command.settings.gzip, command.settings.batch_size) == (
        "json",
        False,
        500,
    )
    assert command.start is None
    assert command.retention == timedelta(days=7)


def test_speed_max_means_as_fast_as_possible() -> None:
    assert run_command("--scenario", "freeze", "--speed", "max").speed is None


@pytest.mark.parametrize(
    ("start", "expected"),
    [("now", NOW), ("now-36h", NOW - timedelta(hours=36)), ("now-2d", NOW - timedelta(days=2))],
)
def test_the_start_may_be_now_or_some_time_ago(start: str, expected: datetime) -> None:
    assert run_command("--scenario", "freeze", "--start", start).start == expected


def test_the_secret_may_come_from_the_environment() -> None:
    base = [a for a in RUN if a not in ("--secret", "s")]
    command = run_command("--scenario", "freeze", base=base, environ={"TRACKER_SIM_SECRET": "from-env"})
    assert command.credentials.secret == "from-env"
    assert "from-env" not in repr(command)


def test_a_scenario_file_can_be_run(tmp_path: Path) -> None:
    path = tmp_path / "trip.json"
    mine = msgspec.structs.replace(BUILTIN_SCENARIOS["freeze"], name="my-freeze")
    path.write_bytes(msgspec.json.encode(mine))
    assert run_command("--scenario", str(path)).scenario == mine


@pytest.mark.parametrize(
    "extra",
    [
        ["--scenario", "teleport"],
        ["--scenario", "freeze", "--speed", "-5"],
        ["--scenario", "freeze", "--speed", "fast-ish"],
        ["--scenario", "freeze", "--format", "xml"],
        ["--scenario", "freeze", "--batch-size", "0"],
        ["--scenario", "freeze", "--start", "2026-03-01T08:00:00"],
        [],
    ],
)
def test_bad_run_arguments_exit_with_a_usage_error(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_command([*RUN, *extra], now=NOW, environ={})
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_run_without_any_secret_is_a_usage_error() -> None:
    base = [a for a in RUN if a not in ("--secret", "s")]
    with pytest.raises(SystemExit):
        parse_command([*base, "--scenario", "freeze"], now=NOW, environ={})


def test_fleet_mixes_named_and_file_scenarios_with_benchmark_defaults(tmp_path: Path) -> None:
    path = tmp_path / "more.json"
    path.write_bytes(msgspec.json.encode([BUILTIN_SCENARIOS["freeze"]]))
    command = parse_command(
        [
            "fleet",
            "--url",
            "http://svc",
            "--admin-token",
            "admin-XYZ",
            "--count",
            "50",
            "--scenario",
            "reefer-road",
            "--scenario",
            "air-freight",
            "--scenario-file",
            str(path),
            "--readings-per-tracker",
            "1000",
        ],
        now=NOW,
        environ={},
    )
    assert isinstance(command, FleetCommand)
    assert [s.name for s in command.scenarios] == ["reefer-road", "air-freight", "freeze"]
    assert (command.count, command.readings_per_tracker, command.batch_size, command.concurrency) == (
        50,
        1000,
        1000,
        32,
    )
    assert command.logbook_dir is None
    assert "admin-XYZ" not in repr(command)


def test_scenarios_lists_the_built_ins_and_shows_one_as_a_loadable_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert isinstance(parse_command(["scenarios"]), ScenariosCommand)
    assert main(["scenarios"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in BUILTIN_SCENARIOS)
    assert main(["scenarios", "--show", "compressor-failure"]) == 0
    shown = msgspec.json.decode(capsys.readouterr().out, type=Scenario)
    assert shown == BUILTIN_SCENARIOS["compressor-failure"]
