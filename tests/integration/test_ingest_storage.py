"""The batch ingestion path against a real database (SQLite and PostgreSQL): what is stored,
how it is scored, and that nothing is counted twice."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event

from leadrelay.adapters import repository, tables

from .support import NOW, Store, identify, page, track

AT = "2026-11-20T09:00:00Z"  # every event of a batch at one moment: no decay between them


def decay(hours: float, half_life_days: float = 30) -> float:
    """What a point is worth `hours` later (the default playbook's half-life: 30 days)."""
    return 2 ** (-hours / (24 * half_life_days))


def ann_batch() -> list[dict]:
    return [
        identify("ann-1", AT, user_id="u-ann", email="Ann@Acme.io", title="VP Sales", industry="software",
                 company_size=500),
        page("ann-2", AT, "/pricing", user_id="u-ann"),
        track("ann-3", AT, "Form Submit", user_id="u-ann", form="contact"),
    ]


def test_a_batch_stores_every_event_and_scores_the_lead(store: Store) -> None:
    result = store.send(*ann_batch())

    assert (result.stored, result.duplicates, result.leads_created, result.anonymous) == (3, 0, 1, 0)
    lead = store.lead("ann@acme.io")  # emails are keys: trimmed and lower-cased
    assert lead.fields == {"title": "VP Sales", "industry": "software", "company_size": 500}
    assert lead.fit == 70
    assert lead.fit_breakdown == {"target industry": 25, "mid-market or larger": 20, "decision maker": 25}
    assert lead.stage == lead.highest_stage == "lead"
    view = store.view("ann@acme.io", now=lead.engagement.as_of)
    assert view.engagement_breakdown == {"pricing page": 10, "page view": 1, "form": 15}
    assert view.engagement == 26

    events = store.events_by_message()
    assert {m: (e["lead_id"], e["name"], e["points"]) for m, e in events.items()} == {
        "ann-1": (lead.id, "identify", 0),
        "ann-2": (lead.id, "page_view", 11),
        "ann-3": (lead.id, "form_submit", 15),
    }
    assert events["ann-3"]["properties"] == {"form": "contact"}
    assert [(r["kind"], r["value"], r["lead_id"]) for r in store.rows(tables.identities)] == [("user", "u-ann", lead.id)]
    [account] = store.rows(tables.accounts)
    assert account["domain"] == "acme.io" and lead.account_id == account["id"]
    assert store.history("ann@acme.io") == [(None, "lead", "created", None)]


def test_a_lead_whose_fit_and_engagement_reach_the_mql_rule_is_handed_to_sales_and_the_move_is_stored(
    store: Store,
) -> None:
    result = store.send(
        *ann_batch(),
        track("ann-4", AT, "download", user_id="u-ann", asset="pricing-guide.pdf"),
        track("ann-5", AT, "webinar_attended", user_id="u-ann"),
    )

    assert result.moves == {"lead": 1, "mql": 1}
    lead = store.lead("ann@acme.io")
    assert (lead.stage, lead.highest_stage) == ("mql", "mql")
    assert store.history("ann@acme.io") == [(None, "lead", "created", None), ("lead", "mql", "rule:mql", None)]


def test_a_free_mail_lead_belongs_to_no_account(store: Store) -> None:
    store.send(identify("g-1", AT, user_id="u-g", email="someone@gmail.com"))

    assert store.lead("someone@gmail.com").account_id is None
    assert store.count(tables.accounts) == 0


def test_leads_of_one_company_share_one_account(store: Store) -> None:
    store.send(
        identify("a-1", AT, user_id="u-ann", email="ann@acme.io"),
        identify("a-2", AT, user_id="u-bob", email="bob@acme.io"),
    )
    store.send(identify("a-3", AT, user_id="u-cy", email="cy@acme.io"))

    [account] = store.rows(tables.accounts)
    assert {store.lead(e).account_id for e in ("ann@acme.io", "bob@acme.io", "cy@acme.io")} == {account["id"]}


def test_a_resent_batch_changes_nothing(store: Store) -> None:
    store.send(*ann_batch())
    before = store.snapshot()

    result = store.send(*ann_batch(), now=NOW.replace(hour=13))

    assert (result.stored, result.duplicates, result.leads_created, result.leads_updated) == (0, 3, 0, 0)
    assert result.moves == {}
    assert store.snapshot() == before  # not even updated_at or received_at moved


def test_a_batch_mixing_known_and_new_messages_counts_only_the_new_ones(store: Store) -> None:
    store.send(*ann_batch())

    result = store.send(*ann_batch(), track("ann-4", AT, "download", user_id="u-ann"))

    assert (result.stored, result.duplicates) == (1, 3)
    lead = store.lead("ann@acme.io")
    assert store.view("ann@acme.io", now=lead.engagement.as_of).engagement == 26 + 10
    assert store.count(tables.events) == 4


def test_a_message_sent_twice_in_one_batch_is_counted_once(store: Store) -> None:
    result = store.send(*ann_batch(), page("ann-2", AT, "/pricing", user_id="u-ann"))

    assert (result.stored, result.duplicates) == (3, 1)
    assert store.count(tables.events) == 3
    lead = store.lead("ann@acme.io")
    assert store.view("ann@acme.io", now=lead.engagement.as_of).engagement == 26


def test_an_anonymous_visitors_earlier_visits_count_once_an_identify_in_the_same_batch_ties_them(
    store: Store,
) -> None:
    result = store.send(
        page("bob-1", AT, "/pricing", anonymous_id="visitor-7"),
        page("bob-2", AT, "/product", anonymous_id="visitor-7"),
        identify("bob-3", AT, anonymous_id="visitor-7", user_id="u-bob", email="bob@beta.io"),
    )

    assert (result.stored, result.anonymous, result.leads_created) == (3, 0, 1)
    lead = store.lead("bob@beta.io")
    events = store.events_by_message()
    assert {m: (e["lead_id"], e["points"]) for m, e in events.items()} == {
        "bob-1": (lead.id, 11), "bob-2": (lead.id, 1), "bob-3": (lead.id, 0),
    }
    assert store.view("bob@beta.io", now=lead.engagement.as_of).engagement == 12
    assert {(r["kind"], r["value"]) for r in store.rows(tables.identities)} == {("user", "u-bob"), ("anonymous", "visitor-7")}


def test_an_anonymous_visitors_earlier_visits_count_once_an_identify_in_a_later_batch_ties_them(
    store: Store,
) -> None:
    first = store.send(
        page("bob-1", AT, "/pricing", anonymous_id="visitor-7"),
        page("bob-2", AT, "/product", anonymous_id="visitor-7"),
    )
    assert (first.stored, first.anonymous, first.leads_created) == (2, 2, 0)
    assert store.count(tables.leads) == 0
    assert [e["lead_id"] for e in store.rows(tables.events)] == [None, None]  # waiting for their lead

    second = store.send(identify("bob-3", "2026-11-20T10:00:00Z", anonymous_id="visitor-7", email="bob@beta.io"))

    assert (second.stored, second.anonymous, second.leads_created) == (1, 0, 1)
    lead = store.lead("bob@beta.io")
    events = store.events_by_message()
    assert {m: (e["lead_id"], e["points"]) for m, e in events.items()} == {
        "bob-1": (lead.id, 11), "bob-2": (lead.id, 1), "bob-3": (lead.id, 0),
    }
    score = store.view("bob@beta.io", now=NOW).engagement  # three hours after the visits
    assert score == pytest.approx(12 * decay(hours=3))

    # Identified again (new message, same visitor): the earlier visits are not counted again.
    store.send(identify("bob-4", "2026-11-20T10:00:00Z", anonymous_id="visitor-7", email="bob@beta.io", title="CTO"))
    assert store.view("bob@beta.io", now=NOW).engagement == pytest.approx(score)

    # And a later visit of the same visitor goes straight to the lead.
    third = store.send(page("bob-5", "2026-11-20T10:00:00Z", "/docs", anonymous_id="visitor-7"))
    assert third.anonymous == 0
    assert store.events_by_message()["bob-5"]["lead_id"] == lead.id
    assert store.view("bob@beta.io", now=NOW).engagement == pytest.approx(score + 1 * decay(hours=2))


def test_an_alias_ties_a_visitors_earlier_visits_to_a_known_lead(store: Store) -> None:
    store.send(page("cy-1", AT, "/pricing", anonymous_id="visitor-9"))
    store.send(identify("cy-2", AT, user_id="u-cy", email="cy@gamma.io"))
    assert store.events_by_message()["cy-1"]["lead_id"] is None

    store.send({"type": "alias", "messageId": "cy-3", "timestamp": AT, "previousId": "visitor-9", "userId": "u-cy"})

    lead = store.lead("cy@gamma.io")
    assert store.events_by_message()["cy-1"]["lead_id"] == lead.id
    assert store.view("cy@gamma.io", now=lead.engagement.as_of).engagement == 11


def test_a_visitor_who_never_identifies_stays_anonymous_and_creates_no_lead(store: Store) -> None:
    result = store.send(page("x-1", AT, "/pricing", anonymous_id="visitor-x"), page("x-2", AT, "/", anonymous_id="visitor-x"))
    again = store.send(page("x-3", AT, "/blog", anonymous_id="visitor-x"))

    assert (result.anonymous, again.anonymous) == (2, 1)
    assert store.counts() == {"accounts": 0, "leads": 0, "identities": 0, "events": 3, "stage_changes": 0}


def test_a_demo_request_fast_tracks_the_lead_to_sales_accepted_in_the_stored_history(store: Store) -> None:
    store.send(identify("d-1", AT, user_id="u-dee", email="dee@delta.io"), track("d-2", AT, "Demo Request", user_id="u-dee"))

    assert store.lead("dee@delta.io").stage == "sal"
    assert store.history("dee@delta.io")[-1] == ("lead", "sal", "fast_track:demo request", None)


def test_a_competitor_is_disqualified_with_the_reason_in_the_stored_history(store: Store) -> None:
    store.send(identify("r-1", AT, user_id="u-spy", email="spy@rival.example"))

    lead = store.lead("spy@rival.example")
    assert lead.stage == "disqualified" and lead.highest_stage == "lead"
    assert store.history("spy@rival.example")[-1] == ("lead", "disqualified", "rule:competitor", "competitor")


def _statements_for_batch(store: Store, size: int, tag: str) -> list[str]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split("(")[0].split()[:3]))

    batch = []
    for i in range(size):
        batch.append(identify(f"{tag}-i{i}", AT, user_id=f"{tag}-u{i}", anonymous_id=f"{tag}-a{i}",
                              email=f"p{i}@{tag}{i}.example", company_size=50))
        batch.append(page(f"{tag}-p{i}", AT, "/pricing", user_id=f"{tag}-u{i}"))
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        store.send(*batch)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return statements


def test_a_batch_takes_the_same_number_of_statements_whatever_its_size(store: Store) -> None:
    """Batch first: one load of every lead a batch touches and one bulk write per table,
    never one round trip per event or per lead."""
    small = _statements_for_batch(store, 3, "small")
    large = _statements_for_batch(store, 60, "large")

    grew = {s: n for s, n in Counter(large).items() if n > Counter(small)[s]}
    assert len(large) == len(small), f"statements that grew with the batch (60 new leads vs 3): {grew}"


def test_a_batch_larger_than_one_query_chunk_still_finds_every_lead_and_visitor(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lookups go in chunks of values per IN (...) list; every chunk counts, not only the first."""
    monkeypatch.setattr(repository._chunks, "__defaults__", (2,))  # chunks of 2 values instead of thousands
    people = range(7)
    store.send(*(page(f"v-{i}", AT, "/pricing", anonymous_id=f"visitor-{i}") for i in people))
    store.send(*(identify(f"i-{i}", AT, anonymous_id=f"visitor-{i}", user_id=f"u-{i}", email=f"p{i}@acme.io")
                 for i in people))

    result = store.send(*(track(f"t-{i}", AT, "download", user_id=f"u-{i}", email=f"p{i}@acme.io") for i in people))

    assert (result.stored, result.leads_created, result.leads_updated) == (7, 0, 7)
    leads = {row["email"]: row["id"] for row in store.rows(tables.leads)}
    assert len(leads) == 7
    for i in people:
        view = store.view(f"p{i}@acme.io", now=NOW)
        assert view.engagement_breakdown.keys() == {"pricing page", "page view", "content download"}
    assert all(row["lead_id"] is not None for row in store.rows(tables.events))
