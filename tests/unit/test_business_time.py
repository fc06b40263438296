"""Business time: commitments count only a team's open hours, in its time zone, skipping holidays."""

from __future__ import annotations

import time as stopwatch
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.domain.business_time import WALL_CLOCK, BusinessHours, Calendar

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
AUCKLAND = ZoneInfo("Pacific/Auckland")
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)
OFFICE = BusinessHours(BERLIN)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)


# --- due dates ---------------------------------------------------------------------------------


def test_a_lead_handed_off_friday_evening_with_4_business_hours_is_due_monday_1pm():
    due = OFFICE.add(local(BERLIN, 2026, 3, 6, 18), hours(4))

    assert due == local(BERLIN, 2026, 3, 9, 13)


def test_due_dates_are_given_in_utc_whatever_zone_the_start_is_in():
    due = OFFICE.add(local(NEW_YORK, 2026, 3, 6, 12), hours(4))

    assert due.tzinfo is UTC
    assert due == datetime(2026, 3, 9, 12, tzinfo=UTC)


def test_a_weekend_and_the_public_holidays_around_it_are_skipped():
    easter = BusinessHours(BERLIN, closed_dates=frozenset({date(2026, 4, 3), date(2026, 4, 6)}))

    due = easter.add(local(BERLIN, 2026, 4, 2, 16), hours(4))

    assert due == local(BERLIN, 2026, 4, 7, 12)
    assert easter.between(local(BERLIN, 2026, 4, 2, 9), local(BERLIN, 2026, 4, 7, 17)) == hours(16)


def test_a_company_holiday_on_a_working_day_is_closed_all_day():
    offsite = BusinessHours(BERLIN, closed_dates=frozenset({date(2026, 3, 10)}))

    assert not offsite.is_open(local(BERLIN, 2026, 3, 10, 11))
    assert offsite.add(local(BERLIN, 2026, 3, 9, 16), hours(2)) == local(BERLIN, 2026, 3, 11, 10)


def test_counting_starts_at_once_inside_opening_hours():
    assert OFFICE.add(local(BERLIN, 2026, 3, 10, 10, 15), hours(2)) == local(BERLIN, 2026, 3, 10, 12, 15)


def test_counting_starts_at_the_opening_when_started_before_it():
    assert OFFICE.add(local(BERLIN, 2026, 3, 10, 7), hours(2)) == local(BERLIN, 2026, 3, 10, 11)


def test_counting_starts_the_next_morning_when_started_after_closing():
    assert OFFICE.add(local(BERLIN, 2026, 3, 10, 18), hours(2)) == local(BERLIN, 2026, 3, 11, 11)


def test_counting_starts_on_the_next_working_day_when_started_on_a_closed_day():
    assert OFFICE.add(local(BERLIN, 2026, 3, 7, 10), hours(2)) == local(BERLIN, 2026, 3, 9, 11)


def test_time_that_runs_out_at_closing_is_due_at_closing_not_at_the_next_opening():
    due = OFFICE.add(local(BERLIN, 2026, 3, 9, 9), hours(8))

    assert due == local(BERLIN, 2026, 3, 9, 17)
    assert not OFFICE.is_open(due)
    assert OFFICE.is_open(due - MICROSECOND)


def test_zero_business_time_is_due_at_once_when_open_and_at_the_next_opening_when_closed():
    assert OFFICE.add(local(BERLIN, 2026, 3, 9, 11), timedelta(0)) == local(BERLIN, 2026, 3, 9, 11)
    assert OFFICE.add(local(BERLIN, 2026, 3, 9, 17), timedelta(0)) == local(BERLIN, 2026, 3, 10, 9)


def test_the_team_is_open_from_the_opening_moment_and_closed_from_the_closing_moment():
    assert OFFICE.is_open(local(BERLIN, 2026, 3, 9, 9))
    assert not OFFICE.is_open(local(BERLIN, 2026, 3, 9, 9) - MICROSECOND)
    assert not OFFICE.is_open(local(BERLIN, 2026, 3, 9, 17))
    assert OFFICE.next_open(local(BERLIN, 2026, 3, 9, 12)) == local(BERLIN, 2026, 3, 9, 12)
    assert OFFICE.next_open(local(BERLIN, 2026, 3, 13, 17)) == local(BERLIN, 2026, 3, 16, 9)


def test_open_time_between_two_moments_counts_only_opening_hours():
    assert OFFICE.between(local(BERLIN, 2026, 3, 6, 16), local(BERLIN, 2026, 3, 9, 10)) == hours(2)
    assert OFFICE.between(local(BERLIN, 2026, 3, 7, 8), local(BERLIN, 2026, 3, 8, 20)) == timedelta(0)
    assert OFFICE.between(local(BERLIN, 2026, 3, 9, 12), local(BERLIN, 2026, 3, 9, 11)) == timedelta(0)


def test_ten_thousand_business_hours_are_counted_day_by_day_not_minute_by_minute():
    started = stopwatch.perf_counter()
    due = OFFICE.add(local(BERLIN, 2026, 1, 5, 9), hours(10_000))
    elapsed = stopwatch.perf_counter() - started

    assert due == local(BERLIN, 2030, 10, 18, 17)  # 1,250 working days of 8 hours
    assert OFFICE.between(local(BERLIN, 2026, 1, 5, 9), due) == hours(10_000)
    assert elapsed < 1.0


# --- daylight-saving changes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "friday"),
    [
        (BERLIN, date(2026, 3, 27)),  # clocks go forward on Sunday 29 March
        (BERLIN, date(2026, 10, 23)),  # clocks go back on Sunday 25 October
        (NEW_YORK, date(2026, 3, 6)),  # clocks go forward on Sunday 8 March
        (NEW_YORK, date(2026, 10, 30)),  # clocks go back on Sunday 1 November
    ],
)
def test_business_hours_over_a_daylight_saving_weekend_are_local_hours_not_an_hour_off(zone, friday):
    hours_there = BusinessHours(zone)
    friday_1pm = datetime.combine(friday, time(13), tzinfo=zone)
    monday = friday + timedelta(days=3)

    assert hours_there.add(friday_1pm, hours(8)) == datetime.combine(monday, time(13), tzinfo=zone)
    assert hours_there.between(
        datetime.combine(friday, time(9), tzinfo=zone), datetime.combine(monday, time(17), tzinfo=zone)
    ) == hours(16)
    assert hours_there.between(friday_1pm, friday_1pm + timedelta(days=3)) == hours(8)


def test_a_working_day_on_which_the_clocks_change_still_has_8_open_hours():
    every_day = BusinessHours(BERLIN, days=frozenset(range(7)))

    for sunday in (date(2026, 3, 29), date(2026, 10, 25)):
        start = datetime.combine(sunday, time(0), tzinfo=BERLIN)
        assert every_day.between(start, start + timedelta(days=1)) == hours(8)


def test_an_opening_time_the_clocks_skip_opens_when_the_clocks_jump():
    night_shift = BusinessHours(BERLIN, days=frozenset({6}), opens=time(2, 30), closes=time(4))

    opening = night_shift.next_open(local(BERLIN, 2026, 3, 28, 12))

    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 summer time, the first moment after 02:30
    assert night_shift.between(local(BERLIN, 2026, 3, 29, 0), local(BERLIN, 2026, 3, 29, 6)) == hours(1)


def test_an_opening_at_midnight_the_clocks_skip_opens_at_one():
    havana = ZoneInfo("America/Havana")  # midnight becomes 01:00 on Sunday 8 March 2026
    early = BusinessHours(havana, days=frozenset({6}), opens=time(0), closes=time(8))

    assert early.next_open(datetime(2026, 3, 7, 12, tzinfo=UTC)) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert early.between(datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)) == hours(7)


def test_a_time_that_occurs_twice_when_the_clocks_go_back_means_its_first_occurrence():
    night_shift = BusinessHours(BERLIN, days=frozenset({6}), opens=time(2, 30), closes=time(4))
    late_night = BusinessHours(BERLIN, days=frozenset({6}), opens=time(1), closes=time(2, 30))
    sunday = (local(BERLIN, 2026, 10, 25, 0), local(BERLIN, 2026, 10, 25, 6))

    assert night_shift.next_open(sunday[0]) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time
    assert night_shift.between(*sunday) == hours(2.5)
    assert late_night.between(*sunday) == hours(1.5)
    assert late_night.is_open(local(BERLIN, 2026, 10, 25, 2, 15, fold=0))
    assert not late_night.is_open(local(BERLIN, 2026, 10, 25, 2, 15, fold=1))


def test_a_date_the_time_zone_skips_has_no_open_time():
    apia = ZoneInfo("Pacific/Apia")  # Samoa went from 29 to 31 December 2011
    every_day = BusinessHours(apia, days=frozenset(range(7)))

    assert every_day.between(local(apia, 2011, 12, 29, 17), local(apia, 2011, 12, 31, 9)) == timedelta(0)
    assert every_day.next_open(local(apia, 2011, 12, 29, 17)) == local(apia, 2011, 12, 31, 9)


# --- time zones on both sides of UTC -----------------------------------------------------------


def test_a_team_in_tokyo_counts_its_own_monday_for_a_lead_arriving_in_the_utc_evening():
    due = BusinessHours(TOKYO).add(datetime(2026, 3, 6, 23, 0, tzinfo=UTC), hours(4))  # Saturday 08:00 there

    assert due == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)  # Monday 13:00 there


def test_a_team_in_los_angeles_counts_its_friday_afternoon_for_a_lead_arriving_on_utc_saturday():
    team = BusinessHours(LOS_ANGELES)
    arrival = datetime(2026, 1, 10, 0, 0, tzinfo=UTC)  # Friday 16:00 there

    assert team.is_open(arrival)
    assert team.add(arrival, hours(4)) == datetime(2026, 1, 12, 20, 0, tzinfo=UTC)  # Monday 12:00 there


def test_a_team_in_auckland_can_be_due_on_what_is_still_sunday_in_utc():
    due = BusinessHours(AUCKLAND).add(datetime(2026, 1, 8, 22, 0, tzinfo=UTC), hours(8))  # Friday 11:00 there

    assert due == datetime(2026, 1, 11, 22, 0, tzinfo=UTC)  # Monday 11:00 there
    assert due.astimezone(AUCKLAND) == local(AUCKLAND, 2026, 1, 12, 11)


# --- wall clock --------------------------------------------------------------------------------


def test_wall_clock_commitments_count_every_real_hour_also_across_a_clock_change():
    saturday_noon = local(BERLIN, 2026, 3, 28, 12)

    assert WALL_CLOCK.add(saturday_noon, hours(24)) == local(BERLIN, 2026, 3, 29, 13)
    assert WALL_CLOCK.between(saturday_noon, local(BERLIN, 2026, 3, 29, 12)) == hours(23)
    assert WALL_CLOCK.between(local(BERLIN, 2026, 3, 29, 12), saturday_noon) == timedelta(0)
    assert WALL_CLOCK.is_open(saturday_noon)
    assert WALL_CLOCK.next_open(saturday_noon) == saturday_noon
    assert WALL_CLOCK.add(saturday_noon, hours(1)).tzinfo is UTC


def test_business_hours_and_the_wall_clock_are_used_alike():
    def due(calendar: Calendar, start: datetime) -> datetime:
        return calendar.add(start, hours(4))

    friday_evening = local(BERLIN, 2026, 3, 6, 18)

    assert due(WALL_CLOCK, friday_evening) == local(BERLIN, 2026, 3, 6, 22)
    assert due(OFFICE, friday_evening) == local(BERLIN, 2026, 3, 9, 13)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("calendar", [OFFICE, WALL_CLOCK])
def test_naive_datetimes_are_refused(calendar):
    naive = datetime(2026, 3, 9, 10)
    aware = local(BERLIN, 2026, 3, 9, 10)

    with pytest.raises(ValueError, match="naive"):
        calendar.add(naive, HOUR)
    with pytest.raises(ValueError, match="naive"):
        calendar.between(naive, aware)
    with pytest.raises(ValueError, match="naive"):
        calendar.between(aware, naive)
    with pytest.raises(ValueError, match="naive"):
        calendar.is_open(naive)
    with pytest.raises(ValueError, match="naive"):
        calendar.next_open(naive)


@pytest.mark.parametrize("calendar", [OFFICE, WALL_CLOCK])
def test_a_negative_duration_is_refused(calendar):
    with pytest.raises(ValueError, match="negative"):
        calendar.add(local(BERLIN, 2026, 3, 9, 10), -HOUR)


def test_business_hours_without_working_days_are_refused():
    with pytest.raises(ValueError, match="at least one working day"):
        BusinessHours(BERLIN, days=frozenset())


def test_working_days_outside_monday_to_sunday_are_refused():
    with pytest.raises(ValueError, match="0 \\(Monday\\) to 6 \\(Sunday\\)"):
        BusinessHours(BERLIN, days=frozenset({0, 7}))


@pytest.mark.parametrize(("opens", "closes"), [(time(17), time(9)), (time(9), time(9)), (time(22), time(6))])
def test_opening_hours_that_do_not_close_later_the_same_day_are_refused(opens, closes):
    with pytest.raises(ValueError, match="later than opening time"):
        BusinessHours(BERLIN, opens=opens, closes=closes)


def test_a_zone_that_is_not_a_tzinfo_is_refused():
    with pytest.raises(TypeError, match="tzinfo"):
        BusinessHours("Europe/Berlin")  # type: ignore[arg-type]


def test_closed_dates_covering_more_than_ten_years_of_working_days_are_refused_instead_of_looping():
    first = date(2026, 1, 1)
    closed = BusinessHours(BERLIN, closed_dates=frozenset(first + timedelta(days=n) for n in range(3700)))
    start = local(BERLIN, 2026, 1, 1, 9)

    with pytest.raises(ValueError, match="ten years"):
        closed.add(start, HOUR)
    with pytest.raises(ValueError, match="ten years"):
        closed.next_open(start)
    reopened = datetime.combine(first + timedelta(days=3700), time(), tzinfo=BERLIN)
    assert closed.between(start, local(BERLIN, 2040, 1, 1)) == OFFICE.between(reopened, local(BERLIN, 2040, 1, 1))
    assert not closed.is_open(local(BERLIN, 2030, 3, 5, 10))


# --- properties --------------------------------------------------------------------------------

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES = [
    "Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Auckland",
    "Australia/Lord_Howe", "Asia/Kolkata", "America/Havana", "UTC",
]
CLOCK_CHANGES = [  # the days clocks change in these zones in 2026
    date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 9, 27), date(2026, 10, 4),
    date(2026, 10, 25), date(2026, 11, 1),
]
WALL_TIMES = st.one_of(
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    st.sampled_from([time(0), time(1, 30), time(2), time(2, 15), time(2, 30), time(3), time.max]),
)


@st.composite
def calendars(draw) -> BusinessHours:
    opens, closes = sorted(draw(st.lists(WALL_TIMES, min_size=2, max_size=2, unique=True)))
    closed = draw(st.frozensets(st.integers(0, 60), max_size=25))
    return BusinessHours(
        zone=ZoneInfo(draw(st.sampled_from(ZONES))),
        days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        opens=opens,
        closes=closes,
        closed_dates=frozenset(date(2026, 2, 20) + timedelta(days=n) for n in closed),
    )


MOMENTS = st.one_of(
    st.builds(
        lambda day, seconds, micro: datetime.combine(day, time(), tzinfo=UTC) + timedelta(0, seconds, micro),
        st.sampled_from(CLOCK_CHANGES),
        st.integers(-7 * 86400, 2 * 86400),
        st.integers(0, 999_999),
    ),
    st.datetimes(datetime(2026, 2, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
)
DURATIONS = st.one_of(
    st.integers(0, 200).map(hours),
    st.integers(0, 200 * 3600 * 10**6).map(lambda micro: timedelta(microseconds=micro)),
)


def wall_moment(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """The rule, computed the plain way: a time that occurs twice is its first occurrence; a time the
    clocks skip is the first whole minute at which the wall clock is past it."""
    wanted = datetime.combine(day, wall)
    moment = datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) == wanted:
        return moment
    moment = datetime.combine(day, wall, tzinfo=zone).replace(fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while moment.astimezone(zone).replace(tzinfo=None) < wanted:
        moment += timedelta(minutes=1)
    return moment


def open_time_day_by_day(hours_: BusinessHours, start: datetime, end: datetime) -> timedelta:
    """Open time between two moments: each local day's overlap with its opening hours, summed."""
    total = timedelta(0)
    day = start.astimezone(hours_.zone).date() - timedelta(days=2)
    while day <= end.astimezone(hours_.zone).date() + timedelta(days=2):
        if day.weekday() in hours_.days and day not in hours_.closed_dates:
            opened = wall_moment(hours_.zone, day, hours_.opens)
            closed = wall_moment(hours_.zone, day, hours_.closes)
            total += max(min(closed, end) - max(opened, start), timedelta(0))
        day += timedelta(days=1)
    return total


@BOUNDED
@given(calendar=calendars(), start=MOMENTS, duration=DURATIONS)
def test_the_open_time_until_a_due_date_is_exactly_the_business_time_given(calendar, start, duration):
    due = calendar.add(start, duration)

    assert due >= start
    assert due.tzinfo is UTC
    assert calendar.between(start, due) == duration


@BOUNDED
@given(calendar=calendars(), start=MOMENTS, duration=DURATIONS)
def test_a_due_date_never_falls_in_closed_time_it_is_open_or_exactly_a_closing_moment(calendar, start, duration):
    due = calendar.add(start, duration)

    if duration:
        assert calendar.is_open(due - MICROSECOND)
    else:
        assert due == calendar.next_open(start)
        assert calendar.is_open(due)


@BOUNDED
@given(calendar=calendars(), start=MOMENTS, other=MOMENTS)
def test_open_time_between_two_moments_is_the_sum_of_each_days_opening_hours_in_between(calendar, start, other):
    counted = calendar.between(start, other)

    assert counted <= max(other - start, timedelta(0))
    assert counted == open_time_day_by_day(calendar, start, other)


@BOUNDED
@given(calendar=calendars(), start=MOMENTS, durations=st.lists(DURATIONS, min_size=2, max_size=2))
def test_more_business_time_is_never_due_earlier(calendar, start, durations):
    shorter, longer = sorted(durations)

    assert calendar.add(start, shorter) <= calendar.add(start, longer)


@BOUNDED
@given(calendar=calendars(), moment=MOMENTS)
def test_the_team_is_open_exactly_when_the_next_microsecond_counts(calendar, moment):
    opening = calendar.next_open(moment)

    assert calendar.is_open(moment) == (calendar.between(moment, moment + MICROSECOND) == MICROSECOND)
    assert calendar.is_open(moment) == (opening == moment)
    assert opening >= moment
    assert calendar.is_open(opening)
    assert calendar.between(moment, opening) == timedelta(0)


@BOUNDED
@given(calendar=calendars(), start=MOMENTS, duration=DURATIONS, zone=st.sampled_from(ZONES))
def test_the_zone_a_start_is_given_in_does_not_change_the_due_date(calendar, start, duration, zone):
    assert calendar.add(start.astimezone(ZoneInfo(zone)), duration) == calendar.add(start, duration)
