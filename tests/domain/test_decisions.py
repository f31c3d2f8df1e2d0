"""Decisions as pure rules: states, the worklist's reasons and order, the second-signature rule, and digests that
bind a signature to exactly what was decided."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.decisions import (
    MEANINGS,
    Decision,
    Signature,
    WorkItem,
    decision_state,
    evaluation_snapshot,
    in_effect,
    jcs_bytes,
    jcs_sha256,
    needs_approval,
    record_content,
    signature_manifest,
    waiting_reasons,
    work_order,
)
from coldchain.domain.disposition import recommend_disposition
from coldchain.domain.evaluation import evaluate
from coldchain.domain.exports import ReadingsDigest
from coldchain.domain.profiles import AlarmRule, Profile
from coldchain.domain.readings import Reading

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PROFILE = Profile(
    id="p",
    name="2-8 °C",
    label_range_c=(2.0, 8.0),
    max_gap_min=30.0,
    rules=(
        AlarmRule(
            name="heat",
            direction="above",
            threshold=8.0,
            inclusive=False,
            mode="consecutive",
            delay_min=30,
            action="quarantine",
        ),
    ),
)


def readings(temperatures: list[float]) -> list[Reading]:
    return [
        Reading(seq=i + 1, device_time=T0 + timedelta(minutes=10 * i), temperature_c=t)
        for i, t in enumerate(temperatures)
    ]


def snapshot_of(temperatures: list[float], digest: str = "0" * 64) -> dict[str, object]:
    evaluation = evaluate(PROFILE, readings(temperatures))
    return evaluation_snapshot(
        shipment_id=1,
        reference="S-1",
        evaluation=evaluation,
        quarantined=[],
        disposition=recommend_disposition(evaluation),
        readings_sha256=digest,
    )


def decision(seq: int, outcome: str = "quarantine", **changes: object) -> Decision:
    values: dict[str, object] = {
        "id": seq,
        "shipment_id": 1,
        "seq": seq,
        "outcome": outcome,
        "reason": None,
        "comment": None,
        "recommendation": "quarantine",
        "snapshot_sha256": "a" * 64,
        "snapshot": "{}",
        "record_sha256": "b" * 64,
        "requires_approval": False,
        "signatures": [],
        "created_at": T0,
        "evaluation_changed_at": None,
        "evaluation_changed_sha256": None,
    }
    values.update(changes)
    return msgspec.convert(values, Decision)


def test_the_latest_decision_is_in_effect_and_earlier_ones_are_superseded() -> None:
    first, second = decision(1), decision(2, "reject")

    assert decision_state(first, latest_seq=2) == "superseded"
    assert decision_state(second, latest_seq=2) == "in_effect"
    assert in_effect([first, second]) == second


def test_a_changed_evaluation_or_a_missing_approval_leaves_no_decision_in_effect() -> None:
    changed = decision(1, evaluation_changed_at=T0)
    waiting = decision(1, "release", requires_approval=True)
    approval = Signature(
        role="approval", user_id=2, name="B", email="b@x.org", meaning=MEANINGS["approval"], signed_at=T0,
        record_sha256="b" * 64,
    )  # fmt: skip
    approved = decision(1, "release", requires_approval=True, signatures=[approval])

    assert decision_state(changed, latest_seq=1) == "evaluation_changed" and in_effect([changed]) is None
    assert decision_state(waiting, latest_seq=1) == "awaiting_approval" and in_effect([waiting]) is None
    assert decision_state(approved, latest_seq=1) == "in_effect"


def test_only_a_release_after_an_excursion_needs_a_second_signature_and_only_where_the_organisation_asks() -> None:
    assert needs_approval("release", excursions=1, policy_requires=True)
    assert not needs_approval("release", excursions=0, policy_requires=True)
    assert not needs_approval("quarantine", excursions=3, policy_requires=True)
    assert not needs_approval("release", excursions=3, policy_requires=False)


def test_a_delivered_shipment_waits_for_its_excursion_and_a_clean_one_does_not() -> None:
    hot = evaluate(PROFILE, readings([5.0, 9.0, 9.0, 9.0, 9.0, 5.0]))
    clean = evaluate(PROFILE, readings([5.0] * 6))
    hot_rec = recommend_disposition(hot).recommendation

    assert waiting_reasons(status="delivered", evaluation=hot, quarantined=[], recommendation=hot_rec, latest=None) == [
        "undecided",
        "excursions",
        "quarantine_recommended",
    ]
    assert (
        waiting_reasons(status="in_transit", evaluation=hot, quarantined=[], recommendation=hot_rec, latest=None) == []
    )
    assert (
        waiting_reasons(status="delivered", evaluation=clean, quarantined=[], recommendation="release", latest=None)
        == []
    )
    decided = decision(1, "reject")
    assert (
        waiting_reasons(status="closed", evaluation=hot, quarantined=[], recommendation=hot_rec, latest=decided) == []
    )
    changed = decision(1, evaluation_changed_at=T0)
    assert waiting_reasons(status="closed", evaluation=hot, quarantined=[], recommendation=hot_rec, latest=changed) == [
        "evaluation_changed"
    ]


def item(
    shipment_id: int, recommendation: str, priority: str = "standard", *reasons: str, waited_h: int = 0
) -> WorkItem:
    return msgspec.convert(
        {
            "shipment_id": shipment_id,
            "reference": f"S-{shipment_id}",
            "status": "delivered",
            "priority": priority,
            "product_name": "Vaccine",
            "lot_number": None,
            "recommendation": recommendation,
            "excursions": 1,
            "alarms": 0,
            "reasons": list(reasons) or ["undecided"],
            "waiting_since": T0 - timedelta(hours=waited_h),
            "latest_decision": None,
        },
        WorkItem,
    )


def test_the_worklist_puts_returned_decisions_first_then_severity_urgency_and_waiting_time() -> None:
    items = [
        item(1, "release", waited_h=50),
        item(2, "quarantine", waited_h=1),
        item(3, "quarantine", "urgent", waited_h=0),
        item(4, "reject", waited_h=0),
        item(5, "release", "standard", "evaluation_changed"),
        item(6, "quarantine", waited_h=5),
    ]

    assert [i.shipment_id for i in sorted(items, key=work_order)] == [5, 4, 3, 6, 2, 1]


def test_a_signature_reads_as_name_date_time_with_utc_offset_and_meaning() -> None:
    signature = Signature(
        role="decision", user_id=1, name="Grace Hopper", email="grace@x.org", meaning=MEANINGS["reject"],
        signed_at=datetime(2026, 3, 1, 9, 5, 7, tzinfo=UTC), record_sha256="c" * 64,
    )  # fmt: skip

    assert signature_manifest(signature) == "Grace Hopper <grace@x.org>, 2026-03-01 09:05:07 UTC+00:00: rejected"


def test_the_snapshot_digest_is_the_sha256_of_its_rfc8785_bytes_which_any_json_reader_reproduces() -> None:
    snapshot = snapshot_of([5.0, 9.0, 9.0, 9.0, 9.0, 5.0])
    text = jcs_bytes(snapshot)

    reparsed = json.loads(text)
    assert hashlib.sha256(text).hexdigest() == jcs_sha256(reparsed) == jcs_sha256(snapshot)
    assert text == json.dumps(reparsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@given(
    st.lists(st.floats(min_value=-5, max_value=15, allow_nan=False).map(lambda t: round(t, 1)), min_size=2, max_size=30)
)
def test_equal_evaluations_give_equal_digests_and_a_changed_reading_a_different_one(temperatures: list[float]) -> None:
    same = jcs_sha256(snapshot_of(temperatures)) == jcs_sha256(snapshot_of(list(temperatures)))
    changed = [*temperatures[:-1], temperatures[-1] + 20.0]

    assert same
    assert jcs_sha256(snapshot_of(temperatures)) != jcs_sha256(snapshot_of(changed))


def test_the_record_binds_signer_time_outcome_and_snapshot() -> None:
    base = {
        "shipment_id": 1, "seq": 1, "outcome": "reject", "reason": None, "comment": None, "snapshot_sha256": "a" * 64,
        "user_id": 1, "name": "Grace Hopper", "email": "grace@x.org", "signed_at": T0,
    }  # fmt: skip
    digest = jcs_sha256(record_content(**base))  # type: ignore[arg-type]

    for field, other in [
        ("shipment_id", 2), ("seq", 2), ("outcome", "release"), ("reason", "r"), ("snapshot_sha256", "b" * 64),
        ("user_id", 2), ("name", "Ada"), ("signed_at", T0 + timedelta(seconds=1)),
    ]:  # fmt: skip
        assert jcs_sha256(record_content(**{**base, field: other})) != digest, field  # type: ignore[arg-type]


def test_the_readings_digest_is_sha256_of_the_readings_csv_bytes_header_included() -> None:
    reading = Reading(seq=7, device_time=T0, utc_offset_min=60, temperature_c=5.25)
    digest = ReadingsDigest()
    row = digest.add("TRK-1", reading, T0 + timedelta(seconds=30))

    csv = (
        "tracker,seq,device_time_utc,utc_offset_min,device_time_local,received_at_utc,temperature_c,humidity_pct,"
        "pressure_kpa,latitude,longitude,battery_pct\r\n"
        "TRK-1,7,2026-03-01T08:00:00.000000Z,60,2026-03-01T09:00:00.000000+01:00,2026-03-01T08:00:30.000000Z,"
        "5.25,,,,,\r\n"
    )
    assert csv.endswith(row)
    assert digest.hexdigest() == hashlib.sha256(csv.encode()).hexdigest()
    assert digest.count == 1
