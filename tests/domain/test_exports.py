"""The exports' row formats: one exact text per value, whatever produced the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.audit import GENESIS_HASH, AuditEntry, entry_hash
from coldchain.domain.exports import (
    AUDIT_HEADER,
    QUARANTINED_HEADER,
    audit_line,
    audit_row,
    decimal_text,
    quarantined_row,
    reading_row,
)
from coldchain.domain.readings import Reading

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_numbers_are_the_shortest_decimal_that_reads_back_never_an_exponent() -> None:
    assert decimal_text(5.0) == "5.0"
    assert decimal_text(-0.0) == "0.0"
    assert decimal_text(0.1 + 0.2) == "0.30000000000000004"
    assert decimal_text(1e-05) == "0.00001"
    assert decimal_text(2.5e16) == "25000000000000000.0"
    assert decimal_text(-12.345678) == "-12.345678"
    assert decimal_text(None) == ""


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_reads_back_exactly_from_its_text(value: float) -> None:
    text = decimal_text(value)
    assert float(text) == value
    assert "e" not in text.lower()


def test_a_reading_row_carries_the_utc_time_the_offset_the_local_time_and_empty_for_missing() -> None:
    reading = Reading(seq=3, device_time=T0, utc_offset_min=-330, latitude=52.1, longitude=-0.5, battery_pct=80)
    row = reading_row("TRK,1", reading, T0 + timedelta(minutes=5))
    assert row == (
        '"TRK,1",3,2026-03-01T08:00:00.000000Z,-330,2026-03-01T02:30:00.000000-05:30,2026-03-01T08:05:00.000000Z,'
        ",,,52.1,-0.5,80.0\r\n"
    )


def test_a_quarantined_row_ends_with_its_reason_quoted_when_it_needs_to_be() -> None:
    reading = Reading(seq=4, device_time=T0, temperature_c=-99.5)
    row = quarantined_row("TRK-1", reading, T0, 'sensor fault, "stuck"')
    assert row.endswith(',"sensor fault, ""stuck"""\r\n')
    assert QUARANTINED_HEADER.endswith(",reason\r\n")


def test_an_audit_line_holds_what_its_hash_covers() -> None:
    fields = {"id": 1, "at": T0, "actor": "operator", "action": "x", "subject": "shipment:1", "detail": "{}"}
    digest = entry_hash(**fields, prev_hash=GENESIS_HASH)  # type: ignore[arg-type]
    entry = AuditEntry(**fields, prev_hash=GENESIS_HASH, hash=digest)  # type: ignore[arg-type]
    line = audit_line(entry)
    assert line.endswith("}\n") and '"at":"2026-03-01T08:00:00.000000+00:00"' in line
    assert audit_row(entry).startswith("1,2026-03-01T08:00:00.000000Z,operator,x,shipment:1,{},")
    assert AUDIT_HEADER.startswith("id,")
