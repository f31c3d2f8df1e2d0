"""The span of device times a batch touched, which decides the signed decisions to re-check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from coldchain.services.decisions import touched_span

moments = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 (zones drawn below)
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-14), max_value=timedelta(hours=14))),
    ),
    # At the edges of the years a datetime can hold: some have no UTC form.
    st.builds(
        lambda moment, hours: moment.replace(tzinfo=timezone(timedelta(hours=hours))),
        st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23)]),  # noqa: DTZ001 (zone set just above)
        st.integers(min_value=-14, max_value=14),
    ),
)


def _in_utc(moment: datetime) -> datetime | None:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


@given(times=st.lists(moments, max_size=8))
def test_the_span_is_the_first_and_last_instant_of_the_times_that_have_a_utc_form(times: list[datetime]) -> None:
    usable = [utc for utc in map(_in_utc, times) if utc is not None]

    span = touched_span(times)

    assert span == ((min(usable), max(usable)) if usable else None)
    if span is not None:
        assert span[0].tzinfo is UTC and span[1].tzinfo is UTC
