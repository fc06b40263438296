"""Playbook conditions in CEL: safe, checked at load, and false when they cannot be decided."""

from __future__ import annotations

import pytest

from leadrelay.adapters.expressions import CelCondition, ExpressionError

LEAD = ("lead", "fit", "engagement", "total", "stage")


def test_a_condition_answers_true_or_false_for_a_lead():
    rule = CelCondition("fit >= 40 && engagement >= 40", LEAD)

    assert rule({"fit": 45.0, "engagement": 40.0}) is True
    assert rule({"fit": 45.0, "engagement": 39.9}) is False
    assert rule.variables == frozenset({"fit", "engagement"})
    assert rule.source == "fit >= 40 && engagement >= 40"


def test_a_condition_about_a_field_the_lead_does_not_have_does_not_fire():
    rule = CelCondition('lead.title.matches("(?i)student")', LEAD)

    assert rule({"lead": {"email": "ada@acme.example"}}) is False
    assert rule({"lead": {"title": "PhD Student"}}) is True


def test_a_condition_on_values_of_the_wrong_type_does_not_fire():
    rule = CelCondition("lead.company_size >= 200", LEAD)

    assert rule({"lead": {"company_size": "lots"}}) is False


def test_the_same_question_asked_again_gets_the_same_answer():
    rule = CelCondition('lead.industry in ["software", "fintech"]', LEAD)

    answers = [rule({"lead": {"industry": industry}}) for industry in ("software", "retail", "software", "retail")]

    assert answers == [True, False, True, False]


def test_a_condition_naming_something_it_may_not_read_is_refused_with_a_suggestion():
    with pytest.raises(ExpressionError, match=r"unknown name 'engagment'.*did you mean 'engagement'"):
        CelCondition("engagment > 10", LEAD)


def test_a_condition_reading_an_unknown_field_is_refused_with_a_suggestion():
    with pytest.raises(ExpressionError, match=r"unknown field lead.industy .*did you mean 'industry'"):
        CelCondition('lead.industy == "software"', LEAD, {"lead": ["industry", "title"]})


def test_a_condition_that_does_not_parse_is_refused():
    with pytest.raises(ExpressionError, match="invalid condition 'fit >='"):
        CelCondition("fit >=", LEAD)


def test_a_condition_cannot_run_python(tmp_path):
    marker = tmp_path / "ran"
    try:
        rule = CelCondition(f'__import__("os").system("touch {marker}") == 0', LEAD)
    except ExpressionError:
        return  # refused at load: it can never run
    assert rule({}) is False
    assert not marker.exists()


@pytest.mark.parametrize("source", ['lead.title.maches("(?i)student")', 'startsWith(lead.title, "VP")'])
def test_a_condition_calling_a_function_cel_does_not_have_is_refused(source):
    """A misspelt function would make the rule silently never fire."""
    with pytest.raises(ExpressionError):
        CelCondition(source, LEAD)
