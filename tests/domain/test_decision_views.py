"""The decisions of a shipment as the investigation shows them: oldest first, each with its state and, when
superseded, the decision that superseded it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coldchain.domain.decisions import Decision, Outcome
from coldchain.domain.investigation import decision_views

SIGNED = datetime(2026, 11, 27, 7, 40, tzinfo=UTC)


def decision(seq: int, outcome: Outcome = "release", *, changed: bool = False) -> Decision:
    return Decision(
        id=100 + seq,
        shipment_id=1,
        seq=seq,
        outcome=outcome,
        reason=None if seq == 1 else "changed",
        comment=None,
        recommendation="quarantine",
        snapshot_sha256="a" * 64,
        snapshot="{}",
        record_sha256="b" * 64,
        requires_approval=False,
        signatures=[],
        created_at=SIGNED + timedelta(hours=seq),
        evaluation_changed_at=SIGNED + timedelta(days=1) if changed else None,
        evaluation_changed_sha256="c" * 64 if changed else None,
    )


def test_each_superseded_decision_names_the_next_one_and_the_latest_stands_in_its_own_state() -> None:
    views = decision_views([decision(3, "reject", changed=True), decision(1), decision(2, "quarantine")])

    assert [(view.decision.seq, view.state, view.superseded_by) for view in views] == [
        (1, "superseded", 2),
        (2, "superseded", 3),
        (3, "evaluation_changed", None),
    ]


def test_no_decision_gives_no_view() -> None:
    assert decision_views([]) == []
