"""The hand-off in the store (SQLite and PostgreSQL): a qualifying batch opens one deal, routed
fairly across transactions, with its package, tasks and outbox items written in the same
transaction; moves by hand, rescoring and imports hand off the same way."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from leadrelay.adapters import tables
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.services import deals as deal_service
from leadrelay.services import leads as lead_service
from leadrelay.services import webhooks as webhook_service

from .support import NOW, Store, identify, page, track

AT = "2026-11-20T10:00:00Z"
EMEA = {"country": "DE", "title": "VP Sales", "industry": "software"}


def demo_request(store: Store, number: int, **traits: object) -> None:
    user = f"u-{number}"
    store.send(identify(f"i-{number}", AT, user_id=user, email=f"lead{number}@firm{number}.example", **(traits or EMEA)),
               track(f"d-{number}", AT, "Demo Requested", user_id=user))


def open_deals(store: Store) -> list[dict]:
    return [row for row in store.rows(tables.deals) if row["closed_at"] is None]


def test_a_demo_request_opens_one_deal_routed_to_a_rep_with_its_package(store: Store) -> None:
    store.send(identify("i-1", AT, user_id="u-1", email="ann@acme.io", name="Ann", **EMEA),
               page("p-1", "2026-11-20T09:00:00Z", "/pricing", user_id="u-1"),
               track("d-1", AT, "Demo Requested", user_id="u-1"))

    [deal] = store.rows(tables.deals)
    lead = store.lead("ann@acme.io")
    assert (deal["lead_id"], deal["stage"], deal["team"]) == (lead.id, "sal", "emea")
    assert deal["owner"] == lead.owner and deal["owner"].endswith("@sales.leadrelay.example")
    assert "rule 'EMEA'" in deal["routed_by"]
    assert deal["package"]["pages"]["frequent"] == [{"page": "/pricing", "views": 1}]
    assert {f["name"] for f in deal["package"]["fields"]} >= {"name", "country", "title", "industry"}
    assert [row["action"] for row in store.rows(tables.deal_activity)] == ["opened"]


def test_round_robin_is_fair_across_transactions_and_turns_are_kept_in_the_store(store: Store) -> None:
    for number in range(12):  # one batch (one transaction) each
        demo_request(store, number, country="US", title="VP Sales")

    owners = Counter(row["owner"] for row in store.rows(tables.deals))
    assert len(owners) == 4 and set(owners.values()) == {3}  # the Americas team: 4 reps, 3 each
    seats = store.rows(tables.seats)
    assert sorted(seat["assigned"] for seat in seats) == [3, 3, 3, 3]


def test_an_away_rep_gets_no_new_deal_until_back(store: Store) -> None:
    playbook = store.playbook
    away = "maya.johnson@sales.leadrelay.example"
    deal_service.set_away(store.uow(), playbook, away, until=NOW + timedelta(days=3), inactive=False, note=None,
                          now=NOW)
    for number in range(6):
        demo_request(store, number, country="US")
    assert away not in {row["owner"] for row in store.rows(tables.deals)}

    deal_service.set_away(store.uow(), playbook, away, until=None, inactive=False, note=None, now=NOW)
    demo_request(store, 99, country="US")
    assert open_deals(store)[-1]["owner"] == away  # back: it is her turn, no catch-up burst later


def test_a_lead_never_has_two_open_deals(store: Store) -> None:
    demo_request(store, 1)
    [deal] = store.rows(tables.deals)
    row = {key: value for key, value in deal.items() if key != "id"}

    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(tables.deals).values(row))


def test_reject_then_requalify_gives_a_new_deal_and_the_old_one_stays_closed(store: Store) -> None:
    demo_request(store, 1)
    [first] = store.rows(tables.deals)
    deal_service.act(store.uow(), store.playbook, first["id"], "reject", by="rep", reason="bad timing", now=NOW)
    assert store.lead("lead1@firm1.example").stage == "recycled"

    store.send(track("d-again", "2026-11-20T11:00:00Z", "Demo Requested", user_id="u-1"))

    old, new = store.rows(tables.deals)
    assert (old["outcome"], old["close_reason"]) == ("handed_back", "bad timing")
    assert new["closed_at"] is None and new["id"] != old["id"]
    assert deal_service.hand_back_report(store.uow(), None, None) == {"bad timing": 1}


def test_moving_a_lead_by_hand_into_sales_hands_it_off_and_later_moves_carry_the_deal(store: Store) -> None:
    store.send(identify("i-1", AT, user_id="u-1", email="ann@acme.io", **EMEA))
    store.move("ann@acme.io", "mql")
    store.move("ann@acme.io", "sal")
    store.move("ann@acme.io", "sql")

    [deal] = store.rows(tables.deals)
    assert deal["stage"] == "sql" and deal["closed_at"] is None
    [task] = store.rows(tables.tasks)  # the playbook's "SQL follow-up" automation
    assert (task["owner"], task["deal_id"], task["automation"]) == (deal["owner"], deal["id"], "SQL follow-up")


def test_rescoring_under_a_looser_playbook_hands_off_the_leads_it_qualifies(store: Store) -> None:
    store.send(identify("i-1", AT, user_id="u-1", email="ann@acme.io", **EMEA))
    assert store.rows(tables.deals) == []
    looser = replace(store.playbook, mql_rule=parse_playbook(default_playbook_text().replace(
        "rule: fit >= 40 && engagement >= 40", "rule: fit >= 40")).mql_rule)

    lead_service.rescore_all(store.uow, looser, NOW)

    [deal] = store.rows(tables.deals)
    assert deal["stage"] == "mql" and deal["owner"] is not None


def test_notifications_are_written_in_the_same_transaction_as_the_hand_off(store: Store) -> None:
    webhook_service.create(store.uow(), name="crm", url="http://127.0.0.1:9/hook", events=["deal.opened"], now=NOW)
    demo_request(store, 1)

    items = store.rows(tables.outbox)
    assert Counter(item["kind"] for item in items) == {"webhook": 1, "email": 1}  # deal.opened, and the owner's email
    hook = next(item for item in items if item["kind"] == "webhook")
    assert hook["payload"]["type"] == "deal.opened" and hook["payload"]["data"]["deal"]["package"]
    assert hook["payload"]["data"]["deal"]["id"] == store.rows(tables.deals)[0]["id"]
    assert all(item["status"] == "pending" and item["attempts"] == 0 for item in items)


def test_a_lead_matching_no_rule_waits_in_the_queue(store: Store) -> None:
    demo_request(store, 1, country="ZZ", title="VP Sales", industry="software")

    [deal] = store.rows(tables.deals)
    assert (deal["team"], deal["owner"], deal["routed_by"]) == ("unassigned", None, "no routing rule matched")
    assert [item["kind"] for item in store.rows(tables.outbox)] == []  # nobody to email yet


def test_a_named_accounts_leads_go_to_its_owner(store: Store) -> None:
    store.send(identify("i-0", AT, user_id="u-0", email="first@bigco.example", country="US"))
    [account] = store.rows(tables.accounts)
    with store.uow() as uow:
        uow.leads.update_account(account["id"], {"is_target": True, "owner": "priya.nair@sales.leadrelay.example"})
        uow.commit()

    store.send(identify("i-1", AT, user_id="u-1", email="cto@bigco.example", country="US", title="CTO"),
               track("d-1", AT, "Demo Requested", user_id="u-1"))

    [deal] = store.rows(tables.deals)
    assert deal["owner"] == "priya.nair@sales.leadrelay.example" and "account's owner" in deal["routed_by"]


def test_a_score_crossing_automation_fires_once_when_the_line_is_crossed(store: Store) -> None:
    text = default_playbook_text() + """
  - name: engaged
    trigger: score_crossed
    score: engagement
    above: 15
    do:
      - task: Look at this engaged lead
"""
    playbook = parse_playbook(text)
    store.send(identify("i-1", AT, user_id="u-1", email="ann@acme.io", country="US"), playbook=playbook)
    store.send(track("f-1", AT, "Form Submitted", user_id="u-1"), playbook=playbook)  # 15 points: crosses
    store.send(track("f-2", AT, "Form Submitted", user_id="u-1"), playbook=playbook)  # already above

    assert [task["title"] for task in store.rows(tables.tasks)] == ["Look at this engaged lead"]


def test_merging_a_lead_with_an_open_deal_moves_the_deal_or_closes_it_as_a_duplicate(store: Store) -> None:
    demo_request(store, 1)
    store.send(identify("i-2", AT, user_id="u-2", email="same.person@firm1.example", country="DE"))
    lead_service.merge_leads(store.uow(), store.playbook, "lead1@firm1.example", "same.person@firm1.example", NOW)

    [deal] = store.rows(tables.deals)
    target = store.lead("same.person@firm1.example")
    assert deal["lead_id"] == target.id and deal["closed_at"] is None and target.owner == deal["owner"]

    demo_request(store, 3)
    lead_service.merge_leads(store.uow(), store.playbook, "lead3@firm3.example", "same.person@firm1.example", NOW)
    kept, duplicate = store.rows(tables.deals)
    assert kept["closed_at"] is None and (duplicate["outcome"], duplicate["lead_id"]) == ("merged", store.lead(
        "lead3@firm3.example").id)
    assert [row for row in store.rows(tables.deals) if row["closed_at"] is None] == [kept]
