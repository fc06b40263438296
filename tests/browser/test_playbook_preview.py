"""The playbook page's "Try a change" shows the backtest: recent history replayed under the
candidate and the playbook in force, side by side, and the leads that would change status."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import func, select

from leadrelay.adapters.tables import stage_changes

from .conftest import DE_LEAD, MARKETER, US_LEAD, Site


def test_a_candidate_is_backtested_on_recent_leads_before_anyone_applies_it(site: Site) -> None:
    with site.engine.connect() as connection:
        moves_before = connection.scalar(select(func.count()).select_from(stage_changes))
    page = site.login(MARKETER)
    page.goto(f"{site.url}/playbook")
    text = page.locator("#candidate-text").input_value()
    page.locator("#candidate-text").fill(text.replace("rule: fit >= 40 && engagement >= 40",
                                                      "rule: fit >= 40 && engagement >= 60"))
    page.get_by_role("button", name="Check and preview").click()
    table = page.locator("#backtest-table")
    row = table.locator("tr", has_text="hand-offs (MQLs and fast tracks)")
    expect(row.locator("td")).to_have_text(["2", "0"])  # both demo leads qualified at engagement 45
    expect(table.locator("tr", has_text="MQLs per week").locator("td").nth(1)).to_have_text("0")
    expect(page.locator("#backtest")).to_contain_text("2 leads change status")
    expect(page.locator("#backtest-changes")).to_contain_text(US_LEAD)
    expect(page.locator("#backtest-changes")).to_contain_text(DE_LEAD)
    expect(page.locator("#backtest-changes tbody tr").first).to_contain_text("handed off")
    site.shoot(page, "playbook-backtest")
    with site.engine.connect() as connection:  # a preview writes nothing
        assert connection.scalar(select(func.count()).select_from(stage_changes)) == moves_before
