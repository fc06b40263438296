"""Who sees and moves which deal: reps their own, managers their teams' and the unassigned
queue, marketing reads every deal but moves none, admins everything."""

from __future__ import annotations

from leadrelay.domain.access import (
    PAGES,
    Role,
    User,
    may_move_deal,
    may_open,
    may_see_deal,
    may_see_lead,
    teams_of,
)
from leadrelay.domain.routing import Rep, Routing, Team

ROUTING = Routing(teams={
    "emea": Team("emea", "EMEA", (Rep("lena@x.example"), Rep("tom@x.example")), manager="boss.emea@x.example"),
    "apac": Team("apac", "APAC", (Rep("kenji@x.example"),), manager="boss.apac@x.example"),
}, fallback="unassigned")


def user(role: Role, email: str = "someone@x.example", team: str | None = None) -> User:
    return User(1, email, "Someone", role, team)


def test_a_rep_sees_and_moves_only_their_own_deals() -> None:
    lena = user(Role.SALES_REP, "lena@x.example")
    assert may_see_deal(lena, "emea", "lena@x.example", ROUTING)
    assert may_move_deal(lena, "emea", "lena@x.example", ROUTING)
    assert not may_see_deal(lena, "emea", "tom@x.example", ROUTING)  # a team mate's deal
    assert not may_see_deal(lena, "unassigned", None, ROUTING)
    assert not may_see_deal(lena, "apac", "kenji@x.example", ROUTING)


def test_a_manager_sees_their_teams_deals_and_the_unassigned_queue() -> None:
    boss = user(Role.SALES_MANAGER, "boss.emea@x.example")
    assert teams_of(boss, ROUTING) == {"emea"}
    assert may_move_deal(boss, "emea", "tom@x.example", ROUTING)
    assert may_move_deal(boss, "unassigned", None, ROUTING)
    assert not may_see_deal(boss, "apac", "kenji@x.example", ROUTING)
    named = user(Role.SALES_MANAGER, "deputy@x.example", team="apac")  # a team set by an admin
    assert teams_of(named, ROUTING) == {"apac"} and may_see_deal(named, "apac", "kenji@x.example", ROUTING)


def test_marketing_reads_every_deal_and_lead_but_moves_none() -> None:
    marketer = user(Role.MARKETING)
    assert may_see_deal(marketer, "apac", "kenji@x.example", ROUTING)
    assert not may_move_deal(marketer, "apac", "kenji@x.example", ROUTING)
    assert may_see_lead(marketer, [], ROUTING)


def test_an_admin_sees_and_moves_everything() -> None:
    admin = user(Role.ADMIN)
    assert may_move_deal(admin, "apac", "kenji@x.example", ROUTING) and may_see_lead(admin, [], ROUTING)


def test_a_lead_is_open_to_sales_through_one_of_its_deals() -> None:
    kenji = user(Role.SALES_REP, "kenji@x.example")
    assert may_see_lead(kenji, [("emea", "lena@x.example"), ("apac", "kenji@x.example")], ROUTING)
    assert not may_see_lead(kenji, [("emea", "lena@x.example")], ROUTING)
    assert not may_see_lead(kenji, [], ROUTING)  # a lead never handed to sales is marketing's


def test_each_role_opens_its_own_pages() -> None:
    assert may_open(user(Role.ADMIN), "users") and not may_open(user(Role.SALES_MANAGER), "users")
    assert not may_open(user(Role.MARKETING), "board") and not may_open(user(Role.SALES_REP), "marketing")
    assert all(may_open(user(role), "playbook") for role in Role)
    assert all(PAGES[role] for role in Role)  # every role lands somewhere
