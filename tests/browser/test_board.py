"""The sales board in Chromium: a rep drags a card from MQL to SAL and it stays there after a
reload; a move the playbook forbids is refused with its reason; a card moves by keyboard too;
a rejected card reaches marketing's hand-backs with its reason; another team's deal is 403."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import DE_LEAD, MARKETER, US_LEAD, Site


def card(page, email_name: str):  # type: ignore[no-untyped-def]
    return page.locator(".card.deal", has_text=email_name)


def test_a_rep_drags_a_card_from_mql_to_sal_and_it_stays_there_after_reload(site: Site) -> None:
    deal = site.deal_of(US_LEAD)
    page = site.login(deal["owner"])
    expect(page).to_have_url(f"{site.url}/board")
    mql, sal = page.locator('.column[data-stage="mql"]'), page.locator('.column[data-stage="sal"]')
    expect(mql.locator(".card", has_text="Ann Buyer")).to_be_visible()
    expect(page.locator(".card", has_text="Bernd Käufer")).to_have_count(0)  # EMEA's deal is not on this board
    site.shoot(page, "board-before")
    mql.locator(".card", has_text="Ann Buyer").drag_to(sal)
    expect(sal.locator(".card", has_text="Ann Buyer")).to_be_visible()
    expect(page.locator("#toast")).to_contain_text("Sales-accepted lead")
    page.reload()
    expect(sal.locator(".card", has_text="Ann Buyer")).to_be_visible()
    expect(mql.locator(".card", has_text="Ann Buyer")).to_have_count(0)
    assert site.deal_of(US_LEAD)["stage"] == "sal"
    site.shoot(page, "board-after")


def test_a_move_the_playbook_forbids_is_refused_with_its_reason(site: Site) -> None:
    page = site.login(site.deal_of(US_LEAD)["owner"])
    page.locator('.column[data-stage="mql"] .card', has_text="Ann Buyer").drag_to(
        page.locator('.column[data-stage="opportunity"]'))
    toast = page.locator("#toast.error")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("mql")
    expect(toast).to_contain_text("opportunity")
    expect(page.locator('.column[data-stage="mql"] .card', has_text="Ann Buyer")).to_be_visible()
    assert site.deal_of(US_LEAD)["stage"] == "mql"
    site.shoot(page, "forbidden-move")


def test_a_card_moves_with_the_keyboard(site: Site) -> None:
    page = site.login(site.deal_of(US_LEAD)["owner"])
    page.locator(".card.deal", has_text="Ann Buyer").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#move-to").select_option("sal")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('.column[data-stage="sal"] .card', has_text="Ann Buyer")).to_be_visible()
    expect(page.locator('.column[data-stage="sal"] .card', has_text="Ann Buyer")).to_be_focused()


def test_a_rejected_card_reaches_marketing_hand_backs_with_its_reason(site: Site) -> None:
    page = site.login(site.deal_of(US_LEAD)["owner"])
    page.locator(".card.deal", has_text="Ann Buyer").get_by_role("button", name="Reject…").click()
    dialog = page.locator("#move-dialog")
    dialog.locator("#move-reason").select_option("bad timing")
    dialog.get_by_label("Note").fill("Budget opens in Q3, call back then")
    site.shoot(page, "reject-dialog")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".card.deal", has_text="Ann Buyer")).to_have_count(0)

    marketing = site.login(MARKETER)
    marketing.get_by_role("link", name="Hand-backs").click()
    row = marketing.locator("tr.hand-back", has_text="Ann Buyer")
    expect(row).to_contain_text("Bad timing")
    expect(row).to_contain_text("Budget opens in Q3, call back then")
    expect(marketing.locator("#hand-back-reasons")).to_contain_text("Bad timing")
    site.shoot(marketing, "marketing-hand-backs")
    marketing.get_by_role("link", name="In nurture").click()
    expect(marketing.locator("#nurture")).to_contain_text("Ann Buyer")
    expect(marketing.locator("tr.sequence").first).to_be_visible()  # the playbook's sequences, with their numbers
    site.shoot(marketing, "marketing-nurture")


def test_a_rep_cannot_open_another_teams_deal(site: Site) -> None:
    us_owner, emea = site.deal_of(US_LEAD)["owner"], site.deal_of(DE_LEAD)
    page = site.login(us_owner)
    answer = page.goto(f"{site.url}/deals/{emea['id']}")
    assert answer is not None and answer.status == 403
    expect(page.locator("h1")).to_contain_text("Not yours")
    answer = page.goto(f"{site.url}/leads/{emea['lead_id']}")
    assert answer is not None and answer.status == 403
    moved = page.request.post(f"{site.url}/board/deals/{emea['id']}", data={"action": "move", "to": "sal"},
                              headers={"X-CSRF-Token": page.locator("body").get_attribute("data-csrf") or ""})
    assert moved.status == 403
    assert site.deal_of(DE_LEAD)["stage"] == "mql"
    site.shoot(page, "forbidden-deal")
