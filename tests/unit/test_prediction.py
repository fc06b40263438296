"""The predictive score's pure parts: the model's arithmetic and reasons, p_win in playbook rules,
replay up to a moment, the measures, confidence intervals, and reading any CSV of leads."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from leadrelay.adapters.models import fit, measure
from leadrelay.adapters.playbook_file import (
    PlaybookError,
    default_playbook_text,
    parse_playbook,
)
from leadrelay.domain.clock import UTC
from leadrelay.domain.model import Event
from leadrelay.domain.prediction import WinModel, lead_features, p_win, replay
from leadrelay.domain.processing import apply_event, new_lead
from leadrelay.services.prediction import CsvError, evaluate_csv
from leadrelay.services.suggestions import wilson

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def playbook_with(rule: str):
    return parse_playbook(default_playbook_text().replace("rule: fit >= 40 && engagement >= 40", f"rule: {rule}"),
                          "test")


def page(number: int, path: str, at: datetime) -> Event:
    return Event(message_id=f"m{number}", type="page", name="page_view", timestamp=at, properties={"path": path})


def model(weights: dict[str, float], intercept: float = 0.0) -> WinModel:
    return WinModel(version=3, weights=weights, intercept=intercept, means={}, curve_x=(-2.0, 0.0, 2.0),
                    curve_y=(0.1, 0.4, 0.9))


def test_the_calibration_curve_is_interpolated_and_clipped_at_its_ends() -> None:
    m = model({})
    assert m.calibrate(-5.0) == 0.1 and m.calibrate(9.0) == 0.9
    assert m.calibrate(1.0) == pytest.approx(0.65)
    assert m.probability({"fit": 1.0}) == 0.4  # no weight for it: the intercept alone


def test_reasons_are_the_features_that_move_the_score_most_from_the_average_lead() -> None:
    m = replace(model({"industry=software": 1.5, "free_mail": -2.0, "fit": 0.1}), means={"fit": 0.5})
    reasons = m.reasons({"industry=software": 1.0, "free_mail": 1.0, "fit": 0.5})
    assert [(r.label, r.effect) for r in reasons] == [("free-mail address", -2.0), ("industry is software", 1.5)]


def test_an_mql_rule_on_p_win_fires_only_when_a_model_is_in_use() -> None:
    playbook = playbook_with("p_win >= 0.5")
    lead = new_lead("ann@firm.example", playbook, T0)
    apply_event(lead, page(1, "/pricing", T0 + timedelta(minutes=1)), playbook)
    assert lead.stage == "lead"  # no model: the rule cannot be decided, so it does not fire
    with_model = replace(playbook, win_model=model({"ever:pricing page": 5.0}))
    apply_event(lead, page(2, "/pricing", T0 + timedelta(minutes=2)), with_model)
    assert lead.stage == "mql"
    assert lead.history[-1].by == "rule:mql"
    assert p_win(lead, with_model, T0 + timedelta(minutes=3)) == 0.9


def test_a_playbook_rule_may_read_p_win_and_a_misspelt_name_is_refused() -> None:
    assert playbook_with("p_win >= 0.3 && fit >= 20").mql_rule.variables == {"p_win", "fit"}
    with pytest.raises(PlaybookError, match="p_win"):
        playbook_with("pwin >= 0.3")


def test_replay_stops_at_the_moment_asked_for_so_later_events_never_become_features() -> None:
    playbook = playbook_with("fit >= 1000")
    events = [page(1, "/blog/a", T0), page(2, "/pricing", T0 + timedelta(days=2))]
    before = replay(new_lead("ann@firm.example", playbook, T0), events, playbook, T0 + timedelta(days=1))
    features = lead_features(before, playbook, T0 + timedelta(days=1))
    assert "ever:pricing page" not in features and features["ever:page view"] > 0
    after = replay(new_lead("ann@firm.example", playbook, T0), events, playbook, T0 + timedelta(days=3))
    assert "ever:pricing page" in lead_features(after, playbook, T0 + timedelta(days=3))


def test_measures_lift_in_the_top_decile_and_a_calibration_table() -> None:
    y = [1] * 10 + [0] * 90
    p = [0.9] * 10 + [0.05] * 90
    found = measure(y, p)
    assert (found["auc"], found["pr_auc"], found["top_decile_lift"]) == (1.0, 1.0, 10.0)
    assert found["calibration"][-1] == {"leads": 10, "predicted": 0.9, "observed": 1.0}
    assert sum(row["leads"] for row in found["calibration"]) == 100


def test_the_wilson_interval_does_not_oversell_small_samples() -> None:
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(500, 1000)[1] - wilson(500, 1000)[0] < 0.07


def test_a_fitted_model_is_calibrated_on_leads_it_did_not_see() -> None:
    rng = random.Random(3)
    rows, y = [], []
    for _ in range(2000):
        good = rng.random() < 0.3
        rows.append({"pricing": float(good or rng.random() < 0.2), "noise": rng.random()})
        y.append(int(rng.random() < (0.6 if good else 0.05)))
    fitted = fit(rows, y)
    p = fitted.predict(rows)
    assert abs(float(np.mean(p)) - float(np.mean(y))) < 0.02
    assert measure(y, p)["auc"] > 0.75


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(text, encoding="utf-8")
    return path


def synthetic_csv(tmp_path: Path, delimiter: str) -> Path:
    rng = random.Random(5)
    lines = [delimiter.join(["industry", "visits", "after_call", "won"])]
    for _ in range(400):
        industry = rng.choice(["software", "retail", "fintech"])
        visits = rng.randint(0, 20)
        won = rng.random() < (0.02 + 0.04 * visits + (0.3 if industry == "software" else 0))
        lines.append(delimiter.join([f'"{industry}"', str(visits), str(int(won)), "yes" if won else "no"]))
    return write(tmp_path, "\r\n".join(lines) + "\r\n")


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_any_csv_is_evaluated_with_its_delimiter_detected(tmp_path: Path, delimiter: str) -> None:
    path = synthetic_csv(tmp_path, delimiter)
    found = evaluate_csv(path, "won", "yes", drop=["after_call"], split="random")
    assert found["delimiter"] == delimiter and found["columns_used"] == ["industry", "visits"]
    assert found["leads"] == 400 and 0.7 < found["auc"] < 1.0 and len(found["auc_folds"]) == 5
    leaky = evaluate_csv(path, "won", "yes", split="time")  # `after_call` is the answer itself
    assert leaky["auc"] == 1.0 and leaky["leads"] == 80


@pytest.mark.parametrize(("arguments", "message"), [
    (("nope", "yes", ()), "--target: no column 'nope' (columns: industry, visits, after_call, won)"),
    (("won", "YES", ()), "--positive: column 'won' never holds 'YES' (it holds: no, yes)"),
    (("won", "yes", ("visit",)), "--drop: no column(s) 'visit'"),
])
def test_a_wrong_column_or_value_is_named_with_what_there_is(tmp_path: Path, arguments: tuple, message: str) -> None:
    target, positive, drop = arguments
    with pytest.raises(CsvError) as error:
        evaluate_csv(synthetic_csv(tmp_path, ","), target, positive, drop=drop)
    assert message in str(error.value)


def test_a_ragged_row_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b,won\n1,2,yes\n1,2\n")
    with pytest.raises(CsvError, match=r"leads.csv:3: 2 values, but the header has 3 columns"):
        evaluate_csv(path, "won", "yes")
    with pytest.raises(CsvError, match="no such file"):
        evaluate_csv(tmp_path / "missing.csv", "won", "yes")
