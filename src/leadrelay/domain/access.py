"""Who may see and do what: the four roles and the rules on deals and leads.

- **admin**: everything, including users and the playbook.
- **marketing**: leads, nurture, hand-backs and the numbers; reads lead pages, moves no deal.
- **sales manager**: the deals of their teams (and the queue of unassigned deals), which they move
  and reassign; the numbers.
- **sales rep**: their own deals, which they move; leads of those deals.

A user's teams are the playbook's: the teams that list them as a rep or as manager, plus the one
team an admin may set on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from leadrelay.domain.routing import Routing


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING = "marketing"
    SALES_MANAGER = "sales_manager"
    SALES_REP = "sales_rep"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def in_sales(self) -> bool:
        return self in (Role.SALES_MANAGER, Role.SALES_REP)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str
    role: Role
    team: str | None = None  # an extra team set by an admin (e.g. a manager's team)
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def teams_of(user: User, routing: Routing) -> frozenset[str]:
    """The teams a user works in: those listing them as rep or manager, and their own team."""
    found = {team.id for team in routing.teams.values()
             if team.manager == user.email or any(rep.email == user.email for rep in team.reps)}
    if user.team:
        found.add(user.team)
    return frozenset(found)


def may_see_deal(user: User, deal_team: str, deal_owner: str | None, routing: Routing) -> bool:
    """Reps see their own deals; managers their teams' and the unassigned queue; marketing and
    admins every deal (marketing to read the hand-off, not to move it)."""
    if user.role in (Role.ADMIN, Role.MARKETING):
        return True
    if user.role is Role.SALES_REP:
        return deal_owner == user.email
    return deal_team == routing.fallback or deal_team in teams_of(user, routing) or deal_owner == user.email


def may_move_deal(user: User, deal_team: str, deal_owner: str | None, routing: Routing) -> bool:
    """Sales moves deals it may see; admins any; marketing none."""
    if user.role is Role.MARKETING:
        return False
    return may_see_deal(user, deal_team, deal_owner, routing)


def may_see_lead(user: User, deals: Iterable[tuple[str, str | None]], routing: Routing) -> bool:
    """A lead's page: marketing and admins see every lead; sales people the leads of deals they
    may see (`deals`: each of the lead's deals as (team, owner))."""
    if user.role in (Role.ADMIN, Role.MARKETING):
        return True
    return any(may_see_deal(user, team, owner, routing) for team, owner in deals)


def may_reassign(user: User) -> bool:
    return user.role in (Role.ADMIN, Role.SALES_MANAGER)


# the pages each role opens, in the order of the navigation bar
PAGES: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: ("board", "marketing", "dashboard", "playbook", "users", "audit"),
    Role.MARKETING: ("marketing", "dashboard", "playbook"),
    Role.SALES_MANAGER: ("board", "dashboard", "playbook"),
    Role.SALES_REP: ("board", "playbook"),
}


def may_open(user: User, page: str) -> bool:
    return page in PAGES[user.role]
