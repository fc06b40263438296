"""The web app's protections over real HTTP (SQLite and PostgreSQL): CSRF on the login form and
on every change, login rate limits, the session cookie, security headers, no open redirect
after login, a rep's reach limited to their own deals, and pages that need a session."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadrelay.adapters.tables import deals, leads
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.services.users import create_user

from .server import Server

PASSWORD = "a long enough password"


@pytest.fixture
def people(server: Server, playbook: Playbook) -> dict[str, str]:
    """An admin and a user for every rep; one lead handed to the Americas and one to EMEA."""
    create_user(server.app.uow(), playbook, email="admin@leadrelay.example", role="admin", password=PASSWORD,
                now=utc_now())
    for team in playbook.routing.teams.values():
        for rep in team.reps:
            create_user(server.app.uow(), playbook, email=rep.email, role="sales_rep", password=PASSWORD, now=utc_now())
    for email, country in (("ann@acme-us.example", "US"), ("bernd@firma-de.example", "DE")):
        batch = [{"type": "identify", "userId": email, "messageId": uuid.uuid4().hex,
                  "traits": {"email": email, "country": country}},
                 {"type": "track", "userId": email, "messageId": uuid.uuid4().hex, "event": "Demo Requested"}]
        with server.tracker() as tracker:
            assert tracker.post("/v1/batch", json={"batch": batch}).status_code == 200
    with server.app.engine.connect() as connection:
        owners = {email: owner for email, owner in connection.execute(
            select(leads.c.email, deals.c.owner).join(deals, deals.c.lead_id == leads.c.id))}
    return {"us_owner": owners["ann@acme-us.example"], "de_owner": owners["bernd@firma-de.example"]}


def browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Accept": "text/html"}, timeout=30)


def log_in(client: httpx.Client, email: str, password: str = PASSWORD, next_page: str = "/") -> httpx.Response:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": next_page})


def csrf(client: httpx.Client, path: str = "/board") -> str:
    return re.search(r'data-csrf="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]


def deal_id(server: Server, email: str) -> int:
    with server.app.engine.connect() as connection:
        return connection.execute(select(deals.c.id).join(leads, leads.c.id == deals.c.lead_id)
                                  .where(leads.c.email == email)).scalar_one()


def test_pages_need_a_session(server: Server) -> None:
    with browser(server) as client:
        page = client.get("/board")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/board"
        call = client.post("/board/deals/1", json={"action": "move", "to": "sal"}, headers={"Accept": "application/json"})
        assert call.status_code == 401 and call.json()["code"] == "unauthorized"


def test_the_login_form_needs_its_csrf_token(server: Server, people: dict[str, str]) -> None:
    with browser(server) as client:
        forged = client.post("/login", data={"email": "admin@leadrelay.example", "password": PASSWORD,
                                             "csrf_token": "forged"})
        assert forged.status_code == 403 and "leadrelay_session" not in forged.cookies
        assert log_in(client, "admin@leadrelay.example").status_code == 303


def test_the_session_cookie_is_http_only_and_same_site(server: Server, people: dict[str, str]) -> None:
    with browser(server) as client:
        answer = log_in(client, "admin@leadrelay.example")
    cookie = next(value for name, value in answer.headers.multi_items()
                  if name == "set-cookie" and value.startswith("leadrelay_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie


def test_a_change_without_the_csrf_token_is_refused(server: Server, people: dict[str, str]) -> None:
    us_deal = deal_id(server, "ann@acme-us.example")
    with browser(server) as client:
        log_in(client, people["us_owner"])
        refused = client.post(f"/board/deals/{us_deal}", json={"action": "reject", "reason": "no need"},
                              headers={"Accept": "application/json"})
        assert refused.status_code == 403 and "reload the page" in refused.json()["message"]
        forged = client.post(f"/board/deals/{us_deal}", json={"action": "reject", "reason": "no need"},
                             headers={"Accept": "application/json", "X-CSRF-Token": "forged"})
        assert forged.status_code == 403
        logout = client.post("/logout")
        assert logout.status_code == 403  # a form without the token does not even log out
        token = csrf(client)
        moved = client.post(f"/board/deals/{us_deal}", json={"action": "reject", "reason": "no need"},
                            headers={"Accept": "application/json", "X-CSRF-Token": token})
        assert moved.status_code == 200 and moved.json()["stage"] == "recycled"


def test_a_rep_cannot_reach_another_reps_deal(server: Server, people: dict[str, str]) -> None:
    de_deal = deal_id(server, "bernd@firma-de.example")
    with browser(server) as client:
        log_in(client, people["us_owner"])
        token = csrf(client)
        assert client.get(f"/deals/{de_deal}").status_code == 403
        moved = client.post(f"/board/deals/{de_deal}", json={"action": "move", "to": "sql"},
                            headers={"Accept": "application/json", "X-CSRF-Token": token})
        assert moved.status_code == 403
        board = client.get("/board", params={"owner": people["de_owner"]}).text  # the filter cannot widen it
        assert "bernd@firma-de.example" not in board and "ann@acme-us.example" in board


def test_repeated_wrong_passwords_are_answered_429(server: Server, people: dict[str, str]) -> None:
    with browser(server) as client:
        for _ in range(server.app.settings.login_max_failures):
            assert log_in(client, "admin@leadrelay.example", "wrong guess").status_code == 401
        locked = log_in(client, "admin@leadrelay.example")
        assert locked.status_code == 429 and "too many failed logins" in locked.text.lower()


@pytest.mark.parametrize("next_page", ["//evil.example/board", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_to_another_site(server: Server, people: dict[str, str], next_page: str) -> None:
    with browser(server) as client:
        answer = log_in(client, "admin@leadrelay.example", next_page=next_page)
    assert answer.status_code == 303 and answer.headers["location"] == "/board"


def test_pages_carry_security_headers(server: Server, people: dict[str, str]) -> None:
    with browser(server) as client:
        for path in ("/login", "/static/app.css"):
            headers = client.get(path).headers
            assert "script-src 'self';" in headers["content-security-policy"]
            assert "'unsafe-inline'" not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
            assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_an_error_is_a_page_for_a_browser_and_json_for_the_api(server: Server, people: dict[str, str]) -> None:
    with browser(server) as client:
        log_in(client, "admin@leadrelay.example")
        page = client.get("/leads/999999")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "no lead" in page.text.lower()
    with server.admin() as api:
        answer: Any = api.get("/api/v1/leads/999999")
        assert answer.status_code == 404 and answer.json()["code"] == "lead_not_found"
