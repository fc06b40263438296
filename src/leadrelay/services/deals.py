"""Use cases on deals: the board, a deal with its hand-off package, the moves sales makes
(accept, hand back, disqualify, win, lose, move, reassign), reps away, follow-up tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from leadrelay.adapters.deals import DealFilter, Task
from leadrelay.domain import deals as domain
from leadrelay.domain import sla
from leadrelay.domain.clock import utc_now
from leadrelay.domain.deals import Deal
from leadrelay.domain.errors import DealNotFound, InvalidInput, TaskNotFound
from leadrelay.domain.model import Lead, StageChange, Touch
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.scoring import engagement_at
from leadrelay.reports.sla import hand_back_reasons
from leadrelay.services import audit
from leadrelay.services.handoff import after_moves
from leadrelay.services.unit_of_work import UnitOfWork


@dataclass
class BoardCard:
    deal: Deal
    account: dict[str, Any]
    clock: dict[str, Any] | None = None  # the running SLA clock coming due first


def find_deals(uow: UnitOfWork, filters: DealFilter, *, before: int | None, limit: int) -> list[BoardCard]:
    with uow:
        return [BoardCard(deal, account) for deal, account in uow.deals.page(filters, before=before, limit=limit)]


def board(uow: UnitOfWork, playbook: Playbook, filters: DealFilter, *, per_column: int,
          now: datetime | None = None) -> dict[str, list[BoardCard]]:
    """The board: a column per sales stage, newest deals first, at most `per_column` each. Open
    stages show open deals; won and lost columns show the deals closed there. Each card has its
    nearest SLA clock. With `filters.score_min`, only leads whose total score (decayed to `now`)
    is at least that."""
    columns: dict[str, list[BoardCard]] = {}
    with uow:
        for stage in playbook.sales_stages:
            if filters.stage is not None and filters.stage != stage:
                continue
            wanted = replace(filters, stage=stage, open=playbook.stages[stage].outcome is None)
            cards = [BoardCard(deal, account) for deal, account in uow.deals.page(wanted, before=None, limit=per_column)]
            if filters.score_min is not None:
                at = now or utc_now()
                cards = [card for card in cards if total_score(card.deal.lead, playbook, at) >= filters.score_min]
            columns[stage] = cards
        clocks = uow.deals.nearest_clocks([card.deal.id for cards in columns.values() for card in cards
                                           if card.deal.is_open])  # type: ignore[misc]
    for cards in columns.values():
        for card in cards:
            card.clock = clocks.get(card.deal.id)  # type: ignore[arg-type]
    return columns


def total_score(lead: Lead, playbook: Playbook, at: datetime) -> float:
    """Fit and engagement, the engagement decayed to `at`."""
    return lead.fit + engagement_at(lead.engagement, playbook.scoring, max(at, lead.engagement.as_of or at))


@dataclass
class DealView:
    deal: Deal
    activity: list[dict[str, Any]]
    clocks: list[dict[str, Any]]


def view_deal(uow: UnitOfWork, deal_id: int) -> DealView:
    with uow:
        deal = _get(uow, deal_id, lock=False)
        return DealView(deal, uow.deals.activity(deal_id), uow.deals.clocks_of(deal_id=deal_id))


Action = Callable[[Deal, datetime], StageChange | None]


def act(uow: UnitOfWork, playbook: Playbook, deal_id: int, action: str, *, by: str, now: datetime,
        to: str | None = None, reason: str | None = None, note: str | None = None, value: float | None = None,
        owner: str | None = None) -> DealView:
    """Do one of the moves sales makes on a deal, as the playbook allows, recorded with who did it:
    accept, reject (hand back), disqualify, win, lose, move (to a stage), reassign (to an owner)."""
    moves: dict[str, Action] = {
        "accept": lambda deal, at: domain.accept(deal, playbook, at=at, by=by, note=note),
        "reject": lambda deal, at: domain.hand_back(deal, reason, playbook, at=at, by=by, note=note),
        "disqualify": lambda deal, at: domain.disqualify(deal, reason, playbook, at=at, by=by, note=note),
        "win": lambda deal, at: domain.win(deal, value, playbook, at=at, by=by, note=note),
        "lose": lambda deal, at: domain.lose(deal, reason, playbook, at=at, by=by, note=note),
        "move": lambda deal, at: domain.move_deal(deal, _required(to, "to"), playbook, at=at, by=by,
                                                  reason=reason, note=note),
        "reassign": lambda deal, at: _reassign(deal, playbook, _required(owner, "owner"), at=at, by=by, note=note),
    }
    with uow:
        deal = _get(uow, deal_id, lock=True)
        before = (deal.stage, deal.owner, deal.team)
        moves[action](deal, now)
        after_moves(uow, playbook, [deal.lead], now, deals={deal.lead.id: deal},  # type: ignore[dict-item]
                    reassigned=[deal] if action == "reassign" else ())
        if deal.dirty or deal.log:  # a reassignment: no lead move for after_moves to write it with
            uow.deals.save([deal], now)
            uow.deals.add_activity([deal])
        uow.leads.save([deal.lead], now)
        uow.leads.add_stage_changes(deal.lead.history)
        audit.record(uow, actor=by, action=f"deal.{action}", subject=f"deal:{deal_id}", now=now, detail={
            "lead_id": deal.lead.id, "from_stage": before[0], "to_stage": deal.stage, "from_owner": before[1],
            "to_owner": deal.owner, "from_team": before[2], "to_team": deal.team, "reason": reason, "value": value,
        })
        uow.commit()
        return DealView(deal, uow.deals.activity(deal_id), uow.deals.clocks_of(deal_id=deal_id))


def _reassign(deal: Deal, playbook: Playbook, owner: str, *, at: datetime, by: str, note: str | None) -> None:
    """The deal stays in its team when the new owner is in it, else goes to the owner's team."""
    owner = owner.strip().lower()
    current = playbook.routing.teams.get(deal.team)
    if current is None or all(rep.email != owner for rep in current.reps):
        team = playbook.routing.team_of(owner)
        domain.reassign(deal, owner, at=at, by=by, team=team.id if team else None, note=note)
    else:
        domain.reassign(deal, owner, at=at, by=by, note=note)


def log_touch(uow: UnitOfWork, playbook: Playbook, deal_id: int, touch: Touch, now: datetime) -> dict[str, Any]:
    """Log a call, email, meeting, note or email reply on a deal; the touch as stored. It meets
    the deal's first-touch clock, and its attempts clock once there are enough."""
    with uow:
        deal = _get(uow, deal_id, lock=True)
        domain.check_touch(deal, touch, now)
        stored = uow.deals.add_touch(deal, touch, now)
        if playbook.sla.commitments:
            running = uow.deals.running_clocks({deal_id: deal})[deal_id]
            sla.on_touch(running, touch, uow.deals.attempts(deal_id), playbook.sla)
            uow.deals.save_clocks(running)
        uow.commit()
    return stored


def touches(uow: UnitOfWork, deal_id: int, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    with uow:
        _get(uow, deal_id, lock=False)
        return uow.deals.touches(deal_id, before=before, limit=limit)


def _required(value: str | None, name: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(f"{name}: required for this action", "missing_field")
    return value


def _get(uow: UnitOfWork, deal_id: int, *, lock: bool) -> Deal:
    deal = uow.deals.get(deal_id, lock=lock)
    if deal is None:
        raise DealNotFound(f"no deal with id {deal_id}")
    return deal


def hand_back_report(uow: UnitOfWork, since: datetime | None, until: datetime | None) -> dict[str, int]:
    """Marketing's feedback: how many leads sales handed back, by reason."""
    with uow:
        return hand_back_reasons(uow.connection, since, until)


# --- reps and tasks ------------------------------------------------------------------------


@dataclass
class RepStatus:
    email: str
    name: str
    teams: list[str]
    away_until: datetime | None
    inactive: bool
    note: str | None
    open_deals: int
    available: bool


def reps(uow: UnitOfWork, playbook: Playbook, now: datetime) -> list[RepStatus]:
    """Every rep of the playbook's teams, with whether they get new leads now."""
    routing = playbook.routing
    people: dict[str, RepStatus] = {}
    with uow:
        stored = uow.deals.reps()
        away = uow.deals.away(now)
        for team in routing.teams.values():
            for rep in team.reps:
                if rep.email not in people:
                    row = stored.get(rep.email, {})
                    people[rep.email] = RepStatus(rep.email, rep.name, [], row.get("away_until"),
                                                  bool(row.get("inactive")), row.get("note"), 0, rep.email not in away)
                people[rep.email].teams.append(team.id)
        load = uow.deals.workload(people, now)
    for email, status in people.items():
        status.open_deals = load[email].open_deals
    return list(people.values())


def set_away(uow: UnitOfWork, playbook: Playbook, email: str, *, until: datetime | None, inactive: bool,
             note: str | None, now: datetime) -> None:
    """Mark a rep out of office until a moment (or inactive): routing skips them meanwhile."""
    email = email.strip().lower()
    if playbook.routing.team_of(email) is None:
        known = sorted({rep.email for team in playbook.routing.teams.values() for rep in team.reps})
        raise InvalidInput(f"{email!r} is not a rep of any team in the playbook (reps: {', '.join(known)})",
                           "unknown_rep")
    with uow:
        uow.deals.set_rep(email, away_until=until, inactive=inactive, note=note, now=now)
        uow.commit()


def tasks(uow: UnitOfWork, *, owner: str | None, lead_id: int | None, open_only: bool, before: int | None,
          limit: int) -> list[Task]:
    with uow:
        return uow.deals.tasks(owner=owner, lead_id=lead_id, open_only=open_only, before=before, limit=limit)


def complete_task(uow: UnitOfWork, task_id: int, now: datetime) -> None:
    with uow:
        if not uow.deals.complete_task(task_id, now):
            raise TaskNotFound(f"no task with id {task_id}")
        uow.commit()
