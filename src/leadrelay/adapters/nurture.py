"""Every query on nurture: sequences' enrollments, the emails they sent, the suppression list, the
key that signs email links, and the sums sequence analytics read."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from leadrelay.adapters.repository import _chunks
from leadrelay.adapters.tables import (
    email_link_keys,
    email_sends,
    outbox,
    sequence_enrollments,
    suppressions,
)
from leadrelay.domain.nurture import Enrollment

LINK_KEY = "email-links"


@dataclass(frozen=True, slots=True)
class NewSend:
    key: str
    lead_id: int
    enrollment_id: int | None
    sequence: str | None
    step: int | None
    template: str
    email: str
    subject: str


@dataclass(frozen=True, slots=True)
class Send:
    key: str
    lead_id: int
    sequence: str | None
    step: int | None
    template: str
    email: str


@dataclass(frozen=True, slots=True)
class EmailCounts:
    """What one enrollment's emails did: its last email, and the counts over all of them."""

    last_opened: bool = False
    last_clicked: bool = False
    sent: int = 0
    opened: int = 0
    clicked: int = 0


def _enrollment(row: Row[Any]) -> Enrollment:
    return Enrollment(
        id=row.id, lead_id=row.lead_id, sequence=row.sequence, kind=row.kind, trigger=row.trigger, step=row.step,
        status=row.status, enrolled_at=row.enrolled_at, next_at=row.next_at, ended_at=row.ended_at,
        exit_reason=row.exit_reason, last_email_step=row.last_email_step,
    )


def _values(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "lead_id": enrollment.lead_id, "sequence": enrollment.sequence, "kind": enrollment.kind,
        "trigger": enrollment.trigger, "step": enrollment.step, "status": enrollment.status,
        "enrolled_at": enrollment.enrolled_at, "next_at": enrollment.next_at, "ended_at": enrollment.ended_at,
        "exit_reason": enrollment.exit_reason, "last_email_step": enrollment.last_email_step,
    }


class NurtureRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    # --- enrollments -------------------------------------------------------------------------
    def active_for(self, lead_ids: Collection[int]) -> dict[int, list[Enrollment]]:
        found: dict[int, list[Enrollment]] = {}
        for chunk in _chunks(lead_ids):
            query = select(sequence_enrollments).where(sequence_enrollments.c.lead_id.in_(chunk),
                                                       sequence_enrollments.c.status == "active")
            for row in self.connection.execute(query.order_by(sequence_enrollments.c.id)):
                found.setdefault(row.lead_id, []).append(_enrollment(row))
        return found

    def runs(self, lead_ids: Collection[int], sequences: Collection[str]) -> dict[tuple[int, str], list[Enrollment]]:
        """Every run (active or ended) of these leads through these sequences."""
        found: dict[tuple[int, str], list[Enrollment]] = {}
        for chunk in _chunks(lead_ids):
            query = select(sequence_enrollments).where(sequence_enrollments.c.lead_id.in_(chunk),
                                                       sequence_enrollments.c.sequence.in_(list(sequences)))
            for row in self.connection.execute(query.order_by(sequence_enrollments.c.id)):
                found.setdefault((row.lead_id, row.sequence), []).append(_enrollment(row))
        return found

    def due(self, now: datetime, *, limit: int) -> list[Enrollment]:
        """Active enrollments whose time has come, locked for this unit of work (several workers
        never take the same one: PostgreSQL skips the rows another holds)."""
        query = (select(sequence_enrollments)
                 .where(sequence_enrollments.c.status == "active", sequence_enrollments.c.next_at <= now)
                 .order_by(sequence_enrollments.c.next_at, sequence_enrollments.c.id).limit(limit))
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [_enrollment(row) for row in self.connection.execute(query)]

    def get(self, enrollment_id: int) -> Enrollment | None:
        row = self.connection.execute(select(sequence_enrollments).where(sequence_enrollments.c.id == enrollment_id)
                                      .with_for_update()).first()
        return None if row is None else _enrollment(row)

    def add_enrollments(self, new: Sequence[Enrollment]) -> None:
        """Insert new enrollments, in one statement whatever their number (their ids are not read back)."""
        if new:
            self.connection.execute(insert(sequence_enrollments), [_values(enrollment) for enrollment in new])
        for enrollment in new:
            enrollment.dirty = False

    def add_enrollment(self, enrollment: Enrollment) -> None:
        """Insert one enrollment and give it its id."""
        enrollment.id = self.connection.execute(
            insert(sequence_enrollments).returning(sequence_enrollments.c.id), _values(enrollment)).scalar_one()
        enrollment.dirty = False

    def save_enrollments(self, changed: Iterable[Enrollment]) -> None:
        rows = [{"_id": e.id, **_values(e)} for e in changed if e.dirty and e.id is not None]
        if rows:
            statement = update(sequence_enrollments).where(sequence_enrollments.c.id == bindparam("_id"))
            self.connection.execute(statement, rows)
        for enrollment in changed:
            enrollment.dirty = False

    def enrollments(self, *, lead_id: int | None = None, sequence: str | None = None, status: str | None = None,
                    before: int | None = None, limit: int = 50) -> list[Enrollment]:
        query = select(sequence_enrollments)
        if lead_id is not None:
            query = query.where(sequence_enrollments.c.lead_id == lead_id)
        if sequence is not None:
            query = query.where(sequence_enrollments.c.sequence == sequence)
        if status is not None:
            query = query.where(sequence_enrollments.c.status == status)
        if before is not None:
            query = query.where(sequence_enrollments.c.id < before)
        rows = self.connection.execute(query.order_by(sequence_enrollments.c.id.desc()).limit(limit))
        return [_enrollment(row) for row in rows]

    # --- sends -------------------------------------------------------------------------------
    def add_sends(self, new: Sequence[NewSend], now: datetime) -> None:
        if new:
            self.connection.execute(insert(email_sends), [
                {"key": s.key, "lead_id": s.lead_id, "enrollment_id": s.enrollment_id, "sequence": s.sequence,
                 "step": s.step, "template": s.template, "email": s.email, "domain": s.email.rpartition("@")[2],
                 "subject": s.subject, "queued_at": now, "status": "queued", "opens": 0, "clicks": 0}
                for s in new
            ])

    def send(self, key: str) -> Send | None:
        row = self.connection.execute(select(email_sends).where(email_sends.c.key == key)).first()
        return None if row is None else Send(row.key, row.lead_id, row.sequence, row.step, row.template, row.email)

    def sends_of(self, lead_id: int, limit: int = 100) -> list[dict[str, Any]]:
        query = select(email_sends).where(email_sends.c.lead_id == lead_id).order_by(email_sends.c.id.desc()).limit(limit)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def count_open(self, key: str, at: datetime) -> None:
        self.connection.execute(update(email_sends).where(email_sends.c.key == key).values(
            opens=email_sends.c.opens + 1, opened_at=func.coalesce(email_sends.c.opened_at, at)))

    def count_click(self, key: str, at: datetime) -> None:
        # a click shows the email was opened, even when its pixel was blocked
        self.connection.execute(update(email_sends).where(email_sends.c.key == key).values(
            clicks=email_sends.c.clicks + 1, clicked_at=func.coalesce(email_sends.c.clicked_at, at),
            opened_at=func.coalesce(email_sends.c.opened_at, at)))

    def mark(self, key: str, column: str, at: datetime) -> None:
        """Set `column` (unsubscribed_at, bounced_at, complained_at) on a send, once."""
        target = email_sends.c[column]
        self.connection.execute(update(email_sends).where(email_sends.c.key == key, target.is_(None)).values({column: at}))

    def cancel(self, reasons: dict[str, str]) -> None:
        """Sends the worker will not deliver after all (the lead moved on, the address was suppressed)."""
        if reasons:
            statement = update(email_sends).where(email_sends.c.key == bindparam("_key"))
            self.connection.execute(statement, [{"_key": key, "status": "cancelled", "cancel_reason": reason[:64]}
                                                for key, reason in reasons.items()])

    def sent_since(self, start: datetime) -> tuple[int, dict[str, int]]:
        """Emails queued since `start`: in all, and by recipient domain (what the rate limits count)."""
        query = (select(email_sends.c.domain, func.count()).where(email_sends.c.queued_at >= start)
                 .group_by(email_sends.c.domain))
        by_domain = {domain: count for domain, count in self.connection.execute(query)}
        return sum(by_domain.values()), by_domain

    def email_counts(self, enrollment_ids: Collection[int]) -> dict[int, EmailCounts]:
        found: dict[int, EmailCounts] = {}
        for chunk in _chunks(enrollment_ids):
            query = (select(email_sends.c.enrollment_id, email_sends.c.id, email_sends.c.opened_at,
                            email_sends.c.clicked_at)
                     .where(email_sends.c.enrollment_id.in_(chunk), email_sends.c.status == "queued")
                     .order_by(email_sends.c.enrollment_id, email_sends.c.id))
            rows: dict[int, list[Any]] = {}
            for row in self.connection.execute(query):
                rows.setdefault(row.enrollment_id, []).append(row)
            for enrollment_id, sends in rows.items():
                last = sends[-1]
                found[enrollment_id] = EmailCounts(
                    last.opened_at is not None, last.clicked_at is not None, len(sends),
                    sum(1 for s in sends if s.opened_at is not None), sum(1 for s in sends if s.clicked_at is not None))
        return found

    # --- the suppression list ----------------------------------------------------------------
    def suppressed(self, emails: Collection[str]) -> dict[str, str]:
        """The reason each of these addresses is suppressed, for those that are."""
        found: dict[str, str] = {}
        for chunk in _chunks({email.lower() for email in emails}):
            query = select(suppressions.c.email, suppressions.c.reason).where(suppressions.c.email.in_(chunk))
            found.update({email: reason for email, reason in self.connection.execute(query)})
        return found

    def suppress(self, email: str, reason: str, at: datetime, *, source: str | None, note: str | None) -> bool:
        """Add an address (kept as it is when it is there already); whether it was new."""
        values = {"email": email.lower(), "reason": reason, "at": at, "source": source, "note": note}
        module = postgresql if self.dialect == "postgresql" else sqlite
        statement = module.insert(suppressions).values(values).on_conflict_do_nothing(index_elements=["email"])
        return bool(self.connection.execute(statement).rowcount)

    def unsuppress(self, email: str) -> bool:
        return bool(self.connection.execute(delete(suppressions).where(suppressions.c.email == email.lower())).rowcount)

    def suppressions(self, *, reason: str | None, email: str | None, before: int | None,
                     limit: int) -> list[dict[str, Any]]:
        query = select(suppressions)
        if reason is not None:
            query = query.where(suppressions.c.reason == reason)
        if email is not None:
            query = query.where(suppressions.c.email == email.lower())
        if before is not None:
            query = query.where(suppressions.c.id < before)
        return [dict(row._mapping) for row in self.connection.execute(query.order_by(suppressions.c.id.desc()).limit(limit))]

    # --- the key that signs links --------------------------------------------------------------
    def link_key(self, now: datetime) -> str:
        """The stored secret for email links, made (at random) the first time it is asked for."""
        query = select(email_link_keys.c.secret).where(email_link_keys.c.name == LINK_KEY)
        found = self.connection.scalar(query)
        if found is not None:
            return str(found)
        module = postgresql if self.dialect == "postgresql" else sqlite
        self.connection.execute(module.insert(email_link_keys).values(
            name=LINK_KEY, secret=secrets.token_urlsafe(48), created_at=now).on_conflict_do_nothing(index_elements=["name"]))
        return str(self.connection.scalar(query))

    # --- analytics ---------------------------------------------------------------------------
    def step_sums(self, sequence: str | None = None) -> list[dict[str, Any]]:
        """Per sequence and step: sent, delivered (the mail server took it and it did not bounce),
        opened, clicked, unsubscribed, bounced, complained (each email counted once)."""
        def count(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        sent = email_sends.c.status == "queued"
        query = (
            select(
                email_sends.c.sequence, email_sends.c.step,
                count(sent).label("sent"),
                count(and_(sent, outbox.c.status == "delivered", email_sends.c.bounced_at.is_(None))).label("delivered"),
                count(and_(sent, email_sends.c.opened_at.is_not(None))).label("opened"),
                count(and_(sent, email_sends.c.clicked_at.is_not(None))).label("clicked"),
                count(and_(sent, email_sends.c.unsubscribed_at.is_not(None))).label("unsubscribed"),
                count(and_(sent, email_sends.c.bounced_at.is_not(None))).label("bounced"),
                count(and_(sent, email_sends.c.complained_at.is_not(None))).label("complained"),
                count(email_sends.c.status == "cancelled").label("cancelled"),
            )
            .select_from(email_sends.outerjoin(outbox, outbox.c.key == email_sends.c.key))
            .where(email_sends.c.sequence.is_not(None))
            .group_by(email_sends.c.sequence, email_sends.c.step)
        )
        if sequence is not None:
            query = query.where(email_sends.c.sequence == sequence)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def enrollment_sums(self, sequence: str | None = None) -> list[dict[str, Any]]:
        """Per sequence, status, exit reason and the step of the last email: how many runs."""
        columns = (sequence_enrollments.c.sequence, sequence_enrollments.c.status, sequence_enrollments.c.exit_reason,
                   sequence_enrollments.c.last_email_step)
        query = select(*columns, func.count().label("runs")).group_by(*columns)
        if sequence is not None:
            query = query.where(sequence_enrollments.c.sequence == sequence)
        return [dict(row._mapping) for row in self.connection.execute(query)]

