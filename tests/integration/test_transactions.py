"""One transaction per use case: a database error part-way leaves nothing half-written
(SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy.exc import IntegrityError

from leadrelay.adapters import tables
from leadrelay.adapters.files import read_leads
from leadrelay.adapters.repository import LeadRepository
from leadrelay.services import leads as lead_service
from leadrelay.services.importing import import_rows

from .support import NOW, Store, identify, page, track

AT = "2026-11-20T09:00:00Z"


def break_after(monkeypatch: pytest.MonkeyPatch, method: str, *, on_call: int = 1) -> None:
    """Let `LeadRepository.<method>` do its writes, then hit a real database error (a NOT NULL
    violation) on its `on_call`-th call, inside the use case's transaction."""
    original = getattr(LeadRepository, method)
    calls = {"n": 0}

    def failing(self: LeadRepository, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == on_call:
            self.connection.exec_driver_sql("INSERT INTO leads (email) VALUES ('half-written@example.com')")
        return result

    monkeypatch.setattr(LeadRepository, method, failing)


def meet_after(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Hold two concurrent batches after `LeadRepository.<method>` until both got there. A writer
    that waits for the other's lock before it gets there (SQLite lets one writer in at a time;
    PostgreSQL locks the batch's leads) is let through after a short wait: that is fine too."""
    barrier = threading.Barrier(2, timeout=2)
    original = getattr(LeadRepository, method)

    def meeting(self: LeadRepository, *args, **kwargs):  # type: ignore[no-untyped-def]
        found = original(self, *args, **kwargs)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(LeadRepository, method, meeting)


def send_at_once(store: Store, **messages: dict[str, object]) -> dict[str, str]:
    """Send each message as its own batch, all from separate threads at once; the errors, by name."""
    outcomes: dict[str, object] = {}

    def send(name: str, message: dict[str, object]) -> None:
        try:
            outcomes[name] = store.send(message)
        except Exception as error:  # noqa: BLE001 - reported to the caller
            outcomes[name] = error

    threads = [threading.Thread(target=send, args=item) for item in messages.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return {name: repr(outcome)[:200] for name, outcome in outcomes.items() if isinstance(outcome, Exception)}


def _first_batch(store: Store) -> None:
    store.send(
        identify("ann-1", AT, user_id="u-ann", email="ann@acme.io", title="VP Sales", industry="software", company_size=500),
        page("ann-2", AT, "/pricing", user_id="u-ann"),
        page("v-1", AT, "/pricing", anonymous_id="visitor-bob"),
    )


def test_a_database_error_in_the_last_write_of_a_batch_leaves_nothing_of_that_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_batch(store)
    before = store.snapshot()
    break_after(monkeypatch, "add_stage_changes")  # the last write: every other table is written by then

    with pytest.raises(IntegrityError):
        store.send(
            # updates a lead; a new lead with an account, identities and a visit tied to it; a new lead that moves
            track("ann-3", AT, "form_submit", user_id="u-ann"),
            identify("bob-1", AT, anonymous_id="visitor-bob", user_id="u-bob", email="bob@beta.io"),
            track("cy-1", AT, "Demo Request", user_id="u-cy", email="cy@gamma.io"),
        )

    assert store.snapshot() == before
    monkeypatch.undo()
    # The batch can simply be sent again: nothing of it is mistaken for a duplicate.
    result = store.send(
        track("ann-3", AT, "form_submit", user_id="u-ann"),
        identify("bob-1", AT, anonymous_id="visitor-bob", user_id="u-bob", email="bob@beta.io"),
        track("cy-1", AT, "Demo Request", user_id="u-cy", email="cy@gamma.io"),
    )
    assert (result.stored, result.duplicates, result.leads_created) == (3, 0, 2)
    assert store.events_by_message()["v-1"]["lead_id"] == store.lead("bob@beta.io").id


def test_an_import_that_fails_in_a_later_batch_keeps_the_batches_committed_before_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"email,title\n" + b"".join(b"rep%d@company.example,Manager\n" % i for i in range(10))
    break_after(monkeypatch, "add_events", on_call=2)

    with pytest.raises(IntegrityError):
        import_rows(store.uow, store.playbook, read_leads(io.BytesIO(data), store.playbook, NOW), NOW, batch_size=4)

    assert store.counts() == {"accounts": 1, "leads": 4, "identities": 0, "events": 4, "stage_changes": 4}
    assert {row["email"] for row in store.rows(tables.leads)} == {f"rep{i}@company.example" for i in range(4)}


def test_a_move_that_fails_to_store_its_history_leaves_the_lead_where_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_batch(store)
    before = store.snapshot()
    break_after(monkeypatch, "add_stage_changes")

    with pytest.raises(IntegrityError):
        store.move("ann@acme.io", "mql")

    assert store.snapshot() == before
    assert store.lead("ann@acme.io").stage == "lead"


def test_a_merge_that_fails_part_way_moves_no_event_and_no_identity(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_batch(store)
    store.send(identify("ann-p", AT, anonymous_id="visitor-ann", email="ann.smith@gmail.com"))
    before = store.snapshot()
    break_after(monkeypatch, "save")  # after the events and identities were moved

    with pytest.raises(IntegrityError):
        lead_service.merge_leads(store.uow(), store.playbook, "ann.smith@gmail.com", "ann@acme.io", NOW)

    assert store.snapshot() == before


def test_two_batches_arriving_at_once_for_the_same_new_lead_are_both_stored(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tracking calls and imports run side by side: when both batches see a new lead (and its
    new company) before either commits, neither may be lost."""
    meet_after(monkeypatch, "account_ids")  # each batch has loaded what it touches; now both write
    failed = send_at_once(
        store,
        web=track("web-1", AT, "download", user_id="u-web", email="ann@acme.io"),
        import_=track("import-1", AT, "download", user_id="u-import", email="ann@acme.io"),
    )
    assert failed == {}
    assert store.count(tables.leads) == 1
    assert set(store.events_by_message()) == {"web-1", "import-1"}


def test_two_batches_for_the_same_lead_at_once_lose_neither_ones_points(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers (API processes, an import) score the same lead at the same moment: each
    must build on the other's result, never overwrite it with what it read before."""
    store.send(identify("ann-0", AT, user_id="u-ann", email="ann@acme.io", title="Engineer"))
    meet_after(monkeypatch, "known_message_ids")  # both batches have started; now both load the lead
    failed = send_at_once(
        store,
        web=track("web-1", AT, "form_submit", user_id="u-ann", email="ann@acme.io"),
        import_=track("import-1", AT, "download", user_id="u-ann", email="ann@acme.io"),
    )
    assert failed == {}
    lead = store.lead("ann@acme.io")
    assert set(lead.engagement.rules) == {"form", "content download"}  # both batches' points are there
    assert lead.engagement.total == pytest.approx(15 + 10)
