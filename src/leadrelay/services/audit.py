"""The audit log: who did what and when (stage moves and deal actions by people or keys,
assignments, playbook changes, user and key changes, erasures).

`record` adds one entry inside the caller's open unit of work: it is stored if, and only if, the
change it describes is committed. Nothing here commits, changes or deletes an entry.

Actors are named the way the rest of LeadRelay names who did something: a user's email (the web
app, or a key bound to that user), `api:KEY NAME` (an API key), `cli` (the command line).
Subjects are `kind:id` (`deal:12`, `lead:34`, `user:ann@example.com`, `api_key:5`, `playbook:3`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from leadrelay.adapters.audit import AuditEntry, AuditFilter
from leadrelay.services.unit_of_work import UnitOfWork

MAX_ACTOR = 320
MAX_ACTION = 64
MAX_SUBJECT = 500


def _plain(value: object) -> Any:
    """A JSON value: dates as ISO 8601, containers walked, anything else as its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return str(value)


def record(uow: UnitOfWork, *, actor: str, action: str, subject: str,
           detail: Mapping[str, object] | None = None, now: datetime) -> None:
    """Add one entry to the audit log in the caller's open transaction (no commit).
    Over-long names are cut to the column's size rather than failing the change they describe."""
    uow.audit.add(
        at=now,
        actor=(actor or "unknown")[:MAX_ACTOR],
        action=action[:MAX_ACTION],
        subject=(subject or "-")[:MAX_SUBJECT],
        detail=None if detail is None else _plain(detail),
    )


def entries(uow: UnitOfWork, filters: AuditFilter, *, before: int | None = None, limit: int = 50) -> list[AuditEntry]:
    """The audit log, newest first, a page at a time."""
    with uow:
        return uow.audit.page(filters, before=before, limit=limit)
