"""The reports' pure calculations: periods in the playbook's time zone, nearest-rank percentiles,
how sure a rate is, attribution shares, the sentences comparing two periods, CSV."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import InvalidInput
from leadrelay.reports.attribution import Touchpoint, credit, shares
from leadrelay.reports.compare import Figure, format_value, most, sentence, sentences
from leadrelay.reports.export import Table, to_csv
from leadrelay.reports.periods import Period
from leadrelay.reports.stats import percentile, rank, rate, wilson

# --- periods ------------------------------------------------------------------------------


def test_a_period_is_whole_local_days_turned_into_utc_instants() -> None:
    march = Period.of(date(2026, 3, 1), date(2026, 3, 31), "Europe/Berlin")
    assert march.start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # CET, UTC+1
    assert march.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # CEST since 29 March, UTC+2
    assert march.days == 31


def test_the_period_before_has_the_same_number_of_days() -> None:
    march = Period.of(date(2026, 3, 1), date(2026, 3, 31), "UTC")
    assert march.previous() == Period(date(2026, 1, 29), date(2026, 2, 28), "UTC")
    week = Period.of(date(2026, 3, 9), date(2026, 3, 15), "UTC")
    assert week.previous() == Period(date(2026, 3, 2), date(2026, 3, 8), "UTC")


def test_months_of_a_period_are_cut_to_it_and_follow_the_time_zone() -> None:
    period = Period.of(date(2026, 2, 20), date(2026, 4, 3), "America/New_York")
    months = period.months()
    assert [m.label for m in months] == ["2026-02", "2026-03", "2026-04"]
    assert months[0].start == datetime(2026, 2, 20, 5, 0, tzinfo=UTC)  # EST
    assert months[1].start == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert months[1].end == months[2].start == datetime(2026, 4, 1, 4, 0, tzinfo=UTC)  # EDT
    assert months[2].end == datetime(2026, 4, 4, 4, 0, tzinfo=UTC)


def test_a_period_left_open_ends_today_and_is_thirty_days_long() -> None:
    period = Period.of(None, None, "UTC", today=date(2026, 11, 20))
    assert (period.first, period.last) == (date(2026, 10, 22), date(2026, 11, 20))
    assert Period.of(date(2026, 11, 1), None, "UTC", today=date(2026, 11, 20)).last == date(2026, 11, 20)


def test_a_period_that_ends_before_it_starts_is_refused_naming_the_parameter() -> None:
    with pytest.raises(InvalidInput, match=r"^from: 2026-03-02 is after to \(2026-03-01\)") as refused:
        Period.of(date(2026, 3, 2), date(2026, 3, 1), "UTC")
    assert refused.value.code == "invalid_period"
    with pytest.raises(InvalidInput, match=r"^to: 9999-12-31 is not between 1970-01-01 and 2199-12-31"):
        Period.of(date(2026, 3, 1), date(9999, 12, 31), "UTC")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        Period.of(date(2026, 3, 1), date(2026, 3, 2), "Mars/Olympus")


# --- statistics ---------------------------------------------------------------------------


def test_percentiles_are_nearest_rank_and_always_one_of_the_values() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.0  # rank ceil(0.5 * 4) = 2
    assert percentile(values, 75) == 3.0  # rank 3
    assert percentile(values, 90) == 4.0  # rank ceil(3.6) = 4
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None
    assert [rank(50, n) for n in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]


def test_a_rate_of_nothing_is_no_rate() -> None:
    assert rate(1, 4) == 0.25
    assert rate(0, 0) is None


def test_a_rate_from_few_trials_has_a_wide_interval() -> None:
    low, high = wilson(2, 3)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.2077, 0.9385)
    low, high = wilson(1, 2)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.0945, 0.9055)
    low, high = wilson(200, 300)  # type: ignore[misc]
    assert high - low < 0.11  # many trials: a narrow interval
    assert wilson(0, 0) is None
    assert wilson(0, 5)[0] == 0.0  # type: ignore[index]


# --- attribution ----------------------------------------------------------------------------


def test_single_touch_models_give_everything_to_one_touchpoint() -> None:
    assert shares("first_touch", 3) == [1.0, 0.0, 0.0]
    assert shares("last_touch", 3) == [0.0, 0.0, 1.0]
    assert shares("linear", 4) == [0.25] * 4
    assert shares("linear", 0) == []


def test_w_shaped_gives_thirty_percent_to_each_key_touch_and_ten_to_the_rest() -> None:
    # five touches: first, lead creation at 1, opportunity creation at 3; 2 and 4 share 10 %
    assert shares("w_shaped", 5, lead_index=1, opportunity_index=3) == pytest.approx([0.3, 0.3, 0.05, 0.3, 0.05])
    # no opportunity yet: first and lead creation 3/7 each, the one in between 1/7
    assert shares("w_shaped", 3, lead_index=1) == pytest.approx([3 / 7, 3 / 7, 1 / 7])
    # the lead created by its first touch: that touch holds two key shares
    assert shares("w_shaped", 4, lead_index=0, opportunity_index=3) == pytest.approx([0.6, 0.05, 0.05, 0.3])
    # one touch takes it all; two with no other touchpoint share it evenly
    assert shares("w_shaped", 1) == [1.0]
    assert shares("w_shaped", 2, lead_index=1) == pytest.approx([0.5, 0.5])


def test_an_unknown_model_or_a_position_outside_the_journey_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown attribution model"):
        shares("u_shaped", 2)
    with pytest.raises(ValueError, match="outside"):
        shares("w_shaped", 2, lead_index=2)


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, 10, tzinfo=UTC)


JOURNEY = [Touchpoint(_at(1), "google", "cpc", "spring"), Touchpoint(_at(2), "newsletter", "email", "march"),
           Touchpoint(_at(5), "linkedin", "social", "abm"), Touchpoint(_at(9), "google", "cpc", "spring"),
           Touchpoint(_at(12), "partner", "referral")]
SOURCE_FIELD = Touchpoint(_at(2), "event")


def _by_source(credits: list) -> dict[str, tuple[float, float, float, float]]:
    return {c.channel[0]: tuple(round(x, 6) for x in (c.first_touch, c.last_touch, c.linear, c.w_shaped))
            for c in credits}


def test_an_outcome_credits_only_the_touchpoints_before_it() -> None:
    # the lead was created at the second touch (day 2): the first two touches share its creation
    lead = credit(JOURNEY, SOURCE_FIELD, _at(2), created_at=_at(2), opportunity_at=_at(10))
    assert _by_source(lead) == {"google": (1, 0, 0.5, 0.5), "newsletter": (0, 1, 0.5, 0.5)}


def test_a_won_deal_credits_the_whole_journey_and_a_channel_met_twice_adds_up() -> None:
    won = credit(JOURNEY, SOURCE_FIELD, _at(15), created_at=_at(2), opportunity_at=_at(10))
    assert _by_source(won) == {
        "google": (1, 0, 0.4, 0.6),  # first touch (30 %) and the opportunity's touch on day 9 (30 %)
        "newsletter": (0, 0, 0.2, 0.3),
        "linkedin": (0, 0, 0.2, 0.05),
        "partner": (0, 1, 0.2, 0.05),
    }


def test_a_lead_with_no_touchpoint_before_the_outcome_is_credited_to_its_source_field() -> None:
    assert _by_source(credit([], SOURCE_FIELD, _at(3), created_at=_at(2), opportunity_at=None)) == {
        "event": (1, 1, 1, 1)}
    later = [Touchpoint(_at(20), "google")]
    assert _by_source(credit(later, SOURCE_FIELD, _at(3), created_at=_at(2), opportunity_at=None)) == {
        "event": (1, 1, 1, 1)}


# --- comparing two periods -------------------------------------------------------------------


def test_a_change_that_matters_is_told_as_a_sentence_with_its_main_reason() -> None:
    acceptance = Figure("MQL → SAL acceptance", "rate", 0.48, 0.62)
    assert sentence(acceptance, most({"bad timing": 7, "no budget": 3}, "rejections")) == (
        "MQL → SAL acceptance fell from 62 % to 48 %; most rejections: bad timing")
    assert acceptance.good is False


def test_small_changes_are_not_told() -> None:
    assert sentence(Figure("acceptance", "rate", 0.61, 0.62)) is None  # 1 point
    assert sentence(Figure("MQLs", "count", 103, 100)) is None  # 3 %
    assert sentence(Figure("MQLs", "count", 105, 100)) == "MQLs rose from 100 to 105"
    assert sentence(Figure("cycle", "duration", 95 * 3600, 100 * 3600)) is None  # 5 %
    assert sentence(Figure("MQLs", "count", 5, None)) is None  # nothing to compare with
    assert sentence(Figure("leads", "count", 2, 0)) == "leads rose from 0 to 2"


def test_durations_shorten_or_grow_and_shorter_is_better() -> None:
    cycle = Figure("median sales cycle", "duration", 12 * 86400, 18 * 86400, better="down")
    assert sentence(cycle) == "median sales cycle shortened from 18.0 days to 12.0 days"
    assert cycle.good is True
    assert format_value(2 * 3600, "duration") == "2.0 hours"
    assert format_value(90, "duration") == "2 minutes"
    assert format_value(12000.4, "amount") == "12,000"
    assert format_value(None, "rate") == "–"


def test_sentences_are_capitalised_and_only_for_the_figures_that_moved() -> None:
    figures = [Figure("leads created", "count", 120, 100), Figure("MQLs", "count", 30, 30)]
    assert sentences(figures) == ["Leads created rose from 100 to 120."]
    assert most({"a": 2, "b": 2, "c": 1}, "reasons") == "most reasons: a and b"
    assert most({}, "reasons") is None


# --- CSV ----------------------------------------------------------------------------------------


def test_a_table_is_csv_with_its_header_even_when_empty() -> None:
    assert Table.of(("stage", "reached"), []).csv() == "stage,reached\r\n"
    table = Table.of(("stage", "conversion", "at", "few"), [("mql", 0.25, datetime(2026, 3, 1, tzinfo=UTC), True),
                                                            ("sal", None, None, False)])
    assert table.csv() == ("stage,conversion,at,few\r\nmql,0.25,2026-03-01T00:00:00+00:00,true\r\n"
                           "sal,,,false\r\n")
    assert to_csv([{"a": 1}, {"b": "x,y"}]) == 'a,b\r\n1,\r\n,"x,y"\r\n'


def test_durations_in_a_period_are_measured_from_utc_instants() -> None:
    period = Period.of(date(2026, 10, 25), date(2026, 10, 25), "Europe/Berlin")  # the day clocks go back
    assert period.end - period.start == timedelta(hours=25)
