"""The audit log in the store (SQLite and PostgreSQL): an entry is kept only with the change it
describes, it is read back newest first with filters, and the database refuses to change or
delete it, whoever asks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from leadrelay.adapters import tables
from leadrelay.adapters.audit import AuditFilter
from leadrelay.adapters.tables import audit_log
from leadrelay.domain.errors import DomainError
from leadrelay.services import api_keys as api_key_service
from leadrelay.services import audit
from leadrelay.services import deals as deal_service
from leadrelay.services import playbook as playbook_service
from leadrelay.services import users as user_service
from leadrelay.services.unit_of_work import UnitOfWork

from .support import NOW, Store, identify, track


def _add(engine: Engine, n: int = 1, **overrides: object) -> None:
    uow = UnitOfWork(engine)
    with uow:
        for i in range(n):
            values = {"actor": "ann@example.com", "action": "deal.move", "subject": f"deal:{i}",
                      "detail": {"to": "sal", "at": NOW}, "now": NOW + timedelta(minutes=i)} | overrides
            audit.record(uow, **values)  # type: ignore[arg-type]
        uow.commit()


def test_an_entry_is_kept_only_when_the_change_is_committed(engine: Engine) -> None:
    uow = UnitOfWork(engine)
    with uow:
        audit.record(uow, actor="ann@example.com", action="deal.move", subject="deal:1", now=NOW)
        # no commit: the change failed, so did its entry
    assert audit.entries(UnitOfWork(engine), AuditFilter()) == []
    _add(engine)
    [entry] = audit.entries(UnitOfWork(engine), AuditFilter())
    assert (entry.actor, entry.action, entry.subject, entry.at) == ("ann@example.com", "deal.move", "deal:0", NOW)
    assert entry.detail == {"to": "sal", "at": NOW.isoformat()}


def test_entries_are_read_newest_first_a_page_at_a_time_with_filters(engine: Engine) -> None:
    _add(engine, 5)
    _add(engine, 2, actor="api:crm sync", action="deal.reassign")
    _add(engine, 1, actor="cli", action="user.create", subject="user:bob@example.com")
    read = lambda **f: audit.entries(UnitOfWork(engine), AuditFilter(**f), limit=100)
    everything = read()
    assert len(everything) == 8 and [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    page = audit.entries(UnitOfWork(engine), AuditFilter(), limit=3)
    after = audit.entries(UnitOfWork(engine), AuditFilter(), before=page[-1].id, limit=3)
    assert [e.id for e in page + after] == [e.id for e in everything[:6]]
    assert {e.actor for e in read(actor="api:crm sync")} == {"api:crm sync"} and len(read(actor="api:crm sync")) == 2
    assert len(read(action="deal.move")) == 5 and len(read(action="deal.")) == 7 and len(read(action="user.")) == 1
    assert [e.subject for e in read(subject="user:bob@example.com")] == ["user:bob@example.com"]
    assert len(read(since=NOW + timedelta(minutes=3))) == 2  # the 4th and 5th moves
    assert len(read(until=NOW + timedelta(minutes=1))) == 3  # the first of each batch


@pytest.mark.parametrize("statement", [
    lambda: update(audit_log).values(actor="someone else"),
    lambda: delete(audit_log),
    lambda: text("UPDATE audit_log SET detail = NULL"),
    lambda: text("DELETE FROM audit_log WHERE id > 0"),
], ids=["update", "delete", "raw-update", "raw-delete"])
def test_the_database_refuses_to_change_or_delete_an_entry(engine: Engine, statement) -> None:  # type: ignore[no-untyped-def]
    _add(engine, 2)
    with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(statement())
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(audit_log)) == 2
        assert set(connection.scalars(select(audit_log.c.actor))) == {"ann@example.com"}


def test_the_repository_offers_no_way_to_change_an_entry(engine: Engine) -> None:
    uow = UnitOfWork(engine)
    with uow:
        assert {name for name in dir(uow.audit) if not name.startswith("_")} == {"add", "connection", "page"}


# --- what the use cases record ------------------------------------------------------------------

AT = "2026-11-20T10:00:00Z"


def _entries(store: Store, **filters: object) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.subject) for e in reversed(
        audit.entries(store.uow(), AuditFilter(**filters), limit=500))]  # type: ignore[arg-type]


def test_moves_and_assignments_by_people_are_recorded_and_the_automatic_hand_off_is_not(store: Store) -> None:
    store.send(identify("i-1", AT, user_id="u-1", email="ann@acme.io", country="DE", industry="software"),
               track("d-1", AT, "Demo Requested", user_id="u-1"))  # scoring and routing move it: not audited
    assert _entries(store) == []
    [deal] = store.rows(tables.deals)
    lead_id = deal["lead_id"]
    deal_service.act(store.uow(), store.playbook, deal["id"], "move", to="sql", by="rep@seller.example", now=NOW)
    other = next(rep.email for team in store.playbook.routing.teams.values() for rep in team.reps
                 if rep.email != deal["owner"])
    deal_service.act(store.uow(), store.playbook, deal["id"], "reassign", owner=other, by="api:crm sync", now=NOW)
    deal_service.act(store.uow(), store.playbook, deal["id"], "reject", reason="bad timing", by="boss@seller.example",
                     now=NOW)
    store.move("ann@acme.io", "disqualified", by="cli", reason="not a fit")
    subject = f"deal:{deal['id']}"
    assert _entries(store) == [("rep@seller.example", "deal.move", subject), ("api:crm sync", "deal.reassign", subject),
                               ("boss@seller.example", "deal.reject", subject), ("cli", "lead.move", f"lead:{lead_id}")]
    [move, reassign, reject, lead_move] = reversed(audit.entries(store.uow(), AuditFilter()))
    assert (move.detail["from_stage"], move.detail["to_stage"]) == ("sal", "sql")  # type: ignore[index]
    assert (reassign.detail["from_owner"], reassign.detail["to_owner"]) == (deal["owner"], other)  # type: ignore[index]
    assert reject.detail["reason"] == "bad timing"  # type: ignore[index]
    assert (lead_move.detail["to_stage"], lead_move.detail["reason"]) == ("disqualified", "not a fit")  # type: ignore[index]


def test_a_refused_move_leaves_no_entry(store: Store) -> None:
    store.send(identify("i-1", AT, user_id="u-1", email="ann@acme.io", country="DE"),
               track("d-1", AT, "Demo Requested", user_id="u-1"))
    [deal] = store.rows(tables.deals)
    with pytest.raises(DomainError):
        deal_service.act(store.uow(), store.playbook, deal["id"], "move", to="customer", by="rep", now=NOW)
    assert _entries(store) == []


def test_user_key_and_playbook_changes_are_recorded_without_secrets(store: Store) -> None:
    user_service.create_user(store.uow(), store.playbook, email="Rep@Seller.example", role="sales_rep",
                             password="a long enough password", now=NOW, by="admin@seller.example")
    user_service.update_user(store.uow(), store.playbook, "rep@seller.example", NOW, role="sales_rep", by="admin@x.io")
    user_service.update_user(store.uow(), store.playbook, "rep@seller.example", NOW, role="sales_manager",
                             password="another long password", disabled=True, by="admin@x.io")
    key, record = api_key_service.create_key(store.uow(), name="crm", scope="admin", now=NOW)
    api_key_service.revoke_key(store.uow(), str(record.id), NOW, by="admin@x.io")
    api_key_service.revoke_key(store.uow(), str(record.id), NOW, by="admin@x.io")  # already revoked: nothing new
    playbook_service.record(store.uow(), store.playbook, by="file playbook.yaml", now=NOW)
    playbook_service.record(store.uow(), store.playbook, by="file playbook.yaml", now=NOW)  # the same text again
    assert _entries(store) == [
        ("admin@seller.example", "user.create", "user:rep@seller.example"),
        ("admin@x.io", "user.update", "user:rep@seller.example"),  # the unchanged save left nothing
        ("cli", "api_key.create", f"api_key:{record.id}"),
        ("admin@x.io", "api_key.revoke", f"api_key:{record.id}"),
        ("file playbook.yaml", "playbook.change", f"playbook:{store.playbook.name}"),
    ]
    update = audit.entries(store.uow(), AuditFilter(action="user.update"))[0]
    assert update.detail == {"role": {"from": "sales_rep", "to": "sales_manager"},
                             "disabled": {"from": False, "to": True}, "password": "changed"}
    with store.engine.connect() as connection:
        stored = " ".join(str(row) for row in connection.execute(select(audit_log)))
    assert key not in stored and "another long password" not in stored and "a long enough password" not in stored
