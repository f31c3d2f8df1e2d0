from __future__ import annotations

import json

import pytest

from coldchain.domain.profiles import (
    DEFAULT_MAX_GAP_MIN,
    AlarmRule,
    MktSettings,
    Profile,
    ProfileError,
    load_profiles,
)
from tests.domain.engine_support import EXAMPLE_PROFILES, rule, shared_profile

PROFILES_JSON = EXAMPLE_PROFILES


def test_all_ten_example_profiles_load_from_the_shared_file() -> None:
    profiles = load_profiles(PROFILES_JSON.read_bytes())

    assert len(profiles) == 10
    assert {p.id for p in profiles} >= {"who-e006-tr06-fridge", "usp-crt", "humira", "biologic-air-freight"}
    assert all(p.version == 1 for p in profiles)


def test_the_example_profiles_keep_their_rules_and_mkt_settings() -> None:
    tr06 = shared_profile("who-e006-tr06-fridge")
    heat = tr06.rule("heat alarm")
    assert (heat.direction, heat.threshold, heat.inclusive, heat.mode, heat.delay_min) == (
        "above",
        8.0,
        True,
        "consecutive",
        600,
    )
    assert tr06.mkt is None
    crt = shared_profile("usp-crt")
    assert crt.mkt == MktSettings(activation_energy_kj_mol=83.144, window="30d", limit_c=25.0)
    assert crt.mkt.window_min == 30 * 24 * 60
    assert shared_profile("spikevax-thawed").shelf_life_at_label_range_days == 60
    assert shared_profile("biologic-air-freight").rule("humidity").metric == "humidity"


def test_max_gap_defaults_to_twice_the_logging_interval_or_an_hour() -> None:
    assert shared_profile("who-e006-tr06-fridge").max_gap_min == 20
    assert shared_profile("usp-cct").max_gap_min == DEFAULT_MAX_GAP_MIN == 60
    explicit = Profile(id="p", name="p", label_range_c=(2, 8), logging_interval_max_min=10, max_gap_min=45)
    assert explicit.gap_tolerance_min == 45


def test_a_rule_knows_a_value_on_the_threshold_is_beyond_only_when_inclusive() -> None:
    inclusive_above = rule(threshold=30.0, inclusive=True)
    exclusive_above = rule(threshold=30.0, inclusive=False)
    inclusive_below = rule(direction="below", threshold=-0.5, inclusive=True)

    assert inclusive_above.is_beyond(30.0)
    assert not exclusive_above.is_beyond(30.0)
    assert exclusive_above.is_beyond(30.1)
    assert inclusive_below.is_beyond(-0.5)
    assert not inclusive_below.is_beyond(-0.4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"delay_min": -1.0}, "delay_min must be"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"mode": "instant", "delay_min": 5.0}, "an instant rule takes no delay"),
        ({"mode": "consecutive", "scope": "lifetime"}, "needs mode 'cumulative'"),
        ({"mode": "consecutive", "scope": "rolling_24h"}, "cumulative rules only"),
        ({"mode": "cumulative", "scope": "rolling_24h", "delay_min": 1500.0}, "never be reached"),
        ({"mode": "cumulative", "scope": "rolling_24h", "delay_min": 0.0}, "needs a delay"),
        ({"name": " "}, "needs a name"),
    ],
)
def test_an_invalid_rule_is_refused_with_a_clear_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        rule(**fields)


def test_duplicate_rule_names_and_an_inverted_label_range_are_refused() -> None:
    with pytest.raises(ProfileError, match="rule names must be unique, repeated: heat"):
        Profile(id="p", name="p", label_range_c=(2, 8), rules=(rule(), rule()))
    with pytest.raises(ProfileError, match="label_range_c"):
        Profile(id="p", name="p", label_range_c=(8, 2))
    with pytest.raises(ProfileError, match="activation_energy"):
        MktSettings(activation_energy_kj_mol=0)


def test_a_malformed_document_names_the_offending_path() -> None:
    document = json.loads(PROFILES_JSON.read_text())
    document["profiles"][3]["rules"][1]["mode"] = "sometimes"

    with pytest.raises(ProfileError, match=r"\$\.profiles\[3\]\.rules\[1\]\.mode"):
        load_profiles(json.dumps(document))


def test_a_rule_error_inside_a_document_names_the_rule_and_its_path() -> None:
    document = json.loads(PROFILES_JSON.read_text())
    document["profiles"][0]["rules"][0]["delay_min"] = -5

    with pytest.raises(ProfileError, match=r"rule 'heat alarm': delay_min.*\$\.profiles\[0\]\.rules\[0\]"):
        load_profiles(json.dumps(document))


def test_unknown_fields_bad_json_and_repeated_ids_are_refused() -> None:
    with pytest.raises(ProfileError, match="unknown field"):
        load_profiles('{"profiles": [{"id": "a", "name": "a", "label_range_c": [2, 8], "colour": 1}]}')
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profiles("{")
    same = '{"id": "a", "name": "a", "label_range_c": [2, 8]}'
    with pytest.raises(ProfileError, match="a v1"):
        load_profiles('{"profiles": [' + same + "," + same + "]}")


def test_an_alarm_rule_decodes_with_defaults_for_metric_and_scope() -> None:
    (loaded,) = load_profiles(
        '{"profiles": [{"id": "a", "name": "a", "label_range_c": [2, 8], "rules": [{"name": "r",'
        ' "direction": "below", "threshold": 2, "inclusive": false, "mode": "instant", "action": "warn"}]}]}'
    )
    assert loaded.rules == (
        AlarmRule(name="r", direction="below", threshold=2.0, inclusive=False, mode="instant", action="warn"),
    )
    assert loaded.rules[0].metric == "temperature"
    assert loaded.rules[0].scope == "shipment"
