"""Report periods: whole days in the playbook's time zone, turned into UTC instants for queries.

A period runs from the start of its first day to the end of its last day, local time: in
Europe/Berlin, 2026-03-01 to 2026-03-31 is [2026-02-28 23:00 UTC, 2026-03-31 22:00 UTC). Daylight
saving changes inside it are counted right (the zone database says when each local midnight was).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import InvalidInput

DEFAULT_DAYS = 30
EARLIEST, LATEST = date(1970, 1, 1), date(2199, 12, 31)
MAX_DAYS = 3660  # ten years: beyond that a period is a typing mistake


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone: unknown time zone {name!r}", "invalid_timezone") from None


@dataclass(frozen=True, slots=True)
class Bucket:
    """A part of a period (a month), with its bounds as UTC instants."""

    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # the first day, included
    last: date  # the last day, included
    timezone: str

    @classmethod
    def of(cls, first: date | None, last: date | None, timezone: str, *, today: date | None = None) -> Period:
        """The days from `first` to `last`, both included. Without `last` the period ends today (in
        `timezone`); without `first` it is 30 days long. `first` after `last` is refused."""
        zone = zone_of(timezone)
        if last is None:
            last = today or datetime.now(zone).date()
        if first is None:
            first = last - timedelta(days=DEFAULT_DAYS - 1)
        for name, day in (("from", first), ("to", last)):
            if not EARLIEST <= day <= LATEST:
                raise InvalidInput(f"{name}: {day.isoformat()} is not between {EARLIEST} and {LATEST}", "invalid_period")
        if first > last:
            raise InvalidInput(f"from: {first.isoformat()} is after to ({last.isoformat()})", "invalid_period")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInput(f"from: the period is longer than {MAX_DAYS} days", "invalid_period")
        return cls(first, last, timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        """The first instant of the period (UTC)."""
        return local_midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC): the period is [start, end)."""
        return local_midnight(self.last + timedelta(days=1), self.zone)

    def previous(self) -> Period:
        """The period of the same number of days just before this one."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.timezone)

    def months(self) -> list[Bucket]:
        """The calendar months the period touches, each cut to the period."""
        buckets = []
        day = self.first
        while day <= self.last:
            following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            end = min(following - timedelta(days=1), self.last)
            buckets.append(Bucket(f"{day:%Y-%m}", local_midnight(day, self.zone),
                                  local_midnight(end + timedelta(days=1), self.zone)))
            day = following
        return buckets

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"

    def as_dict(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "timezone": self.timezone,
                "start": self.start.isoformat(), "end": self.end.isoformat()}
