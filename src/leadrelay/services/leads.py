"""Use cases on single leads (move, merge, look up) and on all of them (rescore)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay.adapters.repository import LeadFilter
from leadrelay.adapters.segment import InvalidMessage, checked_email, map_traits
from leadrelay.domain.deals import merge_into
from leadrelay.domain.errors import InvalidField
from leadrelay.domain.lifecycle import move
from leadrelay.domain.model import Event, Lead, StageChange
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.processing import merge, rescore
from leadrelay.domain.scoring import engagement_at, engagement_breakdown
from leadrelay.services import audit
from leadrelay.services.handoff import after_moves
from leadrelay.services.unit_of_work import UnitOfWork


def move_lead(
    uow: UnitOfWork, playbook: Playbook, lead_ref: str | int, to_stage: str, *, by: str, reason: str | None,
    now: datetime,
) -> StageChange:
    """Move the lead with this email (or id) to `to_stage`, as the playbook allows."""
    with uow:
        lead = uow.leads.find(lead_ref, lock=True)
        change = move(lead, to_stage, playbook=playbook, at=now, by=by, reason=reason)
        after_moves(uow, playbook, [lead], now)
        uow.leads.save([lead], now)
        uow.leads.add_stage_changes([change])
        audit.record(uow, actor=by, action="lead.move", subject=f"lead:{lead.id}", now=now,
                     detail={"from_stage": change.from_stage, "to_stage": change.to_stage, "reason": reason})
        uow.commit()
    return change


def merge_leads(uow: UnitOfWork, playbook: Playbook, source_email: str, target_email: str, now: datetime) -> Lead:
    """Merge the lead `source_email` into `target_email`: its events, identities and scores follow."""
    with uow:
        source, target = uow.leads.find(source_email, lock=True), uow.leads.find(target_email, lock=True)
        merge(target, source, playbook, now)
        uow.leads.reassign(source.id, target.id)  # type: ignore[arg-type]
        open_deals = uow.deals.open_for({source.id: source, target.id: target}, lock=True)  # type: ignore[dict-item]
        if (deal := open_deals.get(source.id)) is not None:  # type: ignore[arg-type]
            merge_into(deal, target, open_deals.get(target.id), at=now, by="merge")  # type: ignore[arg-type]
            uow.deals.save([deal], now)
            uow.deals.add_activity([deal])
        uow.leads.save([target, source], now)
        uow.commit()
    return target


@dataclass
class LeadView:
    lead: Lead
    engagement: float
    engagement_breakdown: dict[str, float]
    history: list[dict[str, Any]]
    clocks: list[dict[str, Any]]  # the SLA clocks of its deals


def view_lead(uow: UnitOfWork, playbook: Playbook, lead_ref: str | int, now: datetime) -> LeadView:
    """Everything about one lead (by email or id): scores as of `now`, with their breakdown."""
    with uow:
        lead = uow.leads.find(lead_ref)
        return LeadView(
            lead=lead,
            engagement=engagement_at(lead.engagement, playbook.scoring, now),
            engagement_breakdown=engagement_breakdown(lead.engagement, playbook.scoring, now),
            history=uow.leads.history(lead.id),  # type: ignore[arg-type]
            clocks=uow.deals.clocks_of(lead_id=lead.id),
        )


def lead_event(playbook: Playbook, email: str, fields: dict[str, Any], now: datetime) -> Event:
    """Creating or updating a lead from the API is an identify event, through the one batch path
    (so fit is scored and the rules act); unknown fields and bad values are refused, saying which."""
    unknown = [name for name in fields if playbook.field_for(name) is None]
    if unknown:
        raise InvalidField(f"unknown field(s) {', '.join(map(repr, unknown))} (fields: {', '.join(sorted(playbook.fields))})")
    try:
        return Event(
            message_id=f"api:{uuid.uuid4().hex}", type="identify", name="identify", timestamp=now,
            email=checked_email(email), traits=map_traits(fields, playbook, where="fields"),
        )
    except InvalidMessage as error:
        raise InvalidField(str(error)) from None


@dataclass
class ScoredLead:
    lead: Lead
    engagement: float  # as of now

    @property
    def total(self) -> float:
        return self.lead.fit + self.engagement


def find_leads(
    uow: UnitOfWork, playbook: Playbook, filters: LeadFilter, *, before: int | None, limit: int, now: datetime,
    score_min: float | None = None, score_max: float | None = None,
) -> tuple[list[ScoredLead], int | None]:
    """A page of leads, newest first, and the id to continue before (None: the last page).
    The score range applies to the total score as of `now` (engagement fades), so it is checked
    here, on each lead, reading on until the page is full."""
    found: list[ScoredLead] = []
    chunk_size = limit if score_min is None and score_max is None else max(limit, 200)
    with uow:
        while True:
            chunk = uow.leads.page(filters, before=before, limit=chunk_size)
            for lead in chunk:
                before = lead.id
                scored = ScoredLead(lead, engagement_at(lead.engagement, playbook.scoring, now))
                if (score_min is None or scored.total >= score_min) and (score_max is None or scored.total <= score_max):
                    found.append(scored)
                    if len(found) == limit:
                        return found, before
            if len(chunk) < chunk_size:
                return found, None


def timeline(uow: UnitOfWork, lead_id: int, *, before: tuple[datetime, int] | None, limit: int) -> list[tuple[int, Event]]:
    """A lead's events, newest first."""
    with uow:
        lead = uow.leads.find(lead_id)
        return uow.leads.timeline(lead.id, before=before, limit=limit)  # type: ignore[arg-type]


def rescore_all(
    uow_factory: Callable[[], UnitOfWork],
    playbook: Playbook,
    now: datetime,
    *,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every lead's scores under `playbook`, one transaction per chunk of leads. Each
    chunk's leads are locked while they are rescored (a server storing their events meanwhile
    waits, then applies them to the new scores); only the leads and event points that changed
    are written back."""
    done, after = 0, 0
    while True:
        with uow_factory() as uow:
            ids = uow.leads.ids(after=after, limit=chunk)
            if not ids:
                break
            leads = uow.leads.by_ids(ids, lock=True)
            histories = uow.leads.events_of(ids)
            before = {lead_id: _scored_state(lead) for lead_id, lead in leads.items()}
            points: list[tuple[Event, float]] = []
            for lead_id, lead in leads.items():
                history = histories[lead_id]
                was = [event.points for event in history]
                rescore(lead, history, playbook, now)
                for event, old in zip(history, was, strict=True):
                    event.lead = lead
                    if event.points != old:
                        points.append((event, event.points))
            after_moves(uow, playbook, leads.values(), now)
            changed = [lead for lead_id, lead in leads.items() if lead.history or _scored_state(lead) != before[lead_id]]
            uow.leads.save(changed, now)
            uow.leads.set_points(points)
            uow.leads.add_stage_changes([c for lead in leads.values() for c in lead.history])
            uow.commit()
        done += len(ids)
        after = ids[-1]
        if progress:
            progress(len(ids))
    return done


def _scored_state(lead: Lead) -> tuple[Any, ...]:
    """What a rescore can change in a lead's row, as it is stored (rule values rounded the same way)."""
    engagement = lead.engagement
    return (
        lead.fit, lead.fit_breakdown, round(engagement.total, 6), engagement.as_of, lead.stage, lead.highest_stage,
        lead.stage_entered_at, lead.owner, lead.account_id, lead.fields,
        {name: (round(s.value, 9), round(s.awarded, 6), s.days) for name, s in engagement.rules.items()},
    )
