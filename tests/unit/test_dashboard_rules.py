"""The staff dashboard's pure rules: periods, the change in percent, the chart's bars."""

from datetime import date
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commissions.dashboard import (
    Granularity,
    Period,
    bucket_of,
    buckets,
    granularity,
    last_days,
    percent_change,
)
from commissions.dashboard_views import change_text


def test_last_days_include_today():
    assert last_days(30, today=date(2026, 11, 24)) == Period(date(2026, 10, 26), date(2026, 11, 24))
    assert last_days(1, today=date(2026, 11, 24)).days == 1


@pytest.mark.parametrize(
    ("period", "previous"),
    [
        (
            Period(date(2026, 10, 26), date(2026, 11, 24)),
            Period(date(2026, 9, 26), date(2026, 10, 25)),
        ),
        (Period(date(2026, 3, 1), date(2026, 3, 1)), Period(date(2026, 2, 28), date(2026, 2, 28))),
        (Period(date(2024, 3, 1), date(2024, 3, 31)), Period(date(2024, 1, 30), date(2024, 2, 29))),
    ],
    ids=["30-days", "one-day", "over-leap-day"],
)
def test_the_period_before_has_the_same_length_and_ends_the_day_before(period, previous):
    assert period.previous() == previous


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)),
    days=st.integers(min_value=1, max_value=2000),
)
def test_the_period_before_always_touches_and_matches(start, days):
    period = Period(start, date.fromordinal(start.toordinal() + days - 1))
    before = period.previous()
    assert before.days == period.days
    assert before.end.toordinal() + 1 == period.start.toordinal()


@pytest.mark.parametrize(
    ("now", "before", "change"),
    [
        (Decimal("110.00"), Decimal("100.00"), 10),
        (Decimal("90.00"), Decimal("100.00"), -10),
        (5, 0, None),
        (0, 0, None),
        (Decimal("100.50"), Decimal("100.00"), 1),  # 0.5 % rounds half up
        (Decimal("99.50"), Decimal("100.00"), -1),  # -0.5 % rounds away from 0 too
        (0, 7, -100),
        (Decimal("-5"), Decimal("-10"), 50),  # from a negative figure: by its size
    ],
)
def test_percent_change(now, before, change):
    assert percent_change(now, before) == change


@pytest.mark.parametrize(
    ("change", "now", "text"),
    [(12, 1, "+12 %"), (-5, 1, "\u22125 %"), (0, 1, "no change"), (None, 3, "new"),
     (None, 0, "no change")],
)  # fmt: skip
def test_change_text(change, now, text):
    assert change_text(change, now=now) == text


@pytest.mark.parametrize(
    ("days", "size"),
    [(1, "day"), (31, "day"), (32, "week"), (182, "week"), (183, "month"), (365, "month")],
)
def test_granularity_follows_the_length(days, size):
    start = date(2026, 1, 1)
    assert granularity(Period(start, date.fromordinal(start.toordinal() + days - 1))) == size


def test_buckets_per_day_week_and_month():
    assert buckets(Period(date(2026, 11, 1), date(2026, 11, 3))) == [
        date(2026, 11, 1),
        date(2026, 11, 2),
        date(2026, 11, 3),
    ]
    # 2026-11-04 is a Wednesday: its week starts on Monday 2026-11-02.
    weeks = buckets(Period(date(2026, 11, 4), date(2026, 12, 31)))
    assert weeks[0] == date(2026, 11, 2) and weeks[-1] == date(2026, 12, 28)
    assert all((b - a).days == 7 for a, b in pairwise(weeks))
    months = buckets(Period(date(2025, 11, 15), date(2026, 11, 14)))
    assert months[0] == date(2025, 11, 1) and months[-1] == date(2026, 11, 1)
    assert len(months) == 13


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)),
    days=st.integers(min_value=1, max_value=800),
    offset=st.integers(min_value=0, max_value=799),
)
def test_every_day_of_the_period_falls_in_one_of_its_bars(start, days, offset):
    period = Period(start, date.fromordinal(start.toordinal() + days - 1))
    day = date.fromordinal(start.toordinal() + offset % days)
    size = granularity(period)
    assert bucket_of(day, size) in buckets(period)
    if size == Granularity.DAY:
        assert len(buckets(period)) == days
