"""Browser tests: a real LeadRelay server on a free loopback port with a fresh database, driven
by Playwright in Debian's Chromium (never a downloaded browser). Each test gets a new database
with one user per role and a few leads handed to sales; screenshots of the pages go to
tests/browser/artifacts/ (git-ignored)."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.server import Server, running_server
from playwright.sync_api import sync_playwright
from sqlalchemy import Engine, select

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.tables import deals, leads
from leadrelay.domain.access import Role
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.services.users import create_user

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "a long enough password"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` (.ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@dataclass
class Site:
    server: Server
    engine: Engine
    playbook: Playbook
    browser: Any
    name: str

    @property
    def url(self) -> str:
        return self.server.url

    def login(self, email: str, password: str = PASSWORD, *, width: int = 1280) -> Any:
        """A new browser context (no cookies), logged in as this user: the page after login."""
        context = self.browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{self.url}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        return page

    def shoot(self, page: Any, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{self.name}-{name}.png"), full_page=True)

    def send(self, *messages: dict[str, Any]) -> None:
        with self.server.tracker() as tracker:
            answer = tracker.post("/v1/batch", json={"batch": list(messages)})
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text

    def deal_of(self, email: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(deals).join(leads, leads.c.id == deals.c.lead_id).where(leads.c.email == email)
                .order_by(deals.c.id.desc())
            ).first()
        assert row is not None, f"no deal for {email}"
        return dict(row._mapping)


def identify(email: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": email, "messageId": uuid.uuid4().hex, "traits": {"email": email, **traits}}


def track(email: str, event: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": email, "messageId": uuid.uuid4().hex, "event": event, "properties": properties}


def engaged(email: str, **traits: Any) -> list[dict[str, Any]]:
    """A VP of a software company who downloads, attends a webinar and fills a form: the MQL
    rule hands the lead to sales (fit 50, engagement 45)."""
    return [identify(email, industry="software", title="VP Marketing", **traits),
            track(email, "Downloaded", title="ROI guide"), track(email, "Webinar Attended", webinar="Scaling sales"),
            track(email, "Form Submitted", form="Contact us")]


MANAGER = "head.of.sales@sales.leadrelay.example"
ADMIN, MARKETER = "admin@leadrelay.example", "marketing@leadrelay.example"
US_LEAD, DE_LEAD = "ann.buyer@acme-us.example", "bernd.kaeufer@firma-de.example"


@pytest.fixture
def site(browser: Any, playbook: Playbook, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    """A server on a fresh SQLite database: an admin, a marketer, the head of sales (manager of
    every team), a user for every rep of the playbook; one lead handed to the Americas team
    (US) and one to EMEA (DE)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'leadrelay.db'}")
    migrate(engine)
    with running_server(engine, playbook, worker_in_server=False) as server:
        now = utc_now()
        people = [(ADMIN, Role.ADMIN), (MARKETER, Role.MARKETING), (MANAGER, Role.SALES_MANAGER)]
        people += [(rep.email, Role.SALES_REP) for team in playbook.routing.teams.values() for rep in team.reps]
        for email, role in dict(people).items():
            create_user(server.app.uow(), playbook, email=email, role=role.value, password=PASSWORD, now=now)
        found = Site(server, engine, playbook, browser, re.sub(r"\W+", "-", request.node.name).strip("-"))
        found.send(*engaged(US_LEAD, name="Ann Buyer", company="Acme US", country="US"))
        found.send(*engaged(DE_LEAD, name="Bernd Käufer", company="Firma DE", country="DE"))
        yield found
    engine.dispose()
