"""Public holidays from the `holidays` package, turned into the closed dates of business hours.

The package knows each country's (and subdivision's) public holidays and their observed days
(a US holiday on a Saturday is also observed on the Friday before); what it gives is taken as is.
Holidays are known per year: a calendar built for some years treats other years' holidays as
ordinary days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from leadrelay.domain.business_time import MONDAY_TO_FRIDAY, BusinessHours


def public_holidays(
    countries: Iterable[str], years: Iterable[int], subdivisions: Mapping[str, str] | None = None
) -> frozenset[date]:
    """The public holidays of every country in `countries` (ISO 3166 codes such as DE) in `years`;
    `subdivisions` adds a country's regional holidays (e.g. {"DE": "BY"} for Bavaria's)."""
    codes = [_country(code) for code in countries]
    wanted_years = sorted({int(year) for year in years})
    regions = {_country(code): region for code, region in (subdivisions or {}).items()}
    if stray := sorted(regions.keys() - set(codes)):
        raise ValueError(f"subdivisions given for countries not asked for: {', '.join(stray)}")
    dates: set[date] = set()
    for code in codes:
        region = regions.get(code)
        try:
            found = holidays.country_holidays(code, subdiv=region, years=wanted_years)
        except NotImplementedError:
            known = ", ".join(holidays.list_supported_countries(include_aliases=True)[code]) or "none"
            raise ValueError(f"unknown subdivision {region!r} of {code} for public holidays (known: {known})") from None
        dates.update(found.keys())
    return frozenset(dates)


def calendar(
    zone: str,
    *,
    years: Iterable[int],
    days: Iterable[int] = MONDAY_TO_FRIDAY,
    opens: time = time(9, 0),
    closes: time = time(17, 0),
    countries: Iterable[str] = (),
    subdivisions: Mapping[str, str] | None = None,
    extra_dates: Iterable[date] = (),
) -> BusinessHours:
    """A team's business hours in the IANA time zone `zone` (e.g. "Europe/Berlin"), closed on the public
    holidays of `countries` in `years` and on `extra_dates` (company holidays)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r} (IANA names such as Europe/Berlin)") from None
    closed = public_holidays(countries, years, subdivisions) | frozenset(extra_dates)
    return BusinessHours(zone=tz, days=frozenset(days), opens=opens, closes=closes, closed_dates=closed)


def _country(code: str) -> str:
    key = code.strip().upper() if isinstance(code, str) else code
    if key not in holidays.list_supported_countries(include_aliases=True):
        raise ValueError(f"unknown country {code!r} for public holidays (ISO 3166 codes such as DE, US, GB)")
    return key
