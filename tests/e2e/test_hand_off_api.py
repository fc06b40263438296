"""The hand-off over real HTTP (each test on SQLite and on PostgreSQL): events come in through the
tracking API, a qualified lead becomes a deal routed to a rep by the playbook with its hand-off
package, and sales works the deal through the REST API (accept, move, win, lose, reject,
reassign), with the playbook's rules enforced and errors answered as JSON with a stable code."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook

from .server import Server

EMEA_COUNTRY, AMERICAS_COUNTRY, APAC_COUNTRY = "DE", "US", "JP"
DECISION_MAKER = {"industry": "software", "title": "VP Marketing"}  # fit 50: the MQL rule needs 40
SALES_COLUMNS = ["mql", "sal", "sql", "opportunity", "customer", "lost"]


# --- helpers -----------------------------------------------------------------------------------


def message(kind: str, user: str, *, at: str | None = None, **body: Any) -> dict[str, Any]:
    found = {"type": kind, "userId": user, "messageId": uuid.uuid4().hex, **body}
    if at is not None:
        found["timestamp"] = at
    return found


def identify(email: str, *, at: str | None = None, **traits: Any) -> dict[str, Any]:
    return message("identify", email, at=at, traits={"email": email, **traits})


def track(email: str, event: str, *, at: str | None = None, **properties: Any) -> dict[str, Any]:
    return message("track", email, at=at, event=event, properties=properties)


def page(email: str, path: str, *, at: str | None = None) -> dict[str, Any]:
    return message("page", email, at=at, properties={"path": path})


def send(server: Server, *messages: dict[str, Any]) -> None:
    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", json={"batch": list(messages)})
    assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text


def demo_request(email: str, **traits: Any) -> list[dict[str, Any]]:
    """Who the lead is, then a demo request: the playbook's fast track hands it to sales (`sal`)."""
    return [identify(email, **traits), track(email, "Demo Requested")]


def engaged(email: str, **traits: Any) -> list[dict[str, Any]]:
    """A decision maker of a target industry who downloads, attends a webinar and fills a form:
    fit 50 and engagement 45, so the MQL rule hands the lead to sales (`mql`)."""
    return [identify(email, **DECISION_MAKER, **traits), track(email, "Downloaded", title="ROI guide"),
            track(email, "Webinar Attended", webinar="Scaling sales"), track(email, "Form Submitted", form="Contact us")]


def lead_of(admin: httpx.Client, email: str) -> dict[str, Any]:
    found = admin.get("/api/v1/leads", params={"email": email}).json()["items"]
    assert len(found) == 1, f"no lead {email}"
    return dict(admin.get(f"/api/v1/leads/{found[0]['id']}").json())


def deals_of(admin: httpx.Client, email: str) -> list[dict[str, Any]]:
    answer = admin.get("/api/v1/deals", params={"lead_id": lead_of(admin, email)["id"]})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def open_deal(admin: httpx.Client, email: str) -> dict[str, Any]:
    """The lead's one open deal, in full (package and activity)."""
    found = [deal for deal in deals_of(admin, email) if deal["closed_at"] is None]
    assert len(found) == 1, f"{email} has {len(found)} open deals"
    return deal_by_id(admin, found[0]["id"])


def deal_by_id(admin: httpx.Client, deal_id: int) -> dict[str, Any]:
    answer = admin.get(f"/api/v1/deals/{deal_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def act(admin: httpx.Client, deal_id: int, action: str, **body: Any) -> httpx.Response:
    return admin.post(f"/api/v1/deals/{deal_id}/{action}", json=body)


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def assert_error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code and body["message"], body
    return str(body["message"])


def reps_of(playbook: Playbook, team: str) -> list[str]:
    return [rep.email for rep in playbook.routing.teams[team].reps]


def owners(admin: httpx.Client, emails: list[str]) -> list[str | None]:
    return [open_deal(admin, email)["owner"] for email in emails]


# --- the hand-off ------------------------------------------------------------------------------


def test_a_lead_that_qualifies_from_tracked_events_becomes_a_deal_routed_by_territory_with_its_package(
    server: Server, playbook: Playbook
) -> None:
    start = utc_now() - timedelta(hours=3)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).isoformat()

    email = "ann@acme.io"
    campaign = {"campaign": {"source": "google", "medium": "cpc", "name": "spring-launch"}}
    send(server,
         {**identify(email, at=at(0), name="Ann Lee", country=EMEA_COUNTRY, company="Acme", **DECISION_MAKER),
          "context": campaign},
         page(email, "/pricing", at=at(1)), page(email, "/blog/roi", at=at(2)), page(email, "/pricing", at=at(3)),
         page(email, "/docs", at=at(4)),
         track(email, "Downloaded", at=at(5), title="ROI guide"))
    with server.admin() as admin:
        assert deals_of(admin, email) == []  # fit 50, engagement 34 (pages 24, download 10): not yet
        send(server, track(email, "Webinar Attended", at=at(6), webinar="Scaling sales"),
             track(email, "Form Submitted", at=at(7), form="Contact us"))
        deal = open_deal(admin, email)
        lead = lead_of(admin, email)

    assert (deal["stage"], deal["team"], lead["stage"]) == ("mql", "emea", "mql")
    assert deal["owner"] in reps_of(playbook, "emea") and lead["owner"] == deal["owner"]
    assert "EMEA" in deal["routed_by"] and "emea" in deal["routed_by"]
    assert (deal["email"], deal["name"], deal["account"]["domain"]) == (email, "Ann Lee", "acme.io")
    [opened] = deal["activity"]
    assert (opened["action"], opened["by"], opened["to_stage"], opened["owner"]) == (
        "opened", "rule:mql", "mql", deal["owner"])

    package = deal["package"]
    fields = {field["name"]: (field["label"], field["value"]) for field in package["fields"]}
    assert fields["name"][1] == "Ann Lee" and fields["country"] == ("Country", EMEA_COUNTRY)
    assert fields["industry"][1] == "software" and fields["title"][1] == "VP Marketing"
    scores = package["scores"]
    assert scores["fit"] == 50 and scores["fit_breakdown"] == {"target industry": 25, "decision maker": 25}
    assert scores["engagement"] == pytest.approx(sum(scores["engagement_breakdown"].values()), abs=0.5)
    assert scores["engagement"] >= 40
    assert {"pricing page", "page view", "content download", "webinar attended", "form"} <= set(
        scores["engagement_breakdown"])
    assert [item["page"] for item in package["pages"]["recent"]] == ["/docs", "/pricing", "/blog/roi", "/pricing"]
    assert package["pages"]["frequent"][0] == {"page": "/pricing", "views": 2}
    assert {item["page"] for item in package["pages"]["frequent"][1:]} == {"/blog/roi", "/docs"}
    assert [(item["title"], item["times"]) for item in package["content"]] == [("ROI guide", 1)]
    assert [item["title"] for item in package["webinars"]] == ["Scaling sales"]
    assert [item["title"] for item in package["forms"]] == ["Contact us"]
    assert {key: package["first_touch"][key] for key in ("source", "medium", "campaign")} == {
        "source": "google", "medium": "cpc", "campaign": "spring-launch"}
    assert package["events"] == 8
    assert [entry["name"] for entry in package["timeline"]] == [
        "form_submitted", "webinar_attended", "downloaded", "page_view", "page_view", "page_view", "page_view",
        "identify"]
    assert package["timeline"][0]["what"] == "Contact us"


def test_a_demo_request_fast_tracks_the_lead_to_sales_accepted_with_one_deal_that_follows_it(
    server: Server, playbook: Playbook
) -> None:
    email = "raj@globex.example"
    send(server, *demo_request(email, country=APAC_COUNTRY, name="Raj Patel"))
    with server.admin() as admin:
        deal = open_deal(admin, email)
        assert (deal["stage"], deal["team"]) == ("sal", "apac")
        assert deal["owner"] in reps_of(playbook, "apac") and "APAC" in deal["routed_by"]
        assert deal["package"]["timeline"][0]["name"] == "demo_requested"

        send(server, *engaged(email))  # more events, and the MQL rule holds: still the same one deal
        send(server, track(email, "Demo Requested"))
        assert [d["id"] for d in deals_of(admin, email)] == [deal["id"]]
        assert open_deal(admin, email)["stage"] == "sal"


def test_a_lead_moved_to_sales_by_hand_is_handed_off_too(server: Server, playbook: Playbook) -> None:
    email = "lea@initech.example"
    send(server, identify(email, country="FR"))
    with server.admin() as admin:
        lead_id = lead_of(admin, email)["id"]
        ok(admin.post(f"/api/v1/leads/{lead_id}/move", json={"to": "sal"}))
        deal = open_deal(admin, email)

    assert (deal["stage"], deal["team"]) == ("sal", "emea") and deal["owner"] in reps_of(playbook, "emea")
    assert (deal["activity"][0]["action"], deal["activity"][0]["by"]) == ("opened", "api:admin")


# --- routing -----------------------------------------------------------------------------------


def test_a_lead_no_rule_routes_waits_in_the_unassigned_queue_until_someone_reassigns_it(
    server: Server, playbook: Playbook
) -> None:
    email = "nobody@nowhere.example"
    maya = reps_of(playbook, "americas")[0]
    send(server, *demo_request(email))  # no country, no territory, no target account
    with server.admin() as admin:
        waiting = open_deal(admin, email)
        queue = admin.get("/api/v1/board", params={"team": "unassigned"}).json()
        assert (waiting["team"], waiting["owner"]) == ("unassigned", None)
        assert waiting["routed_by"] == "no routing rule matched" and waiting["assigned_at"] is None
        assert lead_of(admin, email)["owner"] is None
        assert [card["id"] for column in queue["columns"] for card in column["deals"]] == [waiting["id"]]

        given = ok(act(admin, waiting["id"], "reassign", owner=maya.upper(), note="Maya covers this"))
        lead = lead_of(admin, email)
        mine = admin.get("/api/v1/deals", params={"owner": maya}).json()["items"]

    assert given["owner"] == maya and given["assigned_at"] is not None and lead["owner"] == maya
    reassigned = given["activity"][-1]
    assert (reassigned["action"], reassigned["by"], reassigned["owner"], reassigned["note"]) == (
        "reassigned", "api:admin", maya, "Maya covers this")
    assert [deal["id"] for deal in mine] == [waiting["id"]]


def test_a_deal_taken_from_the_queue_leaves_the_queue(server: Server, playbook: Playbook) -> None:
    email = "nobody@nowhere.example"
    maya = reps_of(playbook, "americas")[0]
    send(server, *demo_request(email))
    with server.admin() as admin:
        waiting = open_deal(admin, email)
        ok(act(admin, waiting["id"], "reassign", owner=maya))
        queue = admin.get("/api/v1/deals", params={"team": "unassigned", "status": "open"}).json()["items"]
        given = deal_by_id(admin, waiting["id"])

    assert queue == []
    assert given["team"] == "americas"  # the team of its new owner


def test_the_next_qualifying_lead_of_a_named_account_goes_to_the_accounts_owner(
    server: Server, playbook: Playbook
) -> None:
    priya = reps_of(playbook, "apac")[1]
    send(server, identify("first@bigco.example", country=AMERICAS_COUNTRY))  # the account exists from now on
    with server.admin() as admin:
        [account] = admin.get("/api/v1/accounts", params={"domain": "bigco.example"}).json()["items"]
        send(server, *demo_request("before@bigco.example", country=AMERICAS_COUNTRY))
        before = open_deal(admin, "before@bigco.example")
        changed = admin.patch(f"/api/v1/accounts/{account['id']}", json={"is_target": True, "owner": priya})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["is_target"], changed.json()["owner"]) == (True, priya)

        send(server, *demo_request("bob@bigco.example", country=AMERICAS_COUNTRY))
        send(server, *demo_request("carol@other.example", country=AMERICAS_COUNTRY))
        named, other = open_deal(admin, "bob@bigco.example"), open_deal(admin, "carol@other.example")

    assert before["owner"] in reps_of(playbook, "americas") and before["owner"] != priya
    assert named["owner"] == priya and "named accounts" in named["routed_by"] and "owner" in named["routed_by"]
    assert other["owner"] in reps_of(playbook, "americas")


def test_a_rep_marked_away_gets_no_new_deals_and_gets_them_again_when_back(server: Server, playbook: Playbook) -> None:
    team = reps_of(playbook, "americas")
    maya = team[0]
    with server.admin() as admin:
        away = admin.put(f"/api/v1/reps/{maya}/away",
                         json={"away_until": (utc_now() + timedelta(days=3)).isoformat(), "note": "holiday"})
        assert away.status_code == 204, away.text
        status = {rep["email"]: rep for rep in admin.get("/api/v1/reps").json()}
        assert (status[maya]["available"], status[maya]["note"]) == (False, "holiday")
        assert all(status[rep]["available"] for rep in team[1:])

        while_away = [f"away{n}@leads.example" for n in range(6)]
        for email in while_away:
            send(server, *demo_request(email, country=AMERICAS_COUNTRY))
        given_while_away = owners(admin, while_away)

        back = admin.put(f"/api/v1/reps/{maya}/away", json={"away_until": None})
        assert back.status_code == 204, back.text
        assert {rep["email"]: rep["available"] for rep in admin.get("/api/v1/reps").json()}[maya] is True
        after = [f"back{n}@leads.example" for n in range(4)]
        for email in after:
            send(server, *demo_request(email, country=AMERICAS_COUNTRY))
        given_after = owners(admin, after)
        unknown = admin.put("/api/v1/reps/someone@else.example/away", json={"inactive": True})

    assert maya not in given_while_away and Counter(given_while_away) == {rep: 2 for rep in team[1:]}
    assert given_after[0] == maya  # her turn was kept...
    assert Counter(given_after) == {rep: 1 for rep in team}  # ...and she gets no burst of leads on return
    assert_error(unknown, 400, "unknown_rep")


def test_round_robin_gives_each_rep_of_the_team_the_same_number_of_deals_within_one(
    server: Server, playbook: Playbook
) -> None:
    team = reps_of(playbook, "americas")
    emails = [f"buyer{n:02d}@leads.example" for n in range(61)]
    batches = [emails[:20]] + [emails[n:n + 1] for n in range(20, 41)] + [emails[n:n + 4] for n in range(41, 61, 4)]
    for batch in batches:  # in one transaction, one by one, a few at a time
        send(server, *[message for email in batch for message in demo_request(email, country=AMERICAS_COUNTRY)])
    with server.admin() as admin:
        deals: list[dict[str, Any]] = []
        cursor = None
        for _ in range(10):
            answer = admin.get("/api/v1/deals", params={"team": "americas", "limit": 25,
                                                        **({"cursor": cursor} if cursor else {})}).json()
            deals += answer["items"]
            cursor = answer["next_cursor"]
            if cursor is None:
                break
        reps = {rep["email"]: rep["open_deals"] for rep in admin.get("/api/v1/reps").json()}

    given = Counter(deal["owner"] for deal in deals)
    assert len(deals) == len(emails) and set(given) == set(team)
    assert max(given.values()) - min(given.values()) <= 1, given
    assert {rep: reps[rep] for rep in team} == dict(given)
    first_round = [deal["owner"] for deal in sorted(deals, key=lambda deal: deal["id"])[:len(team)]]
    assert sorted(first_round) == sorted(team)  # nobody gets a second lead before everyone had one


# --- the board and the list of deals -------------------------------------------------------------


def test_the_board_has_a_column_per_sales_stage_and_is_filtered_by_owner_team_stage_and_source(
    server: Server, playbook: Playbook
) -> None:
    send(server, *demo_request("eve@emea.example", country=EMEA_COUNTRY))
    send(server, *demo_request("sam@americas.example", country=AMERICAS_COUNTRY),
         {**identify("sam@americas.example"), "context": {"campaign": {"source": "linkedin", "medium": "social"}}})
    send(server, *engaged("mia@americas.example", country="BR"))
    with server.admin() as admin:
        eve, sam, mia = (open_deal(admin, email) for email in
                         ("eve@emea.example", "sam@americas.example", "mia@americas.example"))

        def board(**params: Any) -> dict[str, list[int]]:
            answer = admin.get("/api/v1/board", params=params)
            assert answer.status_code == 200, answer.text
            return {column["stage"]: [deal["id"] for deal in column["deals"]] for column in answer.json()["columns"]}

        everything = board()
        by_owner = board(owner=eve["owner"])
        by_team = board(team="americas")
        by_stage = board(stage="mql")
        by_source = board(source="linkedin")
        nobody = board(owner="nobody@sales.example")
        not_a_column = admin.get("/api/v1/board", params={"stage": "recycled"})
        names = [column["name"] for column in admin.get("/api/v1/board").json()["columns"]]

    assert list(everything) == SALES_COLUMNS
    assert names[:2] == ["Marketing-qualified lead", "Sales-accepted lead"]
    assert everything["sal"] == [sam["id"], eve["id"]] and everything["mql"] == [mia["id"]]  # newest first
    assert by_owner["sal"] == [eve["id"]] and sum(map(len, by_owner.values())) == 1
    assert by_team == {**{stage: [] for stage in SALES_COLUMNS}, "sal": [sam["id"]], "mql": [mia["id"]]}
    assert by_stage == {"mql": [mia["id"]]}
    assert by_source == {**{stage: [] for stage in SALES_COLUMNS}, "sal": [sam["id"]]}
    assert all(ids == [] for ids in nobody.values())
    assert "recycled" in assert_error(not_a_column, 400, "unknown_stage")


def test_deals_come_a_page_at_a_time_newest_first_each_exactly_once(server: Server) -> None:
    emails = [f"p{n}@pages.example" for n in range(7)]
    send(server, *[message for email in emails for message in demo_request(email, country="CA")])
    with server.admin() as admin:
        pages: list[list[str]] = []
        cursor = None
        for _ in range(10):
            answer = admin.get("/api/v1/deals", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
            assert answer.status_code == 200, answer.text
            pages.append([deal["email"] for deal in answer.json()["items"]])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        ids = [deal["id"] for deal in admin.get("/api/v1/deals", params={"limit": 50}).json()["items"]]
        open_ones = admin.get("/api/v1/deals", params={"status": "open", "stage": "sal"}).json()["items"]
        garbage = admin.get("/api/v1/deals", params={"cursor": "garbage!"})

    assert [len(found) for found in pages] == [3, 3, 1]
    assert sorted(email for found in pages for email in found) == sorted(emails) and ids == sorted(ids, reverse=True)
    assert len(open_ones) == 7
    assert_error(garbage, 400, "invalid_cursor")


# --- working a deal ----------------------------------------------------------------------------


def test_sales_accepts_qualifies_and_wins_a_deal_and_the_sql_follow_up_task_goes_to_the_owner(server: Server) -> None:
    email = "win@deal.example"
    send(server, *engaged(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        deal = open_deal(admin, email)
        owner = deal["owner"]
        assert deal["stage"] == "mql"
        accepted = ok(act(admin, deal["id"], "accept", note="looks good"))
        assert admin.get("/api/v1/tasks", params={"owner": owner}).json()["items"] == []  # only on entering sql
        qualified = ok(act(admin, deal["id"], "move", to="sql"))
        tasks = admin.get("/api/v1/tasks", params={"owner": owner}).json()["items"]
        ok(act(admin, deal["id"], "move", to="opportunity"))
        won = ok(act(admin, deal["id"], "win", value=12500))
        customers = admin.get("/api/v1/board", params={"stage": "customer"}).json()["columns"]
        open_now = admin.get("/api/v1/deals", params={"status": "open"}).json()["items"]
        lead = lead_of(admin, email)
        done = admin.post(f"/api/v1/tasks/{tasks[0]['id']}/done")
        open_tasks = admin.get("/api/v1/tasks", params={"owner": owner}).json()["items"]
        all_tasks = admin.get("/api/v1/tasks", params={"owner": owner, "status": "all"}).json()["items"]

    assert (accepted["stage"], accepted["activity"][-1]["note"]) == ("sal", "looks good")
    assert qualified["stage"] == "sql"
    [task] = tasks
    assert (task["owner"], task["deal_id"], task["lead_id"], task["automation"]) == (
        owner, deal["id"], deal["lead_id"], "SQL follow-up")
    assert "discovery call" in task["title"] and task["done_at"] is None
    assert (won["stage"], won["outcome"], won["value"]) == ("customer", "won", 12500)
    assert won["closed_at"] is not None and won["owner"] == owner
    assert [action["action"] for action in won["activity"]] == ["opened", "moved", "moved", "moved", "won"]
    assert won["activity"][-1]["value"] == 12500
    assert [card["id"] for card in customers[0]["deals"]] == [deal["id"]]
    assert open_now == [] and (lead["stage"], lead["highest_stage"]) == ("customer", "customer")
    assert done.status_code == 204 and open_tasks == [] and all_tasks[0]["done_at"] is not None


def test_losing_a_deal_needs_one_of_the_playbooks_lost_reasons_and_a_refusal_changes_nothing(server: Server) -> None:
    email = "lose@deal.example"
    send(server, *demo_request(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        deal = open_deal(admin, email)
        ok(act(admin, deal["id"], "move", to="sql"))
        ok(act(admin, deal["id"], "move", to="opportunity"))
        before = deal_by_id(admin, deal["id"])
        empty = act(admin, deal["id"], "lose", reason="")
        unknown = act(admin, deal["id"], "lose", reason="they went quiet")
        after_refusals = deal_by_id(admin, deal["id"])
        lost = ok(act(admin, deal["id"], "lose", reason="price", note="20% too expensive"))
        board = admin.get("/api/v1/board", params={"stage": "lost"}).json()["columns"][0]["deals"]

    for refused in (empty, unknown):
        assert "price" in assert_error(refused, 422, "reason_required")  # the message lists the reasons
    assert after_refusals == before
    assert (lost["stage"], lost["outcome"], lost["close_reason"]) == ("lost", "lost", "price")
    assert (lost["activity"][-1]["action"], lost["activity"][-1]["note"]) == ("lost", "20% too expensive")
    assert [card["id"] for card in board] == [deal["id"]]


def test_losing_a_deal_without_any_reason_says_reason_required_and_lists_the_reasons(server: Server) -> None:
    email = "lose@deal.example"
    send(server, *demo_request(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        deal = open_deal(admin, email)
        ok(act(admin, deal["id"], "move", to="sql"))
        ok(act(admin, deal["id"], "move", to="opportunity"))
        answer = act(admin, deal["id"], "lose")
        after = deal_by_id(admin, deal["id"])

    assert "price" in assert_error(answer, 422, "reason_required")
    assert after["closed_at"] is None


def test_a_move_the_playbook_does_not_allow_is_refused_409_and_changes_nothing(server: Server) -> None:
    email = "jump@deal.example"
    send(server, *engaged(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        deal = open_deal(admin, email)
        skip = admin.post(f"/api/v1/deals/{deal['id']}/move", json={"to": "customer"})
        win_too_soon = act(admin, deal["id"], "win", value=10)
        lose_too_soon = act(admin, deal["id"], "lose", reason="price")
        nowhere = act(admin, deal["id"], "move", to="heaven")
        after = deal_by_id(admin, deal["id"])
        lead = lead_of(admin, email)

    assert "allowed moves" in assert_error(skip, 409, "move_not_allowed")
    assert_error(win_too_soon, 409, "move_not_allowed")
    assert_error(lose_too_soon, 409, "move_not_allowed")
    assert_error(nowhere, 422, "unknown_stage")
    assert after == deal and lead["stage"] == "mql"


def test_a_closed_deal_cannot_be_acted_on_and_an_unknown_deal_is_a_404(server: Server, playbook: Playbook) -> None:
    email = "closed@deal.example"
    send(server, *demo_request(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        deal = open_deal(admin, email)
        disqualified = ok(act(admin, deal["id"], "disqualify", reason="spam"))
        closed = deal_by_id(admin, deal["id"])
        answers = {
            "accept": act(admin, deal["id"], "accept"),
            "move": act(admin, deal["id"], "move", to="sql"),
            "win": act(admin, deal["id"], "win", value=1),
            "reject": act(admin, deal["id"], "reject", reason="no budget"),
            "reassign": act(admin, deal["id"], "reassign", owner=reps_of(playbook, "emea")[0]),
        }
        after = deal_by_id(admin, deal["id"])
        missing = admin.get("/api/v1/deals/999999")
        missing_action = act(admin, 999999, "accept")

    assert (disqualified["outcome"], disqualified["close_reason"], disqualified["stage"]) == (
        "disqualified", "spam", "disqualified")
    for action, answer in answers.items():
        assert "closed" in assert_error(answer, 409, "deal_closed"), action
    assert after == closed
    assert_error(missing, 404, "deal_not_found")
    assert_error(missing_action, 404, "deal_not_found")


def test_a_lead_handed_back_is_recycled_counted_by_reason_and_gets_a_new_deal_when_it_qualifies_again(
    server: Server,
) -> None:
    email = "again@recycle.example"
    send(server, *engaged(email, country=EMEA_COUNTRY))
    send(server, *demo_request("other@recycle.example", country=EMEA_COUNTRY))
    with server.admin() as admin:
        first = open_deal(admin, email)
        rejected = ok(act(admin, first["id"], "reject", reason="no budget", note="next year"))
        lead = lead_of(admin, email)
        other = open_deal(admin, "other@recycle.example")
        ok(act(admin, other["id"], "reject", reason="no authority"))
        report = admin.get("/api/v1/deals/hand-backs").json()
        empty_report = admin.get("/api/v1/deals/hand-backs",
                                 params={"from": (utc_now() + timedelta(hours=1)).isoformat()}).json()
        assert deals_of(admin, email)[0]["closed_at"] is not None  # no open deal while in nurture

        send(server, track(email, "Webinar Attended", webinar="Pricing deep dive"))  # qualifies again
        second = open_deal(admin, email)
        send(server, track(email, "Demo Requested"))  # a fast track moves the deal; no second deal
        every = deals_of(admin, email)
        first_now = deal_by_id(admin, first["id"])

    assert (rejected["outcome"], rejected["close_reason"], rejected["stage"]) == ("handed_back", "no budget", "recycled")
    assert rejected["closed_at"] is not None and rejected["activity"][-1]["note"] == "next year"
    assert lead["stage"] == "recycled" and [h["reason"] for h in lead["history"]][-1] == "no budget"
    assert report == {"reasons": {"no budget": 1, "no authority": 1}, "total": 2}
    assert empty_report == {"reasons": {}, "total": 0}
    assert second["id"] != first["id"] and second["stage"] == "mql" and second["closed_at"] is None
    assert [d["id"] for d in every] == [second["id"], first["id"]]
    assert [d["closed_at"] is None for d in every] == [True, False]
    assert every[0]["stage"] == "sal"
    assert {**first_now, "scores": None} == {**rejected, "scores": None}  # the old deal stays closed as it was


# --- hand-offs at the same moment -----------------------------------------------------------------

CONCURRENT = 8


def at_once(server: Server, calls: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """POST each (path, body) from its own thread, all released together."""
    barrier = threading.Barrier(len(calls))

    def post(call: tuple[str, dict[str, Any]]) -> httpx.Response:
        with server.admin() as admin:
            barrier.wait(timeout=10)
            return admin.post(call[0], json=call[1])

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(post, calls))


def test_people_moving_the_same_lead_to_sales_at_once_get_one_deal_and_409s_never_a_500(
    server: Server
) -> None:
    for n in range(4):  # every rep of the team has a seat in the rotation: only the deal itself can collide
        send(server, *demo_request(f"warm{n}@race.example", country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        lead_ids = [admin.post("/api/v1/leads", json={"email": f"same{n}@race.example", "fields": {"country": "US"}})
                    .json()["id"] for n in range(4)]
    answers: list[httpx.Response] = []
    for lead_id in lead_ids:
        answers += at_once(server, [(f"/api/v1/leads/{lead_id}/move", {"to": "sal"})] * CONCURRENT)
    with server.admin() as admin:
        deals = [admin.get("/api/v1/deals", params={"lead_id": lead_id}).json()["items"] for lead_id in lead_ids]
        histories = [[(h["from_stage"], h["to_stage"]) for h in admin.get(f"/api/v1/leads/{lead_id}").json()["history"]]
                     for lead_id in lead_ids]

    assert [len(found) for found in deals] == [1] * len(lead_ids)  # the database's unique index holds: one deal
    assert histories == [[(None, "lead"), ("lead", "sal")]] * len(lead_ids)  # moved once, not once per caller
    assert Counter(answer.status_code for answer in answers) == {200: len(lead_ids), 409: len(answers) - len(lead_ids)}


def test_leads_handed_off_at_once_are_all_routed_and_the_rotation_stays_fair(
    server: Server, playbook: Playbook
) -> None:
    team = reps_of(playbook, "americas")
    with server.admin() as admin:
        lead_ids = [admin.post("/api/v1/leads", json={"email": f"lead{n}@race.example", "fields": {"country": "US"}})
                    .json()["id"] for n in range(2 * len(team))]
    answers = at_once(server, [(f"/api/v1/leads/{lead_id}/move", {"to": "sal"}) for lead_id in lead_ids])
    with server.admin() as admin:
        given = Counter(deal["owner"] for deal in admin.get("/api/v1/deals", params={"limit": 100}).json()["items"])

    assert [answer.status_code for answer in answers] == [200] * len(lead_ids), [a.text for a in answers]
    assert given == {rep: 2 for rep in team}


# --- touches ------------------------------------------------------------------------------------


def test_reps_log_calls_emails_meetings_notes_and_the_leads_reply_on_a_deal(server: Server) -> None:
    email = "touched@deal.example"
    send(server, *demo_request(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        [deal] = admin.get("/api/v1/deals").json()["items"]
        path = f"/api/v1/deals/{deal['id']}/touches"
        call = admin.post(path, json={"kind": "call", "outcome": "voicemail", "by": deal["owner"]})
        reply = admin.post(path, json={"kind": "email_reply", "note": "Thursday works"})
        wrong_kind = admin.post(path, json={"kind": "fax"})
        future = admin.post(path, json={"kind": "call", "at": "2199-01-01T00:00:00Z"})
        before_deal = admin.post(path, json={"kind": "note", "at": "2000-01-01T00:00:00Z"})
        first_page = admin.get(path, params={"limit": 1}).json()
        second_page = admin.get(path, params={"limit": 1, "cursor": first_page["next_cursor"]}).json()
        missing = admin.post("/api/v1/deals/999999/touches", json={"kind": "call"})

    assert call.status_code == 201 and (call.json()["by"], call.json()["outcome"]) == (deal["owner"], "voicemail")
    assert reply.status_code == 201 and reply.json()["by"] == "api:admin"
    assert "fax" in assert_error(wrong_kind, 422, "invalid_touch")
    assert "future" in assert_error(future, 422, "invalid_touch")
    assert "before the deal was opened" in assert_error(before_deal, 422, "invalid_touch")
    assert [t["kind"] for t in first_page["items"] + second_page["items"]] == ["email_reply", "call"]
    assert_error(missing, 404, "deal_not_found")
