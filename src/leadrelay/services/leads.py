"""Use cases on single leads (move, merge, look up) and on all of them (rescore)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay.domain.errors import LeadNotFound
from leadrelay.domain.lifecycle import move
from leadrelay.domain.model import Lead, StageChange, normalize_email
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.processing import merge, rescore
from leadrelay.domain.scoring import engagement_at, engagement_breakdown
from leadrelay.services.unit_of_work import UnitOfWork


def _find(uow: UnitOfWork, email: str) -> Lead:
    lead = uow.leads.by_email(normalize_email(email))
    if lead is None:
        raise LeadNotFound(f"no lead with email {email!r}")
    while lead.merged_into is not None:
        lead = uow.leads.get(lead.merged_into)  # type: ignore[assignment]
        assert lead is not None
    return lead


def move_lead(
    uow: UnitOfWork, playbook: Playbook, email: str, to_stage: str, *, by: str, reason: str | None, now: datetime
) -> StageChange:
    with uow:
        lead = _find(uow, email)
        change = move(lead, to_stage, playbook=playbook, at=now, by=by, reason=reason)
        uow.leads.save([lead], now)
        uow.leads.add_stage_changes([change])
        uow.commit()
    return change


def merge_leads(uow: UnitOfWork, playbook: Playbook, source_email: str, target_email: str, now: datetime) -> Lead:
    """Merge the lead `source_email` into `target_email`: its events, identities and scores follow."""
    with uow:
        source, target = _find(uow, source_email), _find(uow, target_email)
        merge(target, source, playbook, now)
        uow.leads.reassign(source.id, target.id)  # type: ignore[arg-type]
        uow.leads.save([target, source], now)
        uow.commit()
    return target


@dataclass
class LeadView:
    lead: Lead
    engagement: float
    engagement_breakdown: dict[str, float]
    history: list[dict[str, Any]]


def view_lead(uow: UnitOfWork, playbook: Playbook, email: str, now: datetime) -> LeadView:
    with uow:
        lead = _find(uow, email)
        return LeadView(
            lead=lead,
            engagement=engagement_at(lead.engagement, playbook.scoring, now),
            engagement_breakdown=engagement_breakdown(lead.engagement, playbook.scoring, now),
            history=uow.leads.history(lead.id),  # type: ignore[arg-type]
        )


def rescore_all(
    uow_factory: Callable[[], UnitOfWork],
    playbook: Playbook,
    now: datetime,
    *,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every lead's scores under `playbook`, one transaction per chunk of leads."""
    done, after = 0, 0
    while True:
        with uow_factory() as uow:
            ids = uow.leads.ids(after=after, limit=chunk)
            if not ids:
                break
            leads = uow.leads.by_ids(ids)
            histories = uow.leads.events_of(ids)
            for lead_id, lead in leads.items():
                rescore(lead, histories[lead_id], playbook, now)
                for event in histories[lead_id]:
                    event.lead = lead
            uow.leads.save(list(leads.values()), now)
            uow.leads.attach_events([event for events in histories.values() for event in events])
            uow.leads.add_stage_changes([c for lead in leads.values() for c in lead.history])
            uow.commit()
        done += len(ids)
        after = ids[-1]
        if progress:
            progress(len(ids))
    return done
