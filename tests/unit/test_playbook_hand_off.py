"""The playbook's hand-off sections — routing, automations, hand-back, lost reasons — are read
and checked like the rest: every mistake reported where it is, in words both teams understand."""

from __future__ import annotations

from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.automations import EmailAction, SetAction, TaskAction, WebhookAction

from .test_playbook_file import SMALL, refused, where

ROUTING = """\
routing:
  period: week
  fallback: inbox
  teams:
    - id: emea
      name: EMEA
      method: weighted
      max_open_deals: 20
      manager: boss@seller.example
      reps:
        - {email: Lena@Seller.example, weight: 2}
        - {email: tom@seller.example, max_new_deals: 3}
  rules:
    - name: named accounts
      when: account.is_target
      account_owner: true
    - name: Europe
      when: lead.country in ["DE", "FR"]
      team: emea
"""

AUTOMATIONS = """\
automations:
  - name: tell the rep
    trigger: deal_assigned
    do:
      - email: owner
        subject: "New lead: {{ lead.name or lead.email }}"
        body: "{{ deal.routed_by }}"
  - name: follow up
    trigger: stage_entered
    stage: mql
    when: lead.industry == "software"
    do:
      - task: Call them
        due_hours: 4
      - webhook: crm.sync
      - set: {timeframe: now}
  - name: hot
    trigger: score_crossed
    score: engagement
    above: 60
    do:
      - email: sales-lead@seller.example
        subject: Hot lead
        body: "{{ lead.email }} is at {{ scores.engagement }}"
"""


def test_the_default_playbook_routes_by_territory_and_tells_the_owner():
    playbook = parse_playbook(default_playbook_text())

    assert [rule.team for rule in playbook.routing.rules] == [None, "emea", "apac", "americas"]
    assert playbook.routing.rules[0].account_owner
    assert {team.method for team in playbook.routing.teams.values()} == {"round_robin", "weighted", "capacity"}
    assert playbook.lost_reasons and playbook.hand_back_stage == "recycled"
    assert [automation.on for automation in playbook.automations] == ["deal_assigned", "stage_entered", "hand_back"]


def test_routing_teams_reps_and_rules_are_read():
    playbook = parse_playbook(SMALL + ROUTING)
    routing = playbook.routing
    team = routing.teams["emea"]

    assert (routing.period, routing.fallback) == ("week", "inbox")
    assert [rep.email for rep in team.reps] == ["lena@seller.example", "tom@seller.example"]  # emails compared without case
    assert team.limits(team.reps[1]) == (20, 3) and team.manager == "boss@seller.example"
    assert routing.rules[1].when({"lead": {"country": "DE"}, "account": {}})
    assert not routing.rules[1].when({"lead": {"country": "US"}, "account": {}})


def test_automations_are_read_with_their_triggers_conditions_and_actions():
    playbook = parse_playbook(SMALL + AUTOMATIONS)
    tell, follow, hot = playbook.automations

    email = tell.actions[0]
    assert isinstance(email, EmailAction) and email.to == "owner"
    assert email.subject({"lead": {"name": "Ann"}}) == "New lead: Ann"
    assert email.subject({"lead": {"email": "ann@acme.io"}}) == "New lead: ann@acme.io"  # a missing name falls back
    assert [type(action) for action in follow.actions] == [TaskAction, WebhookAction, SetAction]
    assert follow.actions[0].due_hours == 4 and follow.actions[1].event == "crm.sync"
    assert follow.actions[2].values == {"timeframe": "now"}
    assert (hot.on, hot.score, hot.above) == ("score_crossed", "engagement", 60)


def test_a_template_renders_missing_values_as_nothing_and_cannot_reach_python_internals():
    playbook = parse_playbook(SMALL + AUTOMATIONS)
    body = playbook.automations[2].actions[0].body

    assert body({"lead": {}, "scores": {}}) == " is at "
    sneaky = parse_playbook(SMALL + AUTOMATIONS.replace("{{ lead.email }}", "{{ lead.__class__.__mro__ }}"))
    assert "dict" not in sneaky.automations[2].actions[0].body({"lead": {}, "scores": {}})


def test_routing_mistakes_are_each_reported_where_they_are():
    text = SMALL + ROUTING.replace("team: emea", "team: emia").replace("fallback: inbox", "fallback: emea") \
        .replace("method: weighted", "method: random").replace("account.is_target", "account.is_targt") \
        .replace("{email: tom@seller.example, max_new_deals: 3}", "{email: lena@seller.example}")
    problems = refused(text)
    messages = [message for _, _, message in problems]

    assert any("unknown team 'emia' (did you mean 'emea'?)" in m for m in messages)
    assert any("routing.fallback: 'emea' is a team" in m for m in messages)
    assert any("routing.teams[0].method" in m and "round_robin" in m for m in messages)
    assert any("is_targt" in m for m in messages)
    assert any("'lena@seller.example' is listed twice" in m for m in messages)
    assert (where(text, "team: emia", "emia")[0], ) == (next(line for line, _, m in problems if "emia" in m), )


def test_a_rule_must_pick_a_team_or_the_account_owner():
    text = SMALL + "routing:\n  teams: []\n  rules:\n    - name: lost\n      when: fit > 10\n"
    [(line, _, message)] = refused(text)

    assert "picks a `team`" in message and line == where(text, "- name: lost")[0]


def test_automation_mistakes_are_each_reported():
    text = SMALL + AUTOMATIONS.replace("trigger: deal_assigned", "trigger: deal_asigned") \
        .replace("stage: mql", "stage: mqll").replace("subject: Hot lead", "subject: \"{{ lead.email | nofilter }}\"") \
        .replace("set: {timeframe: now}", "set: {timeframee: now}").replace("- task: Call them", "- call: them")
    messages = [message for _, _, message in refused(text)]

    assert any("automations[0].trigger" in m and "stage_entered" in m for m in messages)
    assert any("unknown stage 'mqll'" in m for m in messages)
    assert any("invalid template" in m and "nofilter" in m for m in messages)
    assert any("unknown field 'timeframee'" in m for m in messages)
    assert any("exactly one of task, email, webhook, set" in m for m in messages)


def test_score_crossed_needs_a_line_and_only_it_has_one():
    text = SMALL + AUTOMATIONS.replace("    above: 60\n", "")
    messages = [message for _, _, message in refused(text)]

    assert any("`above`" in m for m in messages)


def test_an_email_goes_to_the_owner_the_manager_or_an_address():
    text = SMALL + AUTOMATIONS.replace("email: owner", "email: the boss")
    messages = [message for _, _, message in refused(text)]

    assert any("'the boss' is not `owner`, `manager` or an address" in m for m in messages)


def test_a_lost_stage_can_require_the_playbooks_lost_reasons():
    text = default_playbook_text().replace("  lost: [price, competitor, no decision, timing, product fit]\n", "")
    messages = [message for _, _, message in refused(text)]

    assert any("reasons.lost is empty" in m for m in messages)
