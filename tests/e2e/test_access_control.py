"""Access control over real HTTP, route by route. The routes are read from the server's own route
table, so a route added later is covered without touching this file:

- without a key or a session, every route but the public ones answers 401 (a page a browser asks
  for: a redirect to the login form), and every answer carries the security headers;
- a write key gets 403 everywhere but the tracking calls;
- a rep, with a key bound to them or with their login session, gets 403 or 404 on every route
  that names another rep's deal or lead — on SQLite and on PostgreSQL — while their own deal
  opens and moves;
- a key past its rate limit gets 429 with Retry-After.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine, select

from leadrelay.adapters.tables import deals, leads
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.entrypoints.api import create_app
from leadrelay.services.api_keys import create_key
from leadrelay.services.users import create_user

from .server import Server, running_server

PASSWORD = "a long enough password"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/login"), ("POST", "/login")}
PUBLIC_PREFIXES = ("/email/", "/static")
TRACKING = "/v1/"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # the route's template, e.g. /api/v1/deals/{deal_id}

    def url(self, **ids: object) -> str:
        values = {"deal_id": 1, "lead_id": 1, "email": "someone@example.com", "token": "x", **ids}
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values.get(m.group(1), 1)), self.path)

    @property
    def public(self) -> bool:
        return (self.method, self.path) in PUBLIC or self.path.startswith(PUBLIC_PREFIXES)

    @property
    def page(self) -> bool:
        return not self.path.startswith(("/api/", "/v1/", "/metrics", "/openapi.json", "/docs", "/redoc"))


def routes(server: Server) -> list[Call]:
    """Every (method, route) the server answers, from its route table."""
    found = set()
    for context in iter_route_contexts(create_app(server.app).routes):
        for method in getattr(context.original_route, "methods", None) or ():
            if method != "HEAD" and context.path:
                found.add(Call(method, context.path))
    assert len(found) > 80, "the route table was not read"
    return sorted(found, key=lambda call: (call.path, call.method))


# a body each write route accepts, so that what refuses the call is the access check, not the input
PAGE_FORMS = {"/leads/{lead_id}/touches": {"data": {"kind": "call"}},
              "/board/deals/{deal_id}": {"json": {"action": "move", "to": "sql"}}}


def send(client: httpx.Client, call: Call, *, headers: dict[str, str] | None = None, **ids: object) -> httpx.Response:
    body = PAGE_FORMS.get(call.path, {"json": {}}) if call.method in WRITES else {}
    return client.request(call.method, call.url(**ids), headers={"Accept": "application/json", **(headers or {})},
                          **body)


def assert_security_headers(answer: httpx.Response, call: Call) -> None:
    policy = answer.headers.get("content-security-policy", "")
    scripts = policy.split("script-src", 1)[1].split(";")[0] if "script-src" in policy else ""
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in scripts, f"{call}: CSP {policy!r}"
    assert answer.headers.get("x-frame-options") == "DENY", f"{call}: frames allowed"
    assert answer.headers.get("x-content-type-options") == "nosniff", f"{call}: sniffing allowed"


@sqlite_only
def test_every_route_but_the_public_ones_needs_a_key_or_a_session(server: Server) -> None:
    calls = routes(server)
    wrong = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for call in calls:
            answer = send(client, call)
            assert_security_headers(answer, call)
            if call.public:
                if answer.status_code == 401:
                    wrong.append(f"{call.method} {call.path}: public, but answered 401")
            elif answer.status_code != 401:
                wrong.append(f"{call.method} {call.path}: {answer.status_code} without credentials")
            if not call.public and call.page and call.method == "GET":  # a browser is sent to the login form
                page = client.get(call.url(), headers={"Accept": "text/html"})
                if page.status_code != 303 or not page.headers.get("location", "").startswith("/login?next="):
                    wrong.append(f"GET {call.path} (page): {page.status_code}, not a redirect to /login")
            bad_key = send(client, call, headers={"Authorization": "Bearer lr_not-a-key"})
            if not call.public and bad_key.status_code != 401:
                wrong.append(f"{call.method} {call.path}: {bad_key.status_code} with a wrong key")
    assert not wrong, "\n".join(wrong)
    assert sum(not call.public for call in calls) > 80


@sqlite_only
def test_a_write_key_only_tracks(server: Server) -> None:
    wrong = []
    with server.tracker() as tracker, httpx.Client(base_url=server.url, timeout=30) as client:
        for call in routes(server):
            if call.public:
                continue
            if call.path.startswith(TRACKING):
                answer = tracker.request(call.method, call.url(), json={"batch": []} if call.path == "/v1/batch" else {
                    "type": "track", "userId": "a@b.example", "event": "x"})
                if answer.status_code in (401, 403):
                    wrong.append(f"{call.method} {call.path}: tracking refused the write key ({answer.status_code})")
                continue
            answer = send(client, call, headers={"Authorization": f"Bearer {server.write_key}"})
            if answer.status_code != 403:
                wrong.append(f"{call.method} {call.path}: {answer.status_code} with a write key")
    assert not wrong, "\n".join(wrong)


@dataclass
class Team:
    server: Server
    us_owner: str
    de_owner: str
    us_deal: int
    de_deal: int
    us_lead: int
    de_lead: int
    rep_key: str


@pytest.fixture
def team(server: Server, playbook: Playbook) -> Team:
    """A user for every rep; one lead handed to the Americas and one to EMEA; a key bound to the
    Americas' owner."""
    for playbook_team in playbook.routing.teams.values():
        for rep in playbook_team.reps:
            create_user(server.app.uow(), playbook, email=rep.email, role="sales_rep", password=PASSWORD,
                        now=utc_now())
    for email, country in (("ann@acme-us.example", "US"), ("bernd@firma-de.example", "DE")):
        batch = [{"type": "identify", "userId": email, "messageId": uuid.uuid4().hex,
                  "traits": {"email": email, "country": country}},
                 {"type": "track", "userId": email, "messageId": uuid.uuid4().hex, "event": "Demo Requested"}]
        with server.tracker() as tracker:
            assert tracker.post("/v1/batch", json={"batch": batch}).status_code == 200
    with server.app.engine.connect() as connection:
        rows = {row.email: row for row in connection.execute(
            select(leads.c.email, leads.c.id.label("lead_id"), deals.c.id.label("deal_id"), deals.c.owner)
            .join(deals, deals.c.lead_id == leads.c.id))}
    us, de = rows["ann@acme-us.example"], rows["bernd@firma-de.example"]
    assert us.owner and de.owner and us.owner != de.owner
    key, _ = create_key(server.app.uow(), name="ann's laptop", scope="user", user=us.owner, now=utc_now())
    return Team(server, us.owner, de.owner, us.deal_id, de.deal_id, us.lead_id, de.lead_id, key)


def logged_in(server: Server, email: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, headers={"Accept": "text/html"}, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 303
    csrf = re.search(r'data-csrf="([^"]+)"', client.get("/board").text).group(1)  # type: ignore[union-attr]
    return client, csrf


@pytest.fixture
def rep_session(team: Team) -> Iterator[tuple[httpx.Client, str]]:
    client, csrf = logged_in(team.server, team.us_owner)
    try:
        yield client, csrf
    finally:
        client.close()


def test_a_rep_reaches_no_other_reps_deal_or_lead_by_any_route(team: Team, rep_session: tuple[httpx.Client, str]) -> None:
    session, csrf = rep_session
    calls = [call for call in routes(team.server) if "{deal_id}" in call.path or "{lead_id}" in call.path]
    assert len(calls) >= 15
    with team.server.admin() as admin:
        before = admin.get(f"/api/v1/deals/{team.de_deal}").json()
    wrong = []
    with httpx.Client(base_url=team.server.url, timeout=30) as client:
        for call in calls:
            ids = {"deal_id": team.de_deal, "lead_id": team.de_lead}
            by_key = send(client, call, headers={"Authorization": f"Bearer {team.rep_key}"}, **ids)
            by_session = send(session, call, headers={"X-CSRF-Token": csrf}, **ids)
            for how, answer in (("key", by_key), ("session", by_session)):
                if answer.status_code not in (403, 404):
                    wrong.append(f"{call.method} {call.url(**ids)} by the rep's {how}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)
    with team.server.admin() as admin:  # and nothing changed
        after = admin.get(f"/api/v1/deals/{team.de_deal}").json()
    assert (after["stage"], after["owner"], after["activity"]) == (before["stage"], before["owner"], before["activity"])


def test_a_rep_reads_and_moves_their_own_deal_through_the_api(team: Team,
                                                              rep_session: tuple[httpx.Client, str]) -> None:
    session, csrf = rep_session
    key = {"Authorization": f"Bearer {team.rep_key}"}
    with httpx.Client(base_url=team.server.url, headers=key, timeout=30) as client:
        assert client.get(f"/api/v1/deals/{team.us_deal}").status_code == 200
        assert client.get(f"/api/v1/leads/{team.us_lead}").status_code == 200
        assert client.get("/api/v1/deals").status_code == 403  # a list must be narrowed to what they may see
        mine = client.get("/api/v1/deals", params={"owner": team.us_owner}).json()["items"]
        assert [deal["id"] for deal in mine] == [team.us_deal]
        assert client.get("/api/v1/deals", params={"owner": team.de_owner}).status_code == 403
        assert client.get("/api/v1/webhooks").status_code == 403 and client.get("/api/v1/audit").status_code == 403
        assert client.post(f"/api/v1/deals/{team.us_deal}/reassign", json={"owner": team.de_owner}).status_code == 403
        moved = client.post(f"/api/v1/deals/{team.us_deal}/move", json={"to": "sql"})
        assert moved.status_code == 200 and moved.json()["stage"] == "sql"
    refused = session.post(f"/api/v1/deals/{team.us_deal}/touches", json={"kind": "call"},
                           headers={"Accept": "application/json"})
    assert refused.status_code == 403  # a session's change needs its CSRF token
    logged = session.post(f"/api/v1/deals/{team.us_deal}/touches", json={"kind": "call"},
                          headers={"Accept": "application/json", "X-CSRF-Token": csrf})
    assert logged.status_code == 201 and logged.json()["by"] == f"api:{team.us_owner}"
    with team.server.admin() as admin:
        entries = admin.get("/api/v1/audit", params={"subject": f"deal:{team.us_deal}"}).json()["items"]
    assert [(e["actor"], e["action"], e["detail"]["to_stage"]) for e in entries] == [
        (f"api:{team.us_owner}", "deal.move", "sql")]


@sqlite_only
def test_a_key_past_its_rate_limit_is_answered_429(engine: Engine, playbook: Playbook) -> None:
    with running_server(engine, playbook, api_rate_per_minute=5) as server, server.admin() as admin:
        answers = [admin.get("/api/v1/playbook") for _ in range(7)]
        other_key, _ = create_key(server.app.uow(), name="another", scope="admin", now=utc_now())
        other = admin.get("/api/v1/playbook", headers={"Authorization": f"Bearer {other_key}"})
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert answers[-1].json()["code"] == "rate_limited" and int(answers[-1].headers["retry-after"]) >= 1
    assert other.status_code == 200  # the count is per key


@sqlite_only
def test_the_api_documentation_needs_a_key_and_allows_only_its_own_scripts(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/docs", headers={"Accept": "text/html"}).headers.get("location") == "/login?next=/docs"
        page = client.get("/docs", headers={"Authorization": f"Bearer {server.admin_key}"})
    policy = page.headers["content-security-policy"]
    assert page.status_code == 200 and "'sha256-" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


@sqlite_only
def test_the_audit_page_is_for_admins(team: Team, playbook: Playbook) -> None:
    create_user(team.server.app.uow(), playbook, email="admin@leadrelay.example", role="admin", password=PASSWORD,
                now=utc_now())
    with httpx.Client(base_url=team.server.url, headers={"Authorization": f"Bearer {team.rep_key}"}) as rep_api:
        assert rep_api.post(f"/api/v1/deals/{team.us_deal}/move", json={"to": "sql"}).status_code == 200
    admin, _ = logged_in(team.server, "admin@leadrelay.example")
    rep, _ = logged_in(team.server, team.us_owner)
    try:
        page = admin.get("/audit", params={"action": "deal."})
        assert page.status_code == 200 and "Audit log" in page.text
        assert "deal.move" in page.text and f"api:{team.us_owner}" in page.text and "user.create" not in page.text
        assert rep.get("/audit").status_code == 403 and "/audit" not in rep.get("/board").text
    finally:
        admin.close()
        rep.close()
