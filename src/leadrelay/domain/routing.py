"""Lead routing: who gets a lead when it is handed to sales.

Rules are tried in order and the first that matches decides: the account's owner for named
accounts, or a rep of a team chosen by stride scheduling (round robin, weighted or by room),
or the fallback queue when nobody can take the lead. The service keeps the seats between
hand-offs and counts each rep's workload from the deals; everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from leadrelay.domain.playbook import Condition

Method = Literal["round_robin", "weighted", "capacity"]

_METHOD_WORDS: Mapping[str, str] = {"round_robin": "round robin", "weighted": "weighted", "capacity": "most room"}


@dataclass(frozen=True, slots=True)
class Rep:
    email: str
    name: str = ""
    weight: float = 1.0  # used by "weighted" only
    max_open_deals: int | None = None  # overrides the team's limit
    max_new_deals: int | None = None  # overrides the team's limit (per Routing.period)

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not math.isfinite(self.weight) or self.weight <= 0:
            raise ValueError(f"rep {self.email}: weight must be a positive number, got {self.weight!r}")


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    reps: tuple[Rep, ...]
    method: Method = "round_robin"
    max_open_deals: int | None = None  # a rep at this many open deals gets no more
    max_new_deals: int | None = None  # a rep given this many deals in the current period gets no more
    manager: str | None = None  # the manager's email (notified by automations)

    def limits(self, rep: Rep) -> tuple[int | None, int | None]:
        """A rep's (open, new) limits: its own where set, else the team's."""
        return (
            self.max_open_deals if rep.max_open_deals is None else rep.max_open_deals,
            self.max_new_deals if rep.max_new_deals is None else rep.max_new_deals,
        )


@dataclass(frozen=True, slots=True)
class RoutingRule:
    name: str
    when: Condition | None = None  # None: always matches
    team: str | None = None  # the team it picks
    account_owner: bool = False  # named/target accounts: the account's owner gets the lead


@dataclass(frozen=True, slots=True)
class Routing:
    rules: tuple[RoutingRule, ...] = ()
    teams: Mapping[str, Team] = field(default_factory=dict)
    fallback: str = "unassigned"  # the queue where leads wait when no rule matches or nobody can take them
    period: Literal["day", "week"] = "day"  # the period of max_new_deals

    def name_of(self, email: str) -> str:
        """A rep's name as the playbook gives it (else their email)."""
        for team in self.teams.values():
            for rep in team.reps:
                if rep.email == email and rep.name:
                    return rep.name
        return email

    def team_of(self, email: str) -> Team | None:
        """The first team listing this rep."""
        for team in self.teams.values():
            if any(rep.email == email for rep in team.reps):
                return team
        return None


@dataclass(slots=True)
class Seat:
    """A rep's place in one team's rotation (kept in the store between hand-offs)."""

    team: str
    email: str
    last_turn: float | None = None  # the turn at which the rep was last given a lead (None: never)
    assigned: int = 0  # leads given in this team, ever: never reset
    last_assigned_at: datetime | None = None
    dirty: bool = False  # changed since loaded: the service saves it


@dataclass(slots=True)
class Workload:
    """What a rep holds now, counted by the service from the deals (per rep email, across teams)."""

    open_deals: int = 0
    new_deals: int = 0  # deals given to the rep since the current period began


@dataclass(frozen=True, slots=True)
class Assignment:
    team: str  # the team, or the fallback queue's name
    owner: str | None  # None: the deal waits in the queue `team`
    rule: str | None  # the routing rule that matched; None when none did
    reason: str  # plain words for people: why this owner / this queue


def route(
    context: Mapping[str, Any],
    routing: Routing,
    seats: dict[tuple[str, str], Seat],
    workload: dict[str, Workload],
    *,
    away: Collection[str] = (),
    account_owner: str | None = None,
    now: datetime,
) -> Assignment:
    """Who gets this lead: the first matching rule decides; when nobody can take it, it waits in the fallback queue.

    `seats` and `workload` are updated in place for the rep chosen, so a batch of hand-offs stays fair.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    for rule in routing.rules:
        if rule.account_owner:
            if account_owner is None or account_owner in away or not _holds(rule, context):
                continue
            return _give_to_owner(rule, account_owner, routing, seats, workload, now)
        if not _holds(rule, context):
            continue
        if rule.team is None:
            return Assignment(routing.fallback, None, rule.name, f"rule '{rule.name}' → queue '{routing.fallback}'")
        team = routing.teams.get(rule.team)
        if team is None:
            return Assignment(routing.fallback, None, rule.name,
                              f"rule '{rule.name}' names team '{rule.team}', which does not exist")
        picked = _pick(team, seats, workload, away)
        if picked is None:
            why = f"every rep of team '{team.id}' is away or at capacity"
            if not team.reps:
                why = f"team '{team.id}' has no reps"
            return Assignment(routing.fallback, None, rule.name, f"rule '{rule.name}': {why}")
        rep, turn = picked
        seat = _seat(seats, team.id, rep.email)
        seat.last_turn = turn
        _record(seat, workload, now)
        return Assignment(team.id, rep.email, rule.name,
                          f"rule '{rule.name}' → team '{team.id}', {_METHOD_WORDS[team.method]}")
    return Assignment(routing.fallback, None, None, "no routing rule matched")


def _pick(team: Team, seats: Mapping[tuple[str, str], Seat], workload: Mapping[str, Workload],
          away: Collection[str]) -> tuple[Rep, float] | None:
    """The rep whose turn it is and that turn; None when every rep is away or at a limit."""
    now_turn = _virtual_time(team.id, seats)
    loads = {rep.email: workload.get(rep.email) or Workload() for rep in team.reps if rep.email not in away}
    eligible = [rep for rep in team.reps if rep.email in loads and _has_room(team, rep, loads[rep.email])]
    by_ratio = all(team.limits(rep)[0] is not None for rep in eligible)
    best: tuple[Any, ...] | None = None
    chosen: tuple[Rep, float] | None = None
    for rep in eligible:
        seat = seats.get((team.id, rep.email))
        turn = _next_turn(seat, _stride(team, rep), now_turn)
        key: tuple[Any, ...] = (turn, _when_key(seat), rep.email)
        if team.method == "capacity":
            open_deals, limit = loads[rep.email].open_deals, team.limits(rep)[0]
            key = (Fraction(open_deals, limit) if by_ratio and limit else open_deals, *key)
        if best is None or key < best:
            best, chosen = key, (rep, turn)
    return chosen


def _stride(team: Team, rep: Rep) -> float:
    """How far a rep's turn moves each time it is given a lead: heavier reps come round sooner."""
    return 1.0 / rep.weight if team.method == "weighted" else 1.0


def _virtual_time(team: str, seats: Mapping[tuple[str, str], Seat]) -> float:
    """The team's virtual time: the latest turn anyone of the team was given a lead at (0 before the first)."""
    turns = [seat.last_turn for (team_id, _), seat in seats.items() if team_id == team and seat.last_turn is not None]
    return max(turns, default=0.0)


def _next_turn(seat: Seat | None, stride: float, now_turn: float) -> float:
    """One stride after the rep's last turn, but never before the team's virtual time: no catch-up, no burst."""
    if seat is None or seat.last_turn is None:
        return now_turn
    return max(seat.last_turn + stride, now_turn)


def _holds(rule: RoutingRule, context: Mapping[str, Any]) -> bool:
    return rule.when is None or bool(rule.when(context))


def _has_room(team: Team, rep: Rep, load: Workload) -> bool:
    max_open, max_new = team.limits(rep)
    return (max_open is None or load.open_deals < max_open) and (max_new is None or load.new_deals < max_new)


def _when_key(seat: Seat | None) -> tuple[Any, ...]:
    """Never-assigned reps first, then the one assigned longest ago."""
    if seat is None or seat.last_assigned_at is None:
        return (0,)
    return (1, seat.last_assigned_at)


def _seat(seats: dict[tuple[str, str], Seat], team: str, email: str) -> Seat:
    seat = seats.get((team, email))
    if seat is None:
        seat = seats[(team, email)] = Seat(team, email)
    return seat


def _count_deal(workload: dict[str, Workload], email: str) -> None:
    load = workload.get(email)
    if load is None:
        load = workload[email] = Workload()
    load.open_deals += 1
    load.new_deals += 1


def _record(seat: Seat, workload: dict[str, Workload], now: datetime) -> None:
    seat.assigned += 1
    seat.last_assigned_at = now
    seat.dirty = True
    _count_deal(workload, seat.email)


def _give_to_owner(rule: RoutingRule, owner: str, routing: Routing, seats: dict[tuple[str, str], Seat],
                   workload: dict[str, Workload], now: datetime) -> Assignment:
    """Named accounts are their owner's, whatever the owner's workload; the owner's turn in the rotation is kept."""
    home = routing.team_of(owner)
    team = rule.team or (home.id if home else routing.fallback)
    listed = routing.teams.get(team)
    if listed is not None and any(rep.email == owner for rep in listed.reps):
        _record(_seat(seats, team, owner), workload, now)
    else:
        _count_deal(workload, owner)
    return Assignment(team, owner, rule.name, f"rule '{rule.name}' → the account's owner")
