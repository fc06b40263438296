"""A person's data: export everything held about them, erase them, and keep raw events only as
long as the retention setting says.

Erasure removes what identifies the person and keeps what the reports count, anonymised (see
`leadrelay.adapters.personal_data`): the funnel, velocity, source, SLA, content and nurture
figures are the same before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadrelay import __version__
from leadrelay.adapters.personal_data import PersonalData, compact_log
from leadrelay.domain.errors import LeadNotFound
from leadrelay.domain.model import normalize_email
from leadrelay.services import audit
from leadrelay.services.unit_of_work import UnitOfWork

RETENTION_BATCH = 5000  # events deleted per transaction: writers are never held up for long


@dataclass(frozen=True)
class Erasure:
    email: str
    lead_ids: list[int]
    removed: dict[str, int]  # rows removed or stripped, by table
    at: datetime


def _person(data: PersonalData, email: str) -> list[int]:
    lead_ids = data.lead_ids(normalize_email(email))
    if not lead_ids:
        raise LeadNotFound(f"no lead with email {normalize_email(email)!r} (already erased, or never here)")
    return lead_ids


def export_person(uow: UnitOfWork, email: str, now: datetime) -> dict[str, Any]:
    """Everything held about the person with this email, as JSON-ready data: each table's rows."""
    with uow:
        data = PersonalData(uow.connection)
        lead_ids = _person(data, email)
        return {
            "email": normalize_email(email),
            "exported_at": now.isoformat(),
            "exported_by": f"LeadRelay {__version__}",
            "lead_ids": lead_ids,
            "emails": data.emails(lead_ids),
            "tables": data.export(lead_ids),
        }


def erase_person(uow: UnitOfWork, email: str, *, actor: str, now: datetime) -> Erasure:
    """Erase the person with this email (and the leads merged with theirs), in one transaction,
    with its entry in the audit log (`person.erased`)."""
    with uow:
        data = PersonalData(uow.connection)
        lead_ids = _person(data, email)
        removed = data.erase(lead_ids, now=now, by=actor)
        # the entry names the lead by id only: the address it had is what was erased
        audit.record(uow, actor=actor, action="person.erased", subject=f"lead:{lead_ids[0]}",
                     detail={"leads": lead_ids, "removed": removed}, now=now)
        uow.commit()
    compact_log(uow.engine)
    return Erasure(normalize_email(email), lead_ids, removed, now)


def apply_retention(uow_factory: Callable[[], UnitOfWork], days: int, now: datetime, *,
                    batch: int = RETENTION_BATCH, max_batches: int | None = None) -> int:
    """Delete the raw events older than `days` days (0: keep them forever), and the refused
    tracking messages received before then, a batch per transaction; how many events went.
    Scores, stages and the report tables stay as they are."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    deleted = rounds = 0
    while max_batches is None or rounds < max_batches:
        with uow_factory() as uow:
            data = PersonalData(uow.connection)
            count = data.delete_events_before(cutoff, limit=batch)
            data.delete_rejected_before(cutoff, limit=batch)
            uow.commit()
        deleted += count
        rounds += 1
        if count < batch:
            break
    return deleted
