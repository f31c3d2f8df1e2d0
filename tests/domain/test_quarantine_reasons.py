"""Every sensor of a reading is checked before it is accepted: a missing one does not end the check."""

from __future__ import annotations

import math
from datetime import timedelta

from coldchain.domain.readings import Reading
from coldchain.domain.sync import quarantine_reason
from tests.domain.engine_support import at


def test_a_missing_temperature_does_not_hide_a_humidity_that_is_not_a_number() -> None:
    reading = Reading(seq=1, device_time=at(0), temperature_c=None, humidity_pct=math.nan)

    assert quarantine_reason(reading, now=at(0), max_future=timedelta(hours=1)) == "humidity_pct is nan"
