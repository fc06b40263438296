"""Ingest a batch of events: one load of every lead it touches, the domain in memory,
one bulk write of events, leads, identities and moves, one commit."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from leadrelay.adapters.database import is_conflict
from leadrelay.adapters.repository import Key, LeadRepository
from leadrelay.domain.model import Event, Lead, company_domain
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.processing import apply_event, new_lead
from leadrelay.services.handoff import Scores, after_moves, needs_scores, scores_of
from leadrelay.services.unit_of_work import UnitOfWork


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    leads_created: int = 0
    leads_updated: int = 0
    deals_opened: int = 0
    anonymous: int = 0  # stored, waiting for an identify or alias to tie them to a lead
    moves: dict[str, int] = field(default_factory=dict)  # stage entered -> how many leads

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.leads_created += other.leads_created
        self.leads_updated += other.leads_updated
        self.deals_opened += other.deals_opened
        self.anonymous += other.anonymous
        for stage, count in other.moves.items():
            self.moves[stage] = self.moves.get(stage, 0) + count


def _keys(event: Event) -> list[Key]:
    keys: list[Key] = []
    if event.user_id:
        keys.append(("user", event.user_id))
    if event.anonymous_id:
        keys.append(("anonymous", event.anonymous_id))
    return keys


ATTEMPTS = 5


def ingest(uow: UnitOfWork, playbook: Playbook, batch: Iterable[Event], now: datetime) -> IngestResult:
    """Store and score a batch in one transaction. When another writer stored the same new lead,
    account or message at the same moment (or the two deadlocked), the batch is read and applied
    again: nothing is lost, nothing is counted twice."""
    events = list(batch)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _ingest_once(uow, playbook, events, now)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not is_conflict(error):
                raise
            time.sleep(random.uniform(0, 0.01 * attempt))  # two that collided do not collide again at once
            for event in events:
                event.lead, event.points = None, 0.0
    raise AssertionError("unreachable")  # pragma: no cover


def _ingest_once(uow: UnitOfWork, playbook: Playbook, batch: list[Event], now: datetime) -> IngestResult:
    result = IngestResult()
    unique: dict[str, Event] = {}
    for event in batch:
        if event.message_id in unique:
            result.duplicates += 1
        else:
            unique[event.message_id] = event
    with uow:
        repo = uow.leads
        # Batches in other processes naming the same leads, identities or messages wait for this one
        # (and this one for them) before anything is read: none stores a lead, identity or message
        # another has just stored, and none reads what another is about to change.
        repo.take_turns({*unique, *(e.email for e in unique.values() if e.email),
                         *(f"{kind}:{value}" for e in unique.values() for kind, value in _keys(e))})
        known = repo.known_message_ids(unique.keys())
        result.duplicates += len(known)
        fresh = sorted((e for e in unique.values() if e.message_id not in known), key=lambda e: e.timestamp)

        # Load, in a few queries, every lead and identity this batch can touch.
        # Locked until commit: a concurrent batch for the same leads waits, then reads our result.
        by_email = repo.by_emails({e.email for e in fresh if e.email}, lock=True)
        owners = repo.identity_owners({key for e in fresh for key in _keys(e)})
        by_id = {lead.id: lead for lead in by_email.values()}
        by_id.update(repo.by_ids(set(owners.values()) - by_id.keys(), lock=True))
        _follow_merges(repo, by_id, by_email)
        by_key: dict[Key, Lead] = {key: _current(by_id, lead_id) for key, lead_id in owners.items()}
        waiting: dict[Key, list[Event]] = defaultdict(list)
        for stored in repo.unattached_events({k for e in fresh for k in _keys(e)} - by_key.keys()):
            for key in _keys(stored):
                waiting[key].append(stored)

        scores_before: dict[int, Scores] | None = None
        if needs_scores(playbook):
            scores_before = {id(lead): scores_of(lead, playbook) for lead in by_id.values()}
        created: list[Lead] = []
        new_keys: list[tuple[Key, Lead]] = []
        attached: list[Event] = []
        for event in fresh:
            lead = by_email.get(event.email) if event.email else None
            if event.email and lead is None:
                lead = by_email[event.email] = new_lead(event.email, playbook, event.timestamp)
                created.append(lead)
                if scores_before is not None:
                    scores_before[id(lead)] = {"fit": 0.0, "engagement": 0.0, "total": 0.0}
            keys = _keys(event)
            if lead is None:
                lead = next((by_key[key] for key in keys if key in by_key), None)
            if lead is None:
                for key in keys:
                    waiting[key].append(event)
                continue
            for key in keys:
                if key not in by_key:
                    by_key[key] = lead
                    new_keys.append((key, lead))
                    for earlier in waiting.pop(key, ()):
                        if earlier.lead is None:
                            apply_event(lead, earlier, playbook)
                            if earlier.stored:
                                attached.append(earlier)
            apply_event(lead, event, playbook)

        # Write everything in bulk.
        _link_groups(repo, [e for e in (*fresh, *attached) if e.group_id and e.lead is not None], now)
        if created:
            domains = {d for lead in created if lead.account_id is None and (d := company_domain(lead.email))}
            account_ids = repo.account_ids(domains)
            account_ids.update(repo.add_accounts(domains - account_ids.keys(), now))
            for lead in created:
                if lead.account_id is None:
                    lead.account_id = account_ids.get(company_domain(lead.email) or "")
            repo.add(created, now)
        touched = list({id(lead): lead for lead in (*by_id.values(), *by_email.values())}.values())
        repo.add_identities(new_keys, now)
        repo.add_events(fresh, now)
        repo.attach_events(attached)
        opened = after_moves(uow, playbook, touched, now, scores_before=scores_before)
        changed = [lead for lead in touched if lead.dirty and lead.id is not None]
        repo.save(changed, now)
        changes = [change for lead in touched for change in lead.history]
        repo.add_stage_changes(changes)
        uow.commit()

    for change in changes:
        result.moves[change.to_stage] = result.moves.get(change.to_stage, 0) + 1
    result.stored = len(fresh)
    result.leads_created = len(created)
    result.leads_updated = len(changed)
    result.deals_opened = len(opened)
    result.anonymous = sum(1 for e in fresh if e.lead is None)
    return result


def _link_groups(repo: LeadRepository, group_events: list[Event], now: datetime) -> None:
    """A `group` call ties its lead to the group's account (the latest call wins)."""
    if not group_events:
        return
    group_events.sort(key=lambda event: event.timestamp)
    traits = {event.group_id: event.properties.get("traits") or {} for event in group_events}
    account_ids = repo.group_accounts(traits, now)  # type: ignore[arg-type]
    for event in group_events:
        assert event.lead is not None and event.group_id is not None
        event.lead.account_id = account_ids[event.group_id]
        event.lead.dirty = True


def _follow_merges(repo: LeadRepository, by_id: dict[int, Lead], by_email: dict[str, Lead]) -> None:
    """A lead merged into another stands for that other lead from then on."""
    targets = {lead.merged_into for lead in by_id.values() if lead.merged_into} - by_id.keys()
    while targets:
        loaded = repo.by_ids(targets, lock=True)
        by_id.update(loaded)
        targets = {lead.merged_into for lead in loaded.values() if lead.merged_into} - by_id.keys()
    for email, lead in list(by_email.items()):
        by_email[email] = _current(by_id, lead.id)


def _current(by_id: dict[int, Lead], lead_id: int | None) -> Lead:
    lead = by_id[lead_id]  # type: ignore[index]
    while lead.merged_into is not None:
        lead = by_id[lead.merged_into]
    return lead
