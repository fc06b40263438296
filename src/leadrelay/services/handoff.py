"""What follows leads' moves, inside the transaction that made them: the hand-off (a deal card,
routed to an owner, with the hand-off package), deals following their leads, their SLA clocks
started, met and restarted, the playbook's automations (tasks, fields, emails, webhooks), and
webhook notifications — every side effect written to the outbox, delivered by the worker after
commit.

Every use case that moves leads (ingestion, imports, rescoring, moves by hand, deal actions)
calls `after_moves` once before it commits; the SLA sweep calls `after_clocks` for the clocks
that came to a warning or a breach.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from leadrelay.adapters.deals import NewTask
from leadrelay.adapters.outbox import NewItem
from leadrelay.domain import automations as auto
from leadrelay.domain import sla
from leadrelay.domain.deals import Deal, follow, is_hand_off, open_deal, package, reassign
from leadrelay.domain.lifecycle import RuleContext
from leadrelay.domain.model import Lead, StageChange
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.processing import update_fields
from leadrelay.domain.routing import route
from leadrelay.domain.scoring import engagement_at, engagement_breakdown
from leadrelay.domain.sla import Clock
from leadrelay.services.nurture import follow_moves as nurture_follows
from leadrelay.services.unit_of_work import UnitOfWork

Scores = dict[str, float]
TEMPLATE_NAMES = ("lead", "fit", "engagement", "total", "stage", "account", "deal", "scores")


def scores_of(lead: Lead, playbook: Playbook) -> Scores:
    engagement = engagement_at(lead.engagement, playbook.scoring, lead.engagement.as_of) if lead.engagement.as_of else 0.0
    return {"fit": lead.fit, "engagement": engagement, "total": lead.fit + engagement}


def needs_scores(playbook: Playbook) -> bool:
    """Whether callers must note scores before a change (for `score_crossed` automations)."""
    return any(automation.on == "score_crossed" for automation in playbook.automations)


def after_moves(
    uow: UnitOfWork,
    playbook: Playbook,
    leads: Iterable[Lead],
    now: datetime,
    *,
    deals: Mapping[int, Deal] | None = None,
    reassigned: Collection[Deal] = (),
    scores_before: Mapping[int, Scores] | None = None,
) -> list[Deal]:
    """Act on the unsaved stage history of `leads` (and on deals reassigned by hand), writing
    deals, their activity, routing state, tasks and outbox items. The leads themselves are
    saved by the caller, after this (hand-off sets their owner, automations their fields).
    `deals`: open deals the caller already loaded (and locked), by lead id. The deals opened."""
    moved = [lead for lead in leads if lead.history]
    watched = _watched_stages(playbook)
    relevant = [lead for lead in moved if any(_touches(change, watched, playbook) for change in lead.history)]
    if scores_before is not None and needs_scores(playbook):
        crossed = {id(lead) for lead in leads if id(lead) in scores_before}
    else:
        crossed = set()
    if not relevant and not reassigned and not crossed:
        nurture_follows(uow, playbook, leads, now)  # nurture sequences: enter and leave as leads move
        return []
    run = _Run(uow, playbook, now)
    run.open = dict(deals or {})
    missing = {lead.id: lead for lead in relevant if lead.id not in run.open and lead.id is not None}
    run.open.update(uow.deals.open_for(missing, lock=True))
    run.load_clocks([*run.open.values(), *reassigned])
    run.prepare_routing([lead for lead in relevant if lead.id not in run.open
                         and any(is_hand_off(c, playbook) for c in lead.history)])
    for lead in sorted(relevant, key=lambda lead: lead.history[0].at):
        for change in lead.history:
            run.follow(lead, change)
    for deal in reassigned:
        run.assigned(deal)
    for lead in leads:
        if id(lead) in crossed:
            run.happened(lead, auto.Happening("score_crossed", scores_before=scores_before[id(lead)],  # type: ignore[index]
                                              scores_after=scores_of(lead, playbook)), run.open.get(lead.id))  # type: ignore[arg-type]
    opened = run.write()
    nurture_follows(uow, playbook, leads, now, run.enrollments)
    return opened


def after_clocks(uow: UnitOfWork, playbook: Playbook, fired: list[tuple[Clock, str]], now: datetime, *,
                 running: Iterable[list[Clock]]) -> None:
    """Clocks that came to a warning or a breach ("warning" / "breach"): the playbook's automations
    fire, a webhook event goes out, and a breach escalates as its commitment says (the manager is
    told; the deal goes to the next rep by the routing rules, whose clocks then start again).
    `running`: every clock of the deals concerned that was running before (fired ones included)."""
    run = _Run(uow, playbook, now)
    for clocks in running:
        if clocks:
            run.clocks[id(clocks[0].deal)] = list(clocks)
    commitments = {c.name: c for c in playbook.sla.commitments}
    for clock, what in fired:
        deal = clock.deal
        run.open[deal.lead.id] = deal  # type: ignore[index]
        trigger = "sla_breach" if what == "breach" else "sla_warning"
        run.happened(deal.lead, auto.Happening(trigger, commitment=clock.commitment), deal)
        run.notify(f"deal.{trigger}", deal, clock=clock)
        commitment = commitments.get(clock.commitment)
        if what != "breach" or commitment is None:
            continue
        if commitment.notify_manager:
            run.email_manager(deal, clock)
        if commitment.reassign:
            run.escalate(deal, clock)
    run.write()
    if run.enrollments:
        nurture_follows(uow, playbook, [], now, run.enrollments)


def _watched_stages(playbook: Playbook) -> set[str] | None:
    """Stages whose entering or leaving matters (None: every stage, an automation listens to all)."""
    watched = set(playbook.sales_stages)
    for automation in playbook.automations:
        if automation.on in ("stage_entered", "stage_left"):
            if automation.stage is None:
                return None
            watched.add(automation.stage)
    return watched


def _touches(change: StageChange, watched: set[str] | None, playbook: Playbook) -> bool:
    return watched is None or change.to_stage in watched or (change.from_stage or "") in watched


class _Run:
    """One transaction's worth of following moves."""

    def __init__(self, uow: UnitOfWork, playbook: Playbook, now: datetime) -> None:
        self.uow, self.playbook, self.now = uow, playbook, now
        self.open: dict[int, Deal] = {}
        self.touched: dict[int, Deal] = {}  # by id(deal)
        self.opened: list[Deal] = []
        self.tasks: list[NewTask] = []
        self.items: list[NewItem] = []
        self.accounts: dict[int, dict[str, Any]] = {}
        self.events: dict[int, list[Any]] = {}
        self.seats: dict[tuple[str, str], Any] = {}
        self.workload: dict[str, Any] = {}
        self.away: set[str] = set()
        self.routing_loaded = False
        self.clocks: dict[int, list[Clock]] = {}  # each deal's clocks (by id(deal)), saved at the end
        self.enrollments: list[tuple[Lead, str, str]] = []  # (lead, sequence, automation) to enroll
        self.period_start = _period_start(now, playbook.routing.period, playbook.timezone)

    # --- clocks ----------------------------------------------------------------------------
    def load_clocks(self, deals: Iterable[Deal]) -> None:
        if self.playbook.sla.commitments:
            by_id = {deal.id: deal for deal in deals if deal.id is not None}
            for deal_id, found in self.uow.deals.running_clocks(by_id).items():  # type: ignore[arg-type]
                self.clocks[id(by_id[deal_id])] = found

    def _clocks_of(self, deal: Deal) -> list[Clock]:
        return self.clocks.setdefault(id(deal), [])

    def assigned(self, deal: Deal, breached: Clock | None = None) -> None:
        """A deal given to another owner (by hand, or by escalation of the `breached` clock)."""
        self._clocks_of(deal).extend(sla.on_reassign(self._clocks_of(deal), deal, self.now, self.playbook.sla,
                                                     breached=breached))
        self.happened(deal.lead, auto.Happening("deal_assigned"), deal)
        self.notify("deal.assigned", deal)

    def escalate(self, deal: Deal, clock: Clock) -> None:
        """Give a deal whose clock was breached to the next rep by the routing rules (not its owner)."""
        self._load_routing_state()
        account = self._account(deal.lead)
        assignment = route(self._context(deal.lead, account), self.playbook.routing, self.seats, self.workload,
                           away={*self.away, deal.owner or ""}, now=self.now)
        if assignment.owner is None or not deal.is_open:
            return
        reassign(deal, assignment.owner, at=self.now, by=f"sla:{clock.commitment}", team=assignment.team,
                 note=f"breached {clock.commitment!r}; {assignment.reason}")
        self.touched[id(deal)] = deal
        self.assigned(deal, clock)

    def email_manager(self, deal: Deal, clock: Clock) -> None:
        team = self.playbook.routing.teams.get(deal.team)
        if team is None or not team.manager:
            return
        lead = deal.lead
        who = lead.fields.get("name") or lead.email
        self.items.append(NewItem(uuid.uuid4().hex, "email", "sla.breach", {
            "to": [team.manager], "subject": f"SLA breached: {clock.commitment} — {who}",
            "text": (f"The commitment {clock.commitment!r} on the deal of {who} (owner: {deal.owner or 'nobody'}, "
                     f"stage {deal.stage}) was due at {clock.due_at:%Y-%m-%d %H:%M} UTC and was not met.\n"),
            "lead_id": lead.id, "deal_id": deal.id,
        }))

    # --- routing ---------------------------------------------------------------------------
    def prepare_routing(self, handing_off: list[Lead]) -> None:
        """Load, in a few queries, what routing and the hand-off package need for the leads
        about to be handed off (a lead handed off later in the batch is loaded on its own)."""
        if not handing_off:
            return
        self._load_routing_state()
        self.accounts.update(self.uow.deals.accounts_of({lead.account_id for lead in handing_off if lead.account_id}))
        self.events.update(self.uow.leads.events_of([lead.id for lead in handing_off]))  # type: ignore[misc]

    def _load_routing_state(self) -> None:
        if self.routing_loaded:
            return
        routing = self.playbook.routing
        self.seats = self.uow.deals.seats(list(routing.teams), lock=True)  # hand-offs take turns: no lost turn
        emails = {rep.email for team in routing.teams.values() for rep in team.reps}
        self.workload = self.uow.deals.workload(emails, self.period_start)
        self.away = self.uow.deals.away(self.now)
        self.routing_loaded = True

    def hand_off(self, change: StageChange) -> Deal:
        lead = change.lead
        self._load_routing_state()
        if lead.id not in self.events:
            self.events.update(self.uow.leads.events_of([lead.id]))  # type: ignore[list-item]
        account = self._account(lead)
        owner = (account or {}).get("owner")
        if owner and owner not in self.workload:
            self.workload.update(self.uow.deals.workload([owner], self.period_start))
        assignment = route(self._context(lead, account), self.playbook.routing, self.seats, self.workload,
                           away=self.away, account_owner=owner, now=change.at)
        scoring = self.playbook.scoring
        labels = {name: spec.label for name, spec in self.playbook.fields.items()}
        at = max(change.at, lead.engagement.as_of or change.at)  # never before points already counted
        deal = open_deal(change, assignment, package(
            lead, self.events.get(lead.id, []),  # type: ignore[arg-type]
            engagement=engagement_at(lead.engagement, scoring, at),
            engagement_breakdown=engagement_breakdown(lead.engagement, scoring, at), fields=labels,
        ))
        self.opened.append(deal)
        return deal

    # --- following ---------------------------------------------------------------------------
    def follow(self, lead: Lead, change: StageChange) -> None:
        deal = self.open.get(lead.id)  # type: ignore[arg-type]
        if deal is None and is_hand_off(change, self.playbook):
            deal = self.open[lead.id] = self.hand_off(change)  # type: ignore[index]
            self.touched[id(deal)] = deal
            self._clocks_of(deal).extend(sla.on_hand_off(deal, change.at, self.playbook.sla))
            self.notify("deal.opened", deal)
            if deal.owner:
                self.happened(lead, auto.Happening("deal_assigned"), deal)
        elif deal is not None:
            follow(deal, change, self.playbook)
            self.touched[id(deal)] = deal
            self._clocks_of(deal).extend(sla.on_move(self._clocks_of(deal), deal, change.from_stage, change.at,
                                                     self.playbook.sla))
            if deal.is_open:
                self.notify("deal.moved", deal, change)
            else:
                del self.open[lead.id]  # type: ignore[arg-type]
                self.notify("deal.closed", deal, change)
                if deal.outcome == "handed_back":
                    self.happened(lead, auto.Happening("hand_back"), deal)
        if change.from_stage is not None:
            self.happened(lead, auto.Happening("stage_left", change.from_stage), deal)
        self.happened(lead, auto.Happening("stage_entered", change.to_stage), deal)

    def happened(self, lead: Lead, happening: auto.Happening, deal: Deal | None) -> None:
        matching = [a for a in self.playbook.automations if a.on == happening.trigger]
        if not matching:
            return
        context = self._context(lead, self._account(lead), deal)
        for automation in matching:
            if automation.matches(happening, context):
                for action in automation.actions:
                    self._act(automation, action, lead, deal, context)

    def _act(self, automation: auto.Automation, action: auto.Action, lead: Lead, deal: Deal | None,
             context: Mapping[str, Any]) -> None:
        if isinstance(action, auto.TaskAction):
            self.tasks.append(NewTask(lead, deal, deal.owner if deal else lead.owner, action.title,
                                      self.now + timedelta(hours=action.due_hours), automation.name))
        elif isinstance(action, auto.SetAction):
            update_fields(lead, dict(action.values), self.playbook, self.now)
        elif isinstance(action, auto.WebhookAction):
            self.notify(action.event, deal, lead=lead, automation=automation.name)
        elif isinstance(action, auto.EnrollAction):
            self.enrollments.append((lead, action.sequence, automation.name))
        elif isinstance(action, auto.EmailAction):
            to = self._recipient(action.to, deal)
            if to:
                values = {name: context[name] for name in TEMPLATE_NAMES}  # a plain mapping, every value computed
                self.items.append(NewItem(uuid.uuid4().hex, "email", f"automation.{automation.name}"[:100], {
                    "to": [to], "subject": action.subject(values).strip()[:300], "text": action.body(values),
                    "lead_id": lead.id, "deal_id": deal.id if deal else None,
                }))

    def _recipient(self, to: str, deal: Deal | None) -> str | None:
        if to == "owner":
            return deal.owner if deal else None
        if to == "manager":
            team = self.playbook.routing.teams.get(deal.team) if deal else None
            return team.manager if team else None
        return to

    def notify(self, event: str, deal: Deal | None, change: StageChange | None = None, *, lead: Lead | None = None,
               automation: str | None = None, clock: Clock | None = None) -> None:
        """A webhook item for each subscription that wants `event` (its body built after the write,
        when the deal has its id)."""
        for webhook in self.uow.outbox.webhooks(active_only=True):
            if webhook.wants(event):
                self.items.append(NewItem(uuid.uuid4().hex, "webhook", event, {
                    "_deal": deal, "_lead": lead or (deal.lead if deal else None), "_change": change,
                    "_automation": automation, "_clock": clock,
                }, webhook.id))

    # --- context and writing ---------------------------------------------------------------
    def _account(self, lead: Lead) -> dict[str, Any] | None:
        if lead.account_id and lead.account_id not in self.accounts:
            self.accounts.update(self.uow.deals.accounts_of([lead.account_id]))
        return self.accounts.get(lead.account_id or 0)

    def _context(self, lead: Lead, account: dict[str, Any] | None, deal: Deal | None = None) -> RuleContext:
        context = RuleContext(lead, self.playbook, self.now)
        context["account"] = dict(account or {})
        context["deal"] = _deal_summary(deal) if deal else {}
        context["scores"] = {k: round(v, 1) for k, v in scores_of(lead, self.playbook).items()}
        return context

    def write(self) -> list[Deal]:
        deals = self.uow.deals
        deals.add([deal for deal in self.opened], self.now)
        deals.save([deal for deal in self.touched.values() if deal.dirty and deal.id is not None], self.now)
        deals.add_activity(self.touched.values())
        deals.save_seats([seat for seat in self.seats.values() if seat.dirty])
        deals.save_clocks([clock for found in self.clocks.values() for clock in found if clock.dirty or clock.id is None])
        deals.add_tasks(self.tasks, self.now)
        self.uow.outbox.add([_finished(item, self.now) for item in self.items], self.now)
        return self.opened


def _period_start(now: datetime, period: str, zone_name: str) -> datetime:
    """The start of the current day (or week, from Monday) in the playbook's time zone."""
    local = now.astimezone(ZoneInfo(zone_name))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start -= timedelta(days=start.weekday())
    return start


def _deal_summary(deal: Deal) -> dict[str, Any]:
    return {
        "id": deal.id, "lead_id": deal.lead.id, "stage": deal.stage, "team": deal.team, "owner": deal.owner,
        "opened_at": deal.opened_at.isoformat(), "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
        "outcome": deal.outcome, "close_reason": deal.close_reason, "value": deal.value, "routed_by": deal.routed_by,
    }


def _finished(item: NewItem, now: datetime) -> NewItem:
    """A webhook body, now that deals and leads have their ids."""
    if item.kind != "webhook":
        return item
    deal, lead, change = item.payload["_deal"], item.payload["_lead"], item.payload["_change"]
    data: dict[str, Any] = {}
    if lead is not None:
        data["lead"] = {"id": lead.id, "email": lead.email, "stage": lead.stage, "owner": lead.owner,
                        "source": lead.source, "fields": lead.fields, "fit": lead.fit}
    if deal is not None:
        data["deal"] = _deal_summary(deal)
        if item.event == "deal.opened":
            data["deal"]["package"] = deal.package
    if change is not None:
        data["move"] = {"from": change.from_stage, "to": change.to_stage, "by": change.by, "reason": change.reason,
                        "at": change.at.isoformat()}
    if item.payload["_automation"]:
        data["automation"] = item.payload["_automation"]
    if (clock := item.payload["_clock"]) is not None:
        data["clock"] = {"commitment": clock.commitment, "status": clock.status, "started_at": clock.started_at.isoformat(),
                         "due_at": clock.due_at.isoformat()}
    body = {"id": item.key, "type": item.event, "created_at": now.isoformat(), "data": data}
    return NewItem(item.key, item.kind, item.event, body, item.webhook_id)
