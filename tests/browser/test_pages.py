"""The pages of each role in Chromium: logging in lands each role on its page with its
navigation; the lead page shows the score breakdown and the hand-off; logging a touch meets the
SLA clock; marketing's views; the playbook page previews a candidate and an admin applies it,
with the version history showing the diff; the admin page adds a user; phone width reads."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import ADMIN, MANAGER, MARKETER, PASSWORD, US_LEAD, Site

ROLES = [  # who, the page they land on, the navigation they see
    (ADMIN, "/board", ["Board", "Marketing", "Dashboard", "Playbook", "Users", "Audit log"]),
    (MARKETER, "/marketing", ["Marketing", "Dashboard", "Playbook"]),
    (MANAGER, "/board", ["Board", "Dashboard", "Playbook"]),
]


@pytest.mark.parametrize(("email", "landing", "navigation"), ROLES, ids=["admin", "marketing", "sales_manager"])
def test_each_role_logs_in_to_its_own_pages(site: Site, email: str, landing: str, navigation: list[str]) -> None:
    page = site.login(email)
    expect(page).to_have_url(f"{site.url}{landing}")
    expect(page.locator("header nav a")).to_have_text(navigation)
    site.shoot(page, "landing")
    if "Board" in navigation:  # the manager sees every team's deal (the head of sales manages them all)
        expect(page.locator(".card.deal")).to_have_count(2)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{site.url}/login")
    answer = page.goto(f"{site.url}{landing}")
    assert answer is not None
    expect(page).to_have_url(f"{site.url}/login?next={landing}")


def test_a_sales_rep_lands_on_their_board_and_marketing_pages_are_closed_to_them(site: Site) -> None:
    page = site.login(site.deal_of(US_LEAD)["owner"])
    expect(page).to_have_url(f"{site.url}/board")
    expect(page.locator("header nav a")).to_have_text(["Board", "Playbook"])
    answer = page.goto(f"{site.url}/marketing")
    assert answer is not None and answer.status == 403


def test_a_wrong_password_is_refused_on_the_form(site: Site) -> None:
    page = site.login(ADMIN, "not the password")
    expect(page).to_have_url(f"{site.url}/login")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")


def test_the_lead_page_shows_the_score_breakdown_and_the_hand_off(site: Site) -> None:
    page = site.login(site.deal_of(US_LEAD)["owner"])
    page.get_by_role("link", name="Ann Buyer").click()
    expect(page.locator("h1")).to_have_text("Ann Buyer")
    fit = page.locator("#fit-breakdown")
    expect(fit).to_contain_text("target industry")
    expect(fit).to_contain_text("+25")
    expect(fit).to_contain_text("decision maker")
    engagement = page.locator("#engagement-breakdown")
    for rule in ("content download", "webinar", "form"):
        expect(engagement).to_contain_text(rule)
    expect(page.locator("section", has_text="What marketing knew")).to_contain_text("ROI guide")
    expect(page.locator("#timeline")).to_contain_text("Webinar attended")
    site.shoot(page, "lead")


def test_logging_a_touch_meets_the_first_touch_clock(site: Site) -> None:
    deal = site.deal_of(US_LEAD)
    page = site.login(deal["owner"])
    page.goto(f"{site.url}/leads/{deal['lead_id']}")
    first_touch = page.locator("tr.sla-clock", has_text="First touch")
    expect(first_touch).to_have_attribute("data-status", "running")
    form = page.locator("#touch-form")
    form.get_by_label("Kind").select_option("call")
    form.get_by_label("Outcome").fill("connected")
    form.get_by_role("textbox", name="Note").fill("Wants a demo next week")
    form.get_by_role("button", name="Log it").click()
    expect(page.get_by_role("status")).to_contain_text("Call logged")
    expect(page.locator("tr.sla-clock", has_text="First touch")).to_have_attribute("data-status", "met")
    expect(page.locator("#touches")).to_contain_text("Wants a demo next week")
    site.shoot(page, "lead-touch-logged")


def test_marketing_sees_the_mql_queue_and_sources(site: Site) -> None:
    page = site.login(MARKETER)
    queue = page.locator("#mql-queue")
    expect(queue).to_contain_text("Ann Buyer")
    expect(queue).to_contain_text("Bernd Käufer")
    site.shoot(page, "marketing-queue")
    page.get_by_role("link", name="Sources").click()
    expect(page.locator("#sources tr")).not_to_have_count(1)
    site.shoot(page, "marketing-sources")


def test_the_playbook_page_previews_a_candidate_and_an_admin_applies_it(site: Site, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # applying writes ./playbook.yaml when none was named
    page = site.login(ADMIN)
    page.get_by_role("link", name="Playbook").click()
    expect(page.locator("#mql-rule")).to_have_text("fit >= 40 && engagement >= 40")
    expect(page.locator("#sla")).to_contain_text("First touch")
    expect(page.locator("tr.version")).to_have_count(1)  # the one the server started with
    site.shoot(page, "playbook")
    text = page.locator("#candidate-text").input_value()

    page.locator("#candidate-text").fill(text.replace("rule: fit >= 40 && engagement >= 40", "rule: fit >= 40 &&"))
    page.get_by_role("button", name="Check and preview").click()
    expect(page.locator("li.problem")).to_have_count(1)
    expect(page.locator("li.problem")).to_contain_text("line")
    expect(page.get_by_role("button", name="Apply it")).to_have_count(0)

    page.goto(f"{site.url}/playbook")
    page.locator("#candidate-text").fill(text.replace("rule: fit >= 40 && engagement >= 40",
                                                      "rule: fit >= 40 && engagement >= 30"))
    page.get_by_role("button", name="Check and preview").click()
    expect(page.locator("#changes")).to_contain_text("MQL rule: fit >= 40 && engagement >= 40 → fit >= 40 && engagement >= 30")
    site.shoot(page, "playbook-preview")
    page.get_by_label("What and why").fill("More MQLs for the new reps")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Apply it").click()
    expect(page.get_by_role("status")).to_contain_text("in force")
    expect(page.locator("#mql-rule")).to_have_text("fit >= 40 && engagement >= 30")
    expect(page.locator("tr.version").first).to_contain_text(ADMIN)
    expect(page.locator("tr.version").first).to_contain_text("More MQLs for the new reps")
    page.locator("tr.version").first.get_by_role("link", name="What changed").click()
    expect(page.locator("pre.diff .add")).to_contain_text(["engagement >= 30"])
    expect(page.locator("pre.diff .del")).to_contain_text(["engagement >= 40"])
    site.shoot(page, "playbook-version")
    assert "engagement >= 30" in (tmp_path / "playbook.yaml").read_text()


def test_an_admin_adds_a_user_who_can_then_log_in(site: Site) -> None:
    page = site.login(ADMIN)
    page.get_by_role("link", name="Users").click()
    form = page.locator("#new-user")
    form.get_by_label("Email").fill("new.marketer@leadrelay.example")
    form.get_by_label("Name").fill("Nora New")
    form.get_by_label("Role").select_option("marketing")
    form.get_by_label("Password").fill("short")
    form.get_by_role("button", name="Add").click()  # the browser refuses a short password before sending
    expect(page.locator("tr.user", has_text="new.marketer@leadrelay.example")).to_have_count(0)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_contain_text("Created new.marketer@leadrelay.example")
    site.shoot(page, "users")
    newcomer = site.login("new.marketer@leadrelay.example")
    expect(newcomer).to_have_url(f"{site.url}/marketing")


def test_pages_read_at_phone_width(site: Site) -> None:
    deal = site.deal_of(US_LEAD)
    page = site.login(deal["owner"], width=390)
    expect(page.locator(".card.deal", has_text="Ann Buyer")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # nothing wider than the screen
    site.shoot(page, "board-phone")
    page.goto(f"{site.url}/leads/{deal['lead_id']}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    site.shoot(page, "lead-phone")



def test_the_dashboard_draws_its_charts(site: Site) -> None:
    page = site.login(MANAGER)
    page.get_by_role("link", name="Dashboard").click()
    charts = page.locator("figure.chart svg[role=img]")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 6
    for name in ("the stage each reached", "SLA clocks met", "by source", "against the agreed volume"):
        expect(page.locator(f'figure.chart svg[aria-label*="{name}"]')).to_have_count(1)
    drawn = page.evaluate("""[...document.querySelectorAll('figure.chart svg')].map(
        svg => [svg.getBoundingClientRect().width, svg.querySelectorAll('path').length])""")
    assert all(width > 200 and paths > 10 for width, paths in drawn), drawn  # laid out and actually drawn
    expect(page.locator("#figures")).to_contain_text("Leads created")
    site.shoot(page, "dashboard")
    with page.expect_download() as download:
        page.get_by_role("link", name="Meeting report").click()
    assert download.value.suggested_filename.startswith("meeting-")
