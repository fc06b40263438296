"""Reading the playbook file: the default loads; a wrong one is refused with every problem, each
as FILE:LINE:COL: message pointing at the place to fix."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from leadrelay.adapters.playbook_file import PlaybookError, default_playbook_text, load_playbook, parse_playbook

SMALL = """\
name: Small agreement
version: "1"
stages:
  - id: lead
    team: marketing
    moves: [mql, disqualified]
  - id: mql
    team: sales
    moves: [recycled, disqualified]
  - id: recycled
    team: marketing
    funnel: false
    reasons: hand_back
    moves: [mql]
  - id: disqualified
    team: marketing
    funnel: false
    reasons: disqualify
scoring:
  fit:
    rules:
      - name: software
        when: lead.industry == "software"
        points: 30
  engagement:
    half_life_days: 30
    rules:
      - name: pricing page
        event: page_view
        when: properties.path.startsWith("/pricing")
        points: 10
mql:
  rule: fit >= 40 && engagement >= 40
fast_track:
  - name: demo request
    when: event.name == "demo_request"
    to: mql
disqualify:
  - name: competitor
    when: lead.email_domain == "rival.example"
    reason: competitor
reasons:
  hand_back: [not ready]
  disqualify: [competitor]
"""

PROBLEM = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$")


def refused(text: str, filename: str = "playbook.yaml") -> list[tuple[int, int, str]]:
    """The problems a playbook is refused with, as (line, column, message), read from the error text."""
    with pytest.raises(PlaybookError) as error:
        parse_playbook(text, filename)
    lines = str(error.value).splitlines()
    assert len(lines) == len(error.value.problems)
    found = []
    for line in lines:
        match = PROBLEM.match(line)
        assert match, f"not FILE:LINE:COL: message -> {line!r}"
        assert match["file"] == filename
        found.append((int(match["line"]), int(match["column"]), match["message"]))
    return found


def where(text: str, snippet: str, token: str | None = None) -> tuple[int, int]:
    """The line (1-based) holding `snippet`, and the column of `token` on it."""
    [number] = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    line = text.splitlines()[number - 1]
    return number, line.index(token or snippet) + 1


# --- the default playbook ---------------------------------------------------------------------


def test_the_default_playbook_loads():
    playbook = parse_playbook(default_playbook_text())

    assert list(playbook.stages) == ["lead", "mql", "sal", "sql", "opportunity", "customer", "lost", "recycled", "disqualified"]
    assert playbook.mql_rule.source == "fit >= 40 && engagement >= 40"
    assert playbook.hand_back_reasons == ("not ready", "no budget", "no authority", "no need", "bad timing", "no response")
    assert [fast.to for fast in playbook.fast_track] == ["sal"]
    assert playbook.disqualify_stage == "disqualified"
    assert playbook.scoring.rule_named["webinar attended"].half_life_days == 60
    assert playbook.scoring.rule_named["form"].half_life_days == 30


def test_the_default_playbook_file_loads_from_disk(tmp_path):
    path = tmp_path / "playbook.yaml"
    path.write_text(resources.files("leadrelay").joinpath("default_playbook.yaml").read_text(encoding="utf-8"))

    assert load_playbook(path).name == "Default agreement"


def test_funnel_stages_rank_in_file_order_and_side_stages_do_not_count():
    playbook = parse_playbook(default_playbook_text())

    assert [playbook.rank(s) for s in ("lead", "mql", "sal", "sql", "opportunity", "customer")] == [0, 1, 2, 3, 4, 5]
    assert {playbook.rank(s) for s in ("lost", "recycled", "disqualified")} == {-1}


def test_a_playbook_file_that_cannot_be_read_is_refused_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(PlaybookError) as error:
        load_playbook(missing)

    assert str(error.value).startswith(f"{missing}:1:1: cannot read the playbook")


def test_a_small_valid_playbook_loads():
    assert parse_playbook(SMALL).name == "Small agreement"


# --- one mistake at a time: each is found where it was written --------------------------------

MISTAKES = [
    # (what is wrong, replace this, with this, on the line holding, at, message says)
    ("unknown stage in a move", "moves: [mql, disqualified]", "moves: [mql, sql, disqualified]",
     "moves: [mql, sql", "sql", "stages[0].moves[1]: unknown stage 'sql' (did you mean 'mql'?)"),
    ("bad CEL expression", 'startsWith("/pricing")', "startsWith(",
     "startsWith(", "properties", "scoring.engagement.rules[0].when: invalid condition"),
    ("unknown field", "lead.industry ==", "lead.industy ==",
     "lead.industy", "lead", "unknown field lead.industy in 'lead.industy == \"software\"' (did you mean 'industry'?)"),
    ("unknown name in a condition", "engagement >= 40", "engagment >= 40",
     "engagment >= 40", "fit", "mql.rule: unknown name 'engagment'"),
    ("negative half-life of a rule", "        points: 10\n", "        points: 10\n        half_life_days: -5\n",
     "half_life_days: -5", "-5", "scoring.engagement.rules[0].half_life_days: input should be greater than 0"),
    ("negative half-life of the engagement score", "half_life_days: 30", "half_life_days: -30",
     "half_life_days: -30", "-30", "scoring.engagement.half_life_days: input should be greater than 0"),
    ("duplicate stage", "  - id: disqualified\n", "  - id: mql\n    team: sales\n  - id: disqualified\n",
     "- id: mql\n    team: sales\n  - id: disqualified", None, "duplicate stage 'mql'"),
    ("duplicate key", 'version: "1"\n', 'version: "1"\nversion: "2"\n',
     'version: "2"', "version", "version: duplicate key 'version'"),
    ("unknown key in a stage", "    reasons: hand_back\n", "    reasons: hand_back\n    colour: green\n",
     "colour: green", "green", "stages[2].colour: unknown key 'colour'"),
    ("a condition that is not true or false", "fit >= 40 && engagement >= 40", "fit + 1.0",
     "rule: fit + 1.0", "fit", "mql.rule: condition 'fit + 1.0' must be true or false"),
    ("fast-track to an unknown stage", "    to: mql", "    to: sales",
     "to: sales", "sales", "fast_track[0].to: unknown stage 'sales'"),
    ("disqualify reason not in the list", "    reason: competitor", "    reason: rival",
     "reason: rival", "rival", "disqualify[0].reason: 'rival' is not in reasons.disqualify"),
    ("unknown time zone", 'version: "1"\n', 'version: "1"\ntimezone: Mars/Olympus\n',
     "timezone: Mars", "Mars", "timezone: unknown time zone 'Mars/Olympus'"),
    ("a stage that moves to itself", "moves: [recycled, disqualified]", "moves: [recycled, mql]",
     "moves: [recycled, mql]", "mql", "stages[1].moves: a stage cannot move to itself"),
]


@pytest.mark.parametrize("old, new, snippet, token, message", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_a_wrong_playbook_is_refused_pointing_at_the_mistake(old, new, snippet, token, message):
    assert old in SMALL
    text = SMALL.replace(old, new, 1)
    if "\n" in snippet:  # a mistake spread over lines is reported at its first
        first = text.index(snippet)
        line, column = text.count("\n", 0, first) + 1, None
    else:
        line, column = where(text, snippet, token)

    problems = refused(text)

    assert len(problems) == 1, problems
    [(found_line, found_column, found_message)] = problems
    assert message in found_message
    assert found_line == line
    if column is not None:
        assert found_column == column


def test_invalid_yaml_is_refused_with_the_line_of_the_mistake():
    text = SMALL.replace("    moves: [mql, disqualified]", "    moves: [mql, disqualified")

    [(line, _, message)] = refused(text)

    assert message.startswith("not valid YAML")
    # the unclosed list, or the line where the reader found it unclosed
    assert where(text, "moves: [mql, disqualified")[0] <= line <= where(text, "  - id: mql")[0]


def test_a_playbook_that_is_not_a_mapping_is_refused():
    [(line, column, message)] = refused("- just\n- a list\n")

    assert (line, column) == (1, 1)
    assert "must be a YAML mapping" in message


# --- every problem, not only the first ----------------------------------------------------------

BROKEN = """\
name: Broken agreement
version: "2"
stages:
  - id: lead
    team: marketing
    moves: [mql, sql, disqualified]
  - id: mql
    team: sales
    moves: [recycled]
  - id: recycled
    team: marketing
    funnel: false
    reasons: hand_back
    moves: [mql]
  - id: mql
    team: sales
  - id: disqualified
    team: marketing
    funnel: false
    reasons: disqualify
    colour: grey
scoring:
  fit:
    rules:
      - name: industry
        when: lead.industy == "software"
        points: 20
  engagement:
    rules:
      - name: pricing
        event: page_view
        when: properties.path.startsWith(
        points: 10
      - name: webinar
        event: webinar_attended
        points: 20
        half_life_days: -60
        points: 25
mql:
  rule: fit + 1
fast_track:
  - name: demo request
    when: event.name == "demo_request"
    to: sales
disqualify:
  - name: rival
    when: lead.email_domain == "rival.example"
    reason: rival
reasons:
  hand_back: [not ready]
  disqualify: [competitor, spam]
"""

EVERY_PROBLEM = [
    # (the line holding, the message says)
    ("moves: [mql, sql, disqualified]", "unknown stage 'sql'"),
    ("  - id: mql\n    team: sales\n  - id: disqualified", "duplicate stage 'mql'"),
    ("colour: grey", "unknown key 'colour'"),
    ("lead.industy", "unknown field lead.industy"),
    ("startsWith(", "invalid condition"),
    ("half_life_days: -60", "greater than 0"),
    ("points: 25", "duplicate key 'points'"),
    ("rule: fit + 1", "must be true or false"),
    ("to: sales", "unknown stage 'sales'"),
    ("reason: rival", "'rival' is not in reasons.disqualify"),
]


def test_a_wrong_playbook_is_refused_with_every_problem_listed_at_its_line():
    problems = refused(BROKEN, "broken.yaml")

    missing = []
    for snippet, message in EVERY_PROBLEM:
        line = BROKEN.count("\n", 0, BROKEN.index(snippet)) + 1  # where the snippet begins
        if not any(found_line == line and message in found for found_line, _, found in problems):
            missing.append(f"line {line}: {message}")
    assert not missing, f"not reported: {missing}; reported: {problems}"
    assert [p[:2] for p in problems] == sorted(p[:2] for p in problems)  # in file order


def test_an_unknown_top_level_key_does_not_hide_the_other_problems():
    text = SMALL.replace('version: "1"\n', 'version: "1"\nowner: marketing-ops\n').replace("    to: mql", "    to: sales")

    problems = refused(text)

    messages = " | ".join(message for _, _, message in problems)
    assert "unknown key 'owner'" in messages
    assert "fast_track[0].to: unknown stage 'sales'" in messages


def test_a_wrong_engagement_setting_does_not_hide_the_problems_in_its_rules():
    text = SMALL.replace("half_life_days: 30", "half_life_days: -30").replace('startsWith("/pricing")', "startsWith(")

    problems = refused(text)

    messages = " | ".join(message for _, _, message in problems)
    assert "scoring.engagement.half_life_days" in messages
    assert "scoring.engagement.rules[0].when: invalid condition" in messages


@pytest.mark.parametrize(
    "old, new",
    [
        ("fit >= 40 && engagement >= 40", "fit + 1"),
        ('lead.industry == "software"', "lead.company_size + 1"),
        ('lead.industry == "software"', "lead.industry"),
    ],
    ids=["mql rule gives a number", "fit rule gives a number", "fit rule gives text"],
)
def test_a_condition_that_is_not_true_or_false_is_refused(old, new):
    text = SMALL.replace(old, new)

    [(line, _, message)] = refused(text)

    assert f"condition {new!r} must be true or false" in message
    assert line == where(text, new)[0]
