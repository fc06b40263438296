"""Business time: how much of a commitment's clock has run, counted in a team's opening hours.

A commitment such as "accept or reject within 4 business hours" runs only while the team is
open: on its working days, between its opening and closing times, in its own time zone, and
never on a public or company holiday. `BusinessHours` answers the three questions an SLA asks
(when is it due, how much open time lay between two moments, is the team open now);
`WALL_CLOCK` answers them for commitments that count every hour, nights and weekends included.

Opening and closing times are local wall-clock times, so 09:00-17:00 is eight hours of open
time on every working day, also on the days the clocks change. When a local opening or
closing time does not occur or occurs twice that day (a daylight-saving change), it means the
first moment the wall clock shows that time or a later one:

- a time that occurs twice (clocks go back) is its first occurrence (zoneinfo's fold=0);
- a time the clocks skip (clocks go forward) is the moment the clocks jump, when the wall
  clock first shows a later time. A team that opens at 02:30 on a night when 02:00 becomes
  03:00 is open from 03:00, not from 03:30; a local date the zone skips entirely is closed.

Every moment taken must be timezone-aware (naive ones are refused with ValueError) and may be
in any zone; every moment returned is in UTC. Durations are exact to the microsecond.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

from leadrelay.domain.clock import UTC

ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)
MICROSECOND = timedelta(microseconds=1)
LONGEST_CLOSURE = timedelta(days=3653 + 7)  # ten years of closed days, and the week around them
ALL_DAYS = frozenset(range(7))
MONDAY_TO_FRIDAY = frozenset({0, 1, 2, 3, 4})


class Calendar(Protocol):
    """What an SLA needs of a calendar: business hours and the wall clock are used alike."""

    def is_open(self, moment: datetime) -> bool: ...

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...

    def next_open(self, moment: datetime) -> datetime: ...


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; a naive datetime names no moment and is refused."""
    if not isinstance(moment, datetime):
        raise TypeError(f"a datetime is needed, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give a timezone-aware datetime")
    return moment.astimezone(UTC)


def _duration(duration: timedelta) -> timedelta:
    if not isinstance(duration, timedelta):
        raise TypeError(f"a timedelta is needed, not {type(duration).__name__}")
    if duration < ZERO:
        raise ValueError(f"a duration cannot be negative: {duration}")
    return duration


@dataclass(frozen=True, slots=True)
class WallClock:
    """Commitments that count every hour: always open, `add` is start + duration."""

    def is_open(self, moment: datetime) -> bool:
        as_utc(moment)
        return True

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return as_utc(start) + _duration(duration)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Elapsed real time (0 if end <= start), also across daylight-saving changes."""
        return max(as_utc(end) - as_utc(start), ZERO)

    def next_open(self, moment: datetime) -> datetime:
        return as_utc(moment)


WALL_CLOCK = WallClock()


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A team's opening hours: working days (Monday=0 ... Sunday=6) from `opens` to `closes`
    local time in `zone`, except on `closed_dates` (public and company holidays, local dates).

    Opening hours never run past midnight (`closes` must be later than `opens`); a day open
    until midnight closes at `time.max`.
    """

    zone: tzinfo
    days: frozenset[int] = MONDAY_TO_FRIDAY
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    closed_dates: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.zone, tzinfo):
            raise TypeError(f"zone must be a tzinfo such as ZoneInfo('Europe/Berlin'), not {self.zone!r}")
        days = frozenset(self.days)
        if not days:
            raise ValueError("business hours need at least one working day")
        if not days <= ALL_DAYS:
            raise ValueError(f"working days are 0 (Monday) to 6 (Sunday), not {sorted(days - ALL_DAYS)}")
        for name, value in (("opens", self.opens), ("closes", self.closes)):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name} must be a local time without a time zone, not {value!r}")
        if self.closes <= self.opens:
            raise ValueError(
                f"closing time {self.closes.isoformat()} must be later than opening time {self.opens.isoformat()}"
                " (opening hours past midnight are not supported)"
            )
        closed = frozenset(self.closed_dates)
        if any(not isinstance(day, date) or isinstance(day, datetime) for day in closed):
            raise ValueError("closed dates must be dates (local days), not datetimes")
        object.__setattr__(self, "days", days)
        object.__setattr__(self, "closed_dates", closed)

    def is_open(self, moment: datetime) -> bool:
        """Whether the team is open at `moment` (open from the opening moment, closed from the closing moment)."""
        moment = as_utc(moment)
        today = moment.astimezone(self.zone).date()
        for day in (today - ONE_DAY, today, today + ONE_DAY):
            interval = self._interval_on(day)
            if interval is not None and interval[0] <= moment < interval[1]:
                return True
        return False

    def next_open(self, moment: datetime) -> datetime:
        """`moment` if the team is open then, else the next moment it opens."""
        moment = as_utc(moment)
        start, _ = next(self._intervals(moment))
        return start

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment when `duration` of open time has passed since `start`.

        Counting begins at `start`, or at the next opening if the team is closed then. A duration
        of zero gives that moment (`next_open(start)`). A positive duration that runs out exactly
        at a closing moment ends there (a day's last hour is due at closing time, not at the next
        opening): the team is always open just before the result.
        """
        remaining = _duration(duration)
        moment = as_utc(start)
        for opened, closed in self._intervals(moment):
            available = closed - opened
            if remaining <= available:
                return opened + remaining
            remaining -= available
        raise AssertionError("unreachable: the opening intervals never end")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The open time between two moments (0 if end <= start): closed time is never counted."""
        start, end = as_utc(start), as_utc(end)
        if end <= start:
            return ZERO
        total = ZERO
        for opened, closed in self._intervals(start, until=end):
            total += min(closed, end) - opened
        return total

    def _intervals(self, moment: datetime, until: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
        """The opening intervals (UTC) that end after `moment`, in order, the first one cut to begin no
        earlier than `moment`; up to the interval that begins before `until`, or for ever.

        Walks local days one by one. With no `until`, a closure longer than ten years is refused
        (closed dates that cover every working day would otherwise be walked without end).
        """
        closed_since = moment.astimezone(self.zone).date()
        day = closed_since - ONE_DAY
        last_day = None if until is None else until.astimezone(self.zone).date() + ONE_DAY
        previous_end = moment
        while last_day is None or day <= last_day:
            interval = self._interval_on(day)
            if interval is not None:
                opened, closed = max(interval[0], previous_end), interval[1]
                if until is not None and opened >= until:
                    return
                if closed > opened:
                    yield opened, closed
                    previous_end, closed_since = closed, day
            if last_day is None and day - closed_since > LONGEST_CLOSURE:
                raise ValueError(
                    f"no opening hours in the ten years after {closed_since.isoformat()}: "
                    "the closed dates cover every working day"
                )
            if day == date.max:
                raise ValueError("no opening hours before the end of the calendar (year 9999)")
            day += ONE_DAY

    def _interval_on(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening hours as UTC moments, or None on a day the team is closed."""
        if day.weekday() not in self.days or day in self.closed_dates:
            return None
        opened, closed = self._moment(day, self.opens), self._moment(day, self.closes)
        return (opened, closed) if closed > opened else None

    def _moment(self, day: date, wall_time: time) -> datetime:
        """The first moment the local wall clock shows `wall_time` on `day`, or a later time that day
        (the time itself, its first occurrence when it occurs twice, the end of the gap when skipped)."""
        local = datetime.combine(day, wall_time, tzinfo=self.zone)
        before, after = local.utcoffset(), local.replace(fold=1).utcoffset()
        if before is None or after is None:
            raise ValueError(f"zone {self.zone!r} gives no UTC offset for {local.replace(tzinfo=None).isoformat()}")
        if before >= after:
            return local.astimezone(UTC)
        return self._end_of_gap(local.replace(tzinfo=None), before, after)

    def _end_of_gap(self, wall: datetime, before: timedelta, after: timedelta) -> datetime:
        """The moment the clocks jumped over the skipped wall time `wall` (before/after: the UTC
        offsets on either side): the first moment whose wall-clock reading is later than `wall`."""
        earliest = (wall - after).replace(tzinfo=UTC)
        low, high = 0, (after - before) // MICROSECOND
        while high - low > 1:
            middle = (low + high) // 2
            reading = (earliest + middle * MICROSECOND).astimezone(self.zone).replace(tzinfo=None)
            if reading >= wall:
                high = middle
            else:
                low = middle
        return earliest + high * MICROSECOND
