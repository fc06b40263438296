"""Lead routing: the first matching rule decides who gets a lead; inside a team every rep gets a fair
share (by weight, or by room), limits are never exceeded, and joining or coming back brings no burst."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.domain.routing import (
    Assignment,
    Rep,
    Routing,
    RoutingRule,
    Seat,
    Team,
    Workload,
    route,
)

from .builders import T0, Rule

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MINUTE = timedelta(minutes=1)

GERMANY = Rule(lambda c: c["lead"]["country"] == "DE", "lead", source='lead.country == "DE"')
ENTERPRISE = Rule(lambda c: c["lead"]["company_size"] >= 1000, "lead", source="lead.company_size >= 1000")
NAMED = Rule(lambda c: c["account"]["named"], "account", source="account.named")


def lead(country: str = "DE", company_size: int = 50, named: bool = False) -> dict:
    return {"lead": {"country": country, "company_size": company_size}, "account": {"named": named}}


def team(id: str, *emails: str, **options) -> Team:
    return Team(id, id.upper(), tuple(Rep(email) for email in emails), **options)


def routing(*teams: Team, rules: tuple[RoutingRule, ...] = ()) -> Routing:
    """A routing that sends every lead to the first team, unless rules are given."""
    return Routing(rules=rules or (RoutingRule("Everyone", team=teams[0].id),), teams={t.id: t for t in teams})


class Desk:
    """The service's side, in memory: seats and workloads kept between hand-offs, a clock that moves on."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self.seats: dict[tuple[str, str], Seat] = {}
        self.workload: dict[str, Workload] = {}
        self.now = T0

    def hand_off(self, context: dict | None = None, **options) -> Assignment:
        self.now += MINUTE
        return route(lead() if context is None else context, self.routing, self.seats, self.workload,
                     now=self.now, **options)

    def owners(self, n: int, **options) -> Counter[str | None]:
        return Counter(self.hand_off(**options).owner for _ in range(n))

    def assigned(self, team_id: str) -> dict[str, int]:
        return {email: seat.assigned for (t, email), seat in self.seats.items() if t == team_id}


# --- rules ------------------------------------------------------------------------------------------

def test_rules_are_tried_in_order_and_the_first_match_decides():
    desk = Desk(routing(team("dach", "hans@x.example"), team("enterprise", "eve@x.example"),
                        team("inside", "ian@x.example"),
                        rules=(RoutingRule("Enterprise", ENTERPRISE, "enterprise"),
                               RoutingRule("DACH", GERMANY, "dach"),
                               RoutingRule("Everyone else", team="inside"))))

    big_german = desk.hand_off(lead("DE", 5000))
    small_german = desk.hand_off(lead("DE", 10))
    small_french = desk.hand_off(lead("FR", 10))

    assert (big_german.owner, big_german.team, big_german.rule) == ("eve@x.example", "enterprise", "Enterprise")
    assert (small_german.owner, small_german.rule) == ("hans@x.example", "DACH")
    assert (small_french.owner, small_french.rule) == ("ian@x.example", "Everyone else")
    assert small_german.reason == "rule 'DACH' → team 'dach', round robin"


def test_a_lead_no_rule_matches_waits_in_the_fallback_queue():
    desk = Desk(routing(team("dach", "hans@x.example"), rules=(RoutingRule("DACH", GERMANY, "dach"),)))

    assert desk.hand_off(lead("FR")) == Assignment("unassigned", None, None, "no routing rule matched")
    assert desk.seats == {} and desk.workload == {}


def test_a_rule_naming_no_team_sends_the_lead_to_the_fallback_queue():
    desk = Desk(routing(team("dach", "hans@x.example"), rules=(RoutingRule("Students", GERMANY),)))

    assert desk.hand_off(lead("DE")) == Assignment("unassigned", None, "Students",
                                                   "rule 'Students' → queue 'unassigned'")


def test_a_rule_naming_an_unknown_team_sends_the_lead_to_the_fallback_queue_saying_so():
    desk = Desk(routing(team("dach", "hans@x.example"), rules=(RoutingRule("Nordics", team="nordics"),)))

    result = desk.hand_off()

    assert (result.team, result.owner, result.rule) == ("unassigned", None, "Nordics")
    assert "'nordics'" in result.reason and "does not exist" in result.reason


# --- named accounts ---------------------------------------------------------------------------------

NAMED_RULES = (RoutingRule("Named accounts", NAMED, account_owner=True), RoutingRule("Everyone", team="inside"))


def test_the_account_owner_gets_a_named_account_lead_whatever_their_workload():
    desk = Desk(routing(team("inside", "ian@x.example", max_open_deals=1), team("strategic", "sam@x.example"),
                        rules=NAMED_RULES))
    desk.workload["sam@x.example"] = Workload(open_deals=500, new_deals=50)

    result = desk.hand_off(lead(named=True), account_owner="sam@x.example")

    assert result == Assignment("strategic", "sam@x.example", "Named accounts",
                                "rule 'Named accounts' → the account's owner")
    assert desk.workload["sam@x.example"] == Workload(open_deals=501, new_deals=51)
    assert desk.seats[("strategic", "sam@x.example")].assigned == 1


def test_an_away_account_owner_is_passed_over_and_the_next_rule_decides():
    desk = Desk(routing(team("inside", "ian@x.example"), team("strategic", "sam@x.example"), rules=NAMED_RULES))

    result = desk.hand_off(lead(named=True), account_owner="sam@x.example", away={"sam@x.example"})

    assert (result.owner, result.rule) == ("ian@x.example", "Everyone")


def test_an_account_owner_rule_needs_an_owner_and_its_condition():
    desk = Desk(routing(team("inside", "ian@x.example"), team("strategic", "sam@x.example"), rules=NAMED_RULES))

    assert desk.hand_off(lead(named=True)).owner == "ian@x.example"
    assert desk.hand_off(lead(named=False), account_owner="sam@x.example").owner == "ian@x.example"


def test_an_account_owner_lead_goes_to_the_rules_team_else_the_owners_team_else_the_fallback_queue():
    teams = (team("inside", "ian@x.example"), team("strategic", "sam@x.example"))
    with_team = Desk(routing(*teams, rules=(RoutingRule("Named", account_owner=True, team="inside"),)))
    without_team = Desk(routing(*teams, rules=(RoutingRule("Named", account_owner=True),)))

    assert with_team.hand_off(account_owner="sam@x.example").team == "inside"
    assert without_team.hand_off(account_owner="sam@x.example").team == "strategic"
    assert without_team.hand_off(account_owner="olga@x.example") == Assignment(
        "unassigned", "olga@x.example", "Named", "rule 'Named' → the account's owner")


def test_a_named_account_lead_does_not_cost_the_owner_a_turn_in_the_rotation():
    desk = Desk(routing(team("inside", "ann@x.example", "bob@x.example"), rules=NAMED_RULES))
    desk.owners(4)
    turn = desk.seats[("inside", "ann@x.example")].last_turn

    desk.hand_off(lead(named=True), account_owner="ann@x.example")

    assert desk.seats[("inside", "ann@x.example")].last_turn == turn
    assert desk.assigned("inside") == {"ann@x.example": 3, "bob@x.example": 2}


# --- nobody can take it ---------------------------------------------------------------------------

def test_when_every_rep_is_away_or_at_capacity_the_lead_waits_in_the_fallback_queue_saying_why():
    desk = Desk(routing(team("emea", "ann@x.example", "bob@x.example", max_open_deals=2),
                        rules=(RoutingRule("EMEA", team="emea"),)))
    desk.workload["bob@x.example"] = Workload(open_deals=2)

    result = desk.hand_off(away={"ann@x.example"})

    assert result == Assignment("unassigned", None, "EMEA",
                                "rule 'EMEA': every rep of team 'emea' is away or at capacity")
    assert desk.seats == {} and desk.workload["bob@x.example"] == Workload(open_deals=2)


def test_a_team_without_reps_leaves_the_lead_in_the_fallback_queue():
    desk = Desk(routing(team("emea"), rules=(RoutingRule("EMEA", team="emea"),)))

    assert desk.hand_off() == Assignment("unassigned", None, "EMEA", "rule 'EMEA': team 'emea' has no reps")


def test_a_rep_at_the_new_deals_limit_of_the_period_gets_no_more_until_the_next_period():
    desk = Desk(routing(team("emea", "ann@x.example", "bob@x.example", max_new_deals=2)))

    assert desk.owners(5) == {"ann@x.example": 2, "bob@x.example": 2, None: 1}

    for load in desk.workload.values():
        load.new_deals = 0  # a new day: the service counts again
    assert desk.owners(2) == {"ann@x.example": 1, "bob@x.example": 1}


def test_a_reps_own_limit_overrides_the_teams():
    senior, junior = Rep("sam@x.example", max_open_deals=10, max_new_deals=8), Rep("jo@x.example")
    emea = Team("emea", "EMEA", (senior, junior), max_open_deals=2, max_new_deals=5)

    assert emea.limits(senior) == (10, 8)
    assert emea.limits(junior) == (2, 5)
    assert Desk(routing(emea)).owners(20) == {"sam@x.example": 8, "jo@x.example": 2, None: 10}


# --- fairness ----------------------------------------------------------------------------------------

def test_round_robin_over_3000_leads_gives_every_rep_the_same_count_give_or_take_one():
    emails = ("ann@x.example", "bob@x.example", "cy@x.example", "dee@x.example", "eli@x.example", "flo@x.example",
              "gus@x.example")
    desk = Desk(routing(team("emea", *emails)))

    counts = desk.owners(3000)

    assert set(counts) == set(emails)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert desk.assigned("emea") == dict(counts)


def test_round_robin_goes_round_in_a_fixed_order():
    desk = Desk(routing(team("emea", "cy@x.example", "ann@x.example", "bob@x.example")))

    owners = [desk.hand_off().owner for _ in range(6)]

    assert owners == ["ann@x.example", "bob@x.example", "cy@x.example"] * 2


def test_weighted_3_2_1_over_6000_leads_gives_each_rep_its_exact_share_give_or_take_one():
    reps = (Rep("ann@x.example", weight=3), Rep("bob@x.example", weight=2), Rep("cy@x.example", weight=1))
    desk = Desk(routing(Team("emea", "EMEA", reps, method="weighted")))

    counts = desk.owners(6000)

    for rep in reps:
        assert abs(counts[rep.email] - 6000 * rep.weight / 6) <= 1


@BOUNDED
@given(weights=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=6),
       leads=st.integers(min_value=0, max_value=300))
def test_weighted_reps_have_exactly_their_share_after_every_full_round_and_never_drift_far(weights, leads):
    reps = tuple(Rep(f"rep{i}@x.example", weight=w) for i, w in enumerate(weights))
    desk = Desk(routing(Team("emea", "EMEA", reps, method="weighted")))
    counts: Counter[str | None] = Counter()
    for n in range(1, leads + 1):
        counts[desk.hand_off().owner] += 1
        for rep in reps:
            share = n * rep.weight / sum(weights)
            assert abs(counts[rep.email] - share) < len(reps)
            if n % sum(weights) == 0:
                assert counts[rep.email] == share


def assert_no_burst(picks: list[str | None], emails: list[str], newcomer: str) -> None:
    """Over any first m picks the newcomer gets at most its share plus one; over all of them everyone gets k ± 1."""
    for m in range(1, len(picks) + 1):
        assert picks[:m].count(newcomer) <= m / len(emails) + 1, picks[:m]
    k = len(picks) / len(emails)
    counts = Counter(picks)
    assert all(abs(counts[email] - k) <= 1 for email in emails), counts


def test_adding_a_rep_midway_changes_no_ones_count_and_gives_the_newcomer_no_burst():
    emails = ["ann@x.example", "bob@x.example", "cy@x.example"]
    desk = Desk(routing(team("emea", *emails)))
    desk.owners(301)  # mid-round: the team is not at a round's end
    before = desk.assigned("emea")

    desk.routing = routing(team("emea", *emails, "dee@x.example"))
    assert desk.assigned("emea") == before
    picks = [desk.hand_off().owner for _ in range(50 * 4)]

    assert_no_burst(picks, [*emails, "dee@x.example"], "dee@x.example")
    assert {email: desk.assigned("emea")[email] - before[email] for email in emails} == {
        email: picks.count(email) for email in emails}


def test_a_rep_back_from_away_gets_no_burst_and_no_catch_up():
    emails = ["ann@x.example", "bob@x.example", "cy@x.example"]
    desk = Desk(routing(team("emea", *emails)))
    desk.owners(30)

    while_away = desk.owners(200, away={"cy@x.example"})
    picks = [desk.hand_off().owner for _ in range(40 * 3)]

    assert while_away == {"ann@x.example": 100, "bob@x.example": 100}
    assert_no_burst(picks, emails, "cy@x.example")
    assert desk.assigned("emea")["cy@x.example"] == 10 + picks.count("cy@x.example")


def test_a_new_rep_goes_first_among_the_reps_whose_turn_it_is():
    emails = ["ann@x.example", "bob@x.example", "cy@x.example"]
    desk = Desk(routing(team("emea", *emails)))
    desk.owners(4)  # ann has had her second lead; bob and cy are waiting for theirs

    desk.routing = routing(team("emea", *emails, "abe@x.example"))

    assert [desk.hand_off().owner for _ in range(4)] == ["abe@x.example", "bob@x.example", "cy@x.example",
                                                          "ann@x.example"]


def test_a_rep_removed_from_the_team_and_added_back_gets_no_burst():
    emails = ["ann@x.example", "bob@x.example", "cy@x.example"]
    desk = Desk(routing(team("emea", *emails)))
    desk.owners(30)
    desk.routing = routing(team("emea", "ann@x.example", "bob@x.example"))
    desk.owners(100)
    desk.routing = routing(team("emea", *emails))
    picks = [desk.hand_off().owner for _ in range(30)]

    assert_no_burst(picks, emails, "cy@x.example")


def test_the_chosen_reps_seat_and_workload_are_updated_and_created_when_missing():
    desk = Desk(routing(team("emea", "ann@x.example", "bob@x.example")))
    desk.seats[("emea", "bob@x.example")] = Seat("emea", "bob@x.example", last_turn=0.0, assigned=7,
                                                 last_assigned_at=T0)

    result = desk.hand_off()

    assert result.owner == "ann@x.example"
    assert desk.seats[("emea", "ann@x.example")] == Seat("emea", "ann@x.example", last_turn=0.0, assigned=1,
                                                          last_assigned_at=desk.now, dirty=True)
    assert desk.seats[("emea", "bob@x.example")].dirty is False
    assert desk.workload == {"ann@x.example": Workload(open_deals=1, new_deals=1)}


def test_routing_needs_a_timezone_aware_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        route(lead(), routing(team("emea", "ann@x.example")), {}, {}, now=T0.replace(tzinfo=None))


def test_a_rep_weight_must_be_positive():
    with pytest.raises(ValueError, match="weight"):
        Rep("ann@x.example", weight=0)


def test_a_rep_belongs_to_the_first_team_listing_them():
    both = routing(team("emea", "ann@x.example"), team("dach", "ann@x.example", "bob@x.example"))

    assert both.team_of("ann@x.example").id == "emea"
    assert both.team_of("bob@x.example").id == "dach"
    assert both.team_of("olga@x.example") is None


# --- capacity ----------------------------------------------------------------------------------------

def test_the_capacity_method_gives_the_lead_to_the_rep_with_the_most_room():
    reps = (Rep("ann@x.example", max_open_deals=4), Rep("bob@x.example", max_open_deals=12), Rep("cy@x.example"))
    desk = Desk(routing(Team("emea", "EMEA", reps, method="capacity", max_open_deals=8)))
    desk.workload.update({"ann@x.example": Workload(open_deals=2), "bob@x.example": Workload(open_deals=3),
                          "cy@x.example": Workload(open_deals=4)})

    result = desk.hand_off()

    assert result.owner == "bob@x.example"  # 3 of 12 open, against 2 of 4 and 4 of 8
    assert result.reason == "rule 'Everyone' → team 'emea', most room"


def test_the_capacity_method_without_limits_gives_the_lead_to_the_rep_with_fewest_open_deals():
    desk = Desk(routing(team("emea", "ann@x.example", "bob@x.example", "cy@x.example", method="capacity")))
    desk.workload.update({"ann@x.example": Workload(open_deals=4), "bob@x.example": Workload(open_deals=6)})

    assert desk.owners(4) == {"cy@x.example": 4}
    assert desk.hand_off().owner == "ann@x.example"  # 4 each for ann and cy: round robin, ann's turn


def test_the_capacity_method_with_equal_room_goes_round_robin():
    desk = Desk(routing(team("emea", "ann@x.example", "bob@x.example", method="capacity", max_open_deals=100)))

    owners = [desk.hand_off().owner for _ in range(6)]

    assert owners == ["ann@x.example", "bob@x.example"] * 3


EMAILS = [f"rep{i}@x.example" for i in range(5)]
LIMIT = st.one_of(st.none(), st.integers(min_value=0, max_value=6))
ANY_METHOD = st.sampled_from(["round_robin", "weighted", "capacity"])


@st.composite
def teams(draw, method=ANY_METHOD) -> Team:
    emails = draw(st.lists(st.sampled_from(EMAILS), min_size=1, max_size=5, unique=True))
    reps = tuple(Rep(email, weight=draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])), max_open_deals=draw(LIMIT),
                     max_new_deals=draw(LIMIT)) for email in emails)
    return Team("emea", "EMEA", reps, method=draw(method), max_open_deals=draw(LIMIT), max_new_deals=draw(LIMIT))


STEP = st.one_of(
    st.tuples(st.just("route"), st.frozensets(st.sampled_from(EMAILS), max_size=3)),
    st.tuples(st.just("close"), st.sampled_from(EMAILS)),
    st.tuples(st.just("new period"), st.none()),
)


@BOUNDED
@given(emea=teams(), steps=st.lists(STEP, max_size=80), data=st.data())
def test_no_sequence_of_routings_and_closed_deals_takes_a_rep_past_a_limit(emea, steps, data):
    desk = Desk(routing(emea))
    for rep in emea.reps:
        max_open, max_new = emea.limits(rep)
        desk.workload[rep.email] = Workload(data.draw(st.integers(0, 6 if max_open is None else max_open)),
                                            data.draw(st.integers(0, 6 if max_new is None else max_new)))
    for action, value in steps:
        if action == "close" and desk.workload.get(value, Workload()).open_deals > 0:
            desk.workload[value].open_deals -= 1
        elif action == "new period":
            for load in desk.workload.values():
                load.new_deals = 0
        elif action == "route":
            before = copy.deepcopy(desk.workload)
            result = desk.hand_off(away=value)
            free = [rep.email for rep in emea.reps if rep.email not in value
                    and all(limit is None or count < limit for limit, count
                            in zip(emea.limits(rep), (before[rep.email].open_deals, before[rep.email].new_deals)))]
            if result.owner is None:
                assert not free and result.team == "unassigned"
            else:
                assert result.owner in free
            if result.owner and emea.method == "capacity" and all(emea.limits(r)[0] for r in emea.reps):
                room = {r.email: before[r.email].open_deals / emea.limits(r)[0] for r in emea.reps if r.email in free}
                assert room[result.owner] == min(room.values())
        for rep in emea.reps:
            max_open, max_new = emea.limits(rep)
            assert max_open is None or desk.workload[rep.email].open_deals <= max_open
            assert max_new is None or desk.workload[rep.email].new_deals <= max_new


@BOUNDED
@given(emea=teams(), aways=st.lists(st.frozensets(st.sampled_from(EMAILS)), max_size=60))
def test_an_away_rep_is_never_chosen(emea, aways):
    desk = Desk(routing(emea))
    for away in aways:
        result = desk.hand_off(away=away)
        assert result.owner not in away


@BOUNDED
@given(emea=teams(), aways=st.lists(st.frozensets(st.sampled_from(EMAILS), max_size=2), max_size=60))
def test_the_same_hand_offs_give_the_same_owners(emea, aways):
    def run() -> tuple[list[Assignment], dict, dict]:
        desk = Desk(routing(emea))
        return [desk.hand_off(away=away) for away in aways], desk.seats, desk.workload

    assert run() == run()


@BOUNDED
@given(emea=teams(method=st.just("round_robin")).map(
           lambda t: Team(t.id, t.name, tuple(Rep(r.email) for r in t.reps))),
       leads=st.integers(min_value=0, max_value=200))
def test_round_robin_counts_never_differ_by_more_than_one(emea, leads):
    desk = Desk(routing(emea))
    counts = Counter({rep.email: 0 for rep in emea.reps})
    for _ in range(leads):
        counts[desk.hand_off().owner] += 1
        assert max(counts.values()) - min(counts.values()) <= 1
