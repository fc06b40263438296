"""Public holidays close a team's business hours: as the `holidays` package knows them, per country and region."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadrelay.adapters.public_holidays import calendar, public_holidays

BERLIN = ZoneInfo("Europe/Berlin")


def test_german_public_holidays_include_christmas_and_german_unity_day():
    german = public_holidays(["DE"], [2026])

    assert date(2026, 12, 25) in german
    assert date(2026, 10, 3) in german
    assert date(2026, 12, 24) not in german


def test_a_regional_holiday_counts_only_for_the_region_asked_for():
    assert date(2026, 1, 6) not in public_holidays(["DE"], [2026])
    assert date(2026, 1, 6) in public_holidays(["DE"], [2026], {"DE": "BY"})


def test_us_holidays_include_independence_day_and_the_friday_it_is_observed_on():
    american = public_holidays(["US"], [2026])

    assert date(2026, 7, 4) in american  # a Saturday in 2026
    assert date(2026, 7, 3) in american  # observed on the Friday before


def test_holidays_of_several_countries_and_years_are_combined():
    both = public_holidays(["de", "US"], range(2026, 2028))

    assert {date(2026, 10, 3), date(2027, 10, 3), date(2026, 7, 4), date(2027, 7, 4)} <= both
    assert public_holidays(["DE"], []) == frozenset()


def test_an_unknown_country_is_refused_with_a_message_naming_it():
    with pytest.raises(ValueError) as refused:
        public_holidays(["XX"], [2026])

    assert str(refused.value) == "unknown country 'XX' for public holidays (ISO 3166 codes such as DE, US, GB)"


def test_an_unknown_region_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown subdivision 'ZZ' of DE .*BY"):
        public_holidays(["DE"], [2026], {"DE": "ZZ"})


def test_a_region_of_a_country_not_asked_for_is_refused():
    with pytest.raises(ValueError, match="countries not asked for: DE"):
        public_holidays(["US"], [2026], {"DE": "BY"})


def test_a_calendar_with_german_holidays_skips_christmas():
    team = calendar("Europe/Berlin", years=[2026, 2027], countries=["DE"])
    christmas_eve_afternoon = datetime(2026, 12, 24, 15, tzinfo=BERLIN)

    assert not team.is_open(datetime(2026, 12, 25, 10, tzinfo=BERLIN))
    assert team.add(christmas_eve_afternoon, timedelta(hours=4)) == datetime(2026, 12, 28, 11, tzinfo=BERLIN)


def test_a_calendar_takes_company_holidays_regions_and_its_own_hours():
    team = calendar(
        "America/New_York",
        years=[2026],
        days={0, 1, 2, 3},
        opens=time(8),
        closes=time(16),
        countries=["US"],
        subdivisions={"US": "CA"},
        extra_dates=[date(2026, 3, 10)],
    )

    assert team.zone == ZoneInfo("America/New_York")
    assert team.days == frozenset({0, 1, 2, 3})
    assert date(2026, 3, 10) in team.closed_dates
    assert date(2026, 7, 3) in team.closed_dates
    assert team.next_open(datetime(2026, 3, 9, 16, tzinfo=ZoneInfo("America/New_York"))) == datetime(
        2026, 3, 11, 8, tzinfo=ZoneInfo("America/New_York")
    )


def test_a_calendar_in_an_unknown_time_zone_is_refused():
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Atlantis'"):
        calendar("Europe/Atlantis", years=[2026])
