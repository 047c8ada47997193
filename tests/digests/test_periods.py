"""Calendar periods in the company's timezone: boundaries at local midnight, DST-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from mailroom.digests import periods

PARIS = "Europe/Paris"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_yesterday_in_paris_starts_and_ends_at_local_midnight():
    # 23:30 UTC on 9 March is already 10 March in Paris (UTC+1)
    period = periods.last_complete("daily", at(2026, 3, 9, 23, 30), PARIS)
    assert period.first_day == date(2026, 3, 9)
    assert period.start == at(2026, 3, 8, 23) and period.end == at(2026, 3, 9, 23)


def test_the_spring_forward_day_lasts_23_hours_and_its_week_167():
    day = periods.containing("daily", at(2026, 3, 29, 12), PARIS)
    assert day.end - day.start == timedelta(hours=23)
    week = periods.containing("weekly", at(2026, 3, 29, 12), PARIS)
    assert week.first_day == date(2026, 3, 23)  # a Monday
    assert week.end - week.start == timedelta(hours=167)
    assert week.end == at(2026, 3, 29, 22)  # Monday 30 March 00:00 CEST


def test_the_fall_back_week_lasts_169_hours():
    week = periods.containing("weekly", at(2026, 10, 25, 12), PARIS)
    assert week.end - week.start == timedelta(hours=169)


@pytest.mark.parametrize("periodicity,first,previous_first", [
    ("weekly", date(2026, 11, 30), date(2026, 11, 23)),
    ("monthly", date(2026, 12, 1), date(2026, 11, 1)),
    ("quarterly", date(2026, 10, 1), date(2026, 7, 1)),
])
def test_periods_and_their_previous(periodicity, first, previous_first):
    period = periods.containing(periodicity, at(2026, 12, 5, 12), PARIS)
    assert period.first_day == first
    assert period.previous().first_day == previous_first
    assert period.previous().end == period.start


def test_history_is_twelve_contiguous_periods_ending_with_this_one():
    period = periods.containing("monthly", at(2026, 2, 10), PARIS)
    history = period.history(12)
    assert len(history) == 12 and history[-1] == period
    assert history[0].first_day == date(2025, 3, 1)
    assert all(a.end == b.start for a, b in zip(history, history[1:], strict=False))


def test_a_quarter_across_the_year_end():
    period = periods.containing("quarterly", at(2027, 1, 15), PARIS)
    assert period.previous().first_day == date(2026, 10, 1)
    assert period.previous().last_day == date(2026, 12, 31)


def test_next_run_is_send_time_on_the_first_day_of_the_next_period():
    # Saturday 5 Dec 2026: the weekly digest goes out on Monday 7 Dec at 08:00 Paris
    assert periods.next_run("weekly", time(8), PARIS, at(2026, 12, 5, 12)) == at(2026, 12, 7, 7)
    assert periods.next_run("monthly", time(8), PARIS, at(2026, 12, 5)) == at(2027, 1, 1, 7)
    assert periods.next_run("daily", time(8), PARIS, at(2026, 12, 5, 6)) == at(2026, 12, 5, 7)
    assert periods.next_run("daily", time(8), PARIS, at(2026, 12, 5, 7)) == at(2026, 12, 6, 7)
    assert periods.next_run("quarterly", time(8), PARIS, at(2026, 12, 5)) == at(2027, 1, 1, 7)


def test_next_run_follows_the_local_clock_across_dst():
    # 08:00 Paris is 07:00 UTC in winter and 06:00 UTC in summer
    assert periods.next_run("daily", time(8), PARIS, at(2026, 3, 28, 12)) == at(2026, 3, 29, 6)
    # a send time that does not exist on the spring-forward night still sends that day
    run = periods.next_run("daily", time(2, 30), PARIS, at(2026, 3, 28, 12))
    assert run.astimezone(periods._zone(PARIS)).date() == date(2026, 3, 29)
