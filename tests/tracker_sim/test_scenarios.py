from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from tracker_sim.scenarios import (
    BUILTIN_SCENARIOS,
    CompressorFailure,
    DoorOpening,
    ScenarioError,
    builtin_scenario,
    load_scenarios,
    resolve_scenarios,
)

TOML_TRIP = """
name = "vienna-graz"
container = "passive"
start = 2026-04-01T07:30:00+02:00
interval_min = 10
setpoint_c = 5.0

[[route]]
name = "Vienna"
latitude = 48.2082
longitude = 16.3738
dwell_min = 15

[[route]]
name = "Graz"
latitude = 47.0707
longitude = 15.4395

[[events]]
kind = "door_open"
at_h = 1.0
duration_min = 3

[network]
lost_response_rate = 0.1

[[network.offline]]
start_h = 0.5
duration_h = 30
"""


def test_the_promised_scenarios_are_built_in() -> None:
    assert {"reefer-road", "air-freight", "multi-day-offline", "compressor-failure", "freeze"} <= set(BUILTIN_SCENARIOS)
    assert all(name == scenario.name for name, scenario in BUILTIN_SCENARIOS.items())


def test_an_unknown_scenario_name_lists_the_built_in_ones() -> None:
    with pytest.raises(ScenarioError, match="reefer-road"):
        builtin_scenario("teleport")


def test_a_json_file_with_one_scenario_loads_exactly_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "trip.json"
    path.write_bytes(msgspec.json.encode(BUILTIN_SCENARIOS["compressor-failure"]))
    assert load_scenarios(path) == [BUILTIN_SCENARIOS["compressor-failure"]]


def test_a_json_file_may_hold_a_list_or_a_scenarios_table(tmp_path: Path) -> None:
    both = [BUILTIN_SCENARIOS["freeze"], BUILTIN_SCENARIOS["air-freight"]]
    as_list, as_table = tmp_path / "list.json", tmp_path / "table.json"
    as_list.write_bytes(msgspec.json.encode(both))
    as_table.write_bytes(msgspec.json.encode({"scenarios": both}))
    assert load_scenarios(as_list) == both
    assert load_scenarios(as_table) == both


def test_a_toml_file_describes_a_trip_with_events_and_network(tmp_path: Path) -> None:
    path = tmp_path / "trip.toml"
    path.write_text(TOML_TRIP, encoding="utf-8")
    (scenario,) = load_scenarios(path)
    assert scenario.name == "vienna-graz"
    assert scenario.start == datetime(2026, 4, 1, 7, 30, tzinfo=timezone(timedelta(hours=2)))
    assert [w.name for w in scenario.route] == ["Vienna", "Graz"]
    assert scenario.events == (DoorOpening(at_h=1.0, duration_min=3),)
    assert scenario.network.offline[0].duration_h == 30
    assert scenario.container == "passive"


def test_a_toml_file_may_hold_several_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    body = TOML_TRIP.replace("[[", "[[scenarios.").replace("[network]", "[scenarios.network]")
    path.write_text("[[scenarios]]\n" + body, encoding="utf-8")
    (scenario,) = load_scenarios(path)
    assert scenario.name == "vienna-graz"


def test_events_are_told_apart_by_their_kind(tmp_path: Path) -> None:
    path = tmp_path / "trip.json"
    path.write_text(
        '{"name": "x", "route": [{"latitude": 1, "longitude": 2}],'
        ' "events": [{"kind": "compressor_failure", "at_h": 1.5, "duration_h": 2}]}',
        encoding="utf-8",
    )
    (scenario,) = load_scenarios(path)
    assert scenario.events == (CompressorFailure(at_h=1.5, duration_h=2.0),)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('{"name": "x", "route": [{"latitude": 1, "longitude": 2}], "colour": "red"}', "colour"),
        ('{"name": "x", "route": []}', "route"),
        ('{"name": "x", "route": [{"latitude": 91, "longitude": 2}]}', "latitude"),
        (
            '{"name": "x", "route": [{"latitude": 1, "longitude": 2}], "start": "2026-01-01T10:00:00"}',
            "start",
        ),
        (
            '{"name": "x", "route": [{"latitude": 1, "longitude": 2}], "events": [{"kind": "meteor"}]}',
            "meteor",
        ),
    ],
)
def test_a_file_with_a_mistake_is_refused_with_the_place_of_the_mistake(
    tmp_path: Path, body: str, complaint: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ScenarioError, match=complaint):
        load_scenarios(path)


def test_a_scenario_is_found_by_name_or_by_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_bytes(msgspec.json.encode(BUILTIN_SCENARIOS["freeze"]))
    assert resolve_scenarios("freeze") == [BUILTIN_SCENARIOS["freeze"]]
    assert resolve_scenarios(str(path)) == [BUILTIN_SCENARIOS["freeze"]]
    with pytest.raises(ScenarioError, match="no scenario file"):
        resolve_scenarios(str(tmp_path / "missing.toml"))
    with pytest.raises(ScenarioError, match="built in"):
        resolve_scenarios("nonsense")
