"""`leadrelay model ...` and `leadrelay playbook suggest|simulate` as users run them: the installed
command in a new process, on a SQLite database holding a closed loop built by LeadRelay's own use
cases (see tests/integration/prediction_history.py)."""

from __future__ import annotations

from pathlib import Path

import yaml
from integration.prediction_history import PAIRS, closed_loop
from integration.report_histories import History
from sqlalchemy import func, select

from leadrelay.adapters import tables
from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook

from .cli import Run, assert_clean_refusal


def seed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'leadrelay.db'}")
    migrate(engine)
    closed_loop(History(engine, parse_playbook(default_playbook_text(), "<built-in playbook>")))
    engine.dispose()


def test_train_suggest_and_simulate_from_the_command_line(leadrelay: Run, tmp_path: Path) -> None:
    seed(tmp_path)
    trained = leadrelay("model", "train")
    assert trained.returncode == 0, trained.stderr
    assert f"Model version 1 trained on {2 * PAIRS} leads" in trained.stdout
    assert "AUC" in trained.stdout and "Calibration" in trained.stdout

    suggested = leadrelay("playbook", "suggest", "--min-leads", "5", "--deals-per-rep-week", "2", "--weeks", "260",
                          "--chart", "capacity.png")
    assert suggested.returncode == 0, suggested.stderr
    proposal = yaml.safe_load(suggested.stdout)  # everything on stdout is YAML, ready to paste
    names = [rule["name"] for rule in proposal["scoring"]["engagement"]["rules"]]
    assert "/pricing pages" in names
    assert proposal["mql"]["rule"].startswith("total >= ")
    assert "MQL threshold for capacity" in suggested.stderr
    assert (tmp_path / "capacity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    looser = default_playbook_text().replace("rule: fit >= 40 && engagement >= 40", "rule: engagement >= 20")
    (tmp_path / "candidate.yaml").write_text(looser, encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'leadrelay.db'}")
    with engine.connect() as connection:
        changes_before = connection.scalar(select(func.count()).select_from(tables.stage_changes))
    simulated = leadrelay("playbook", "simulate", "candidate.yaml", "--since", "2026-01-01")
    assert simulated.returncode == 0, simulated.stderr
    out = " ".join(simulated.stdout.split())
    assert "MQLs per week" in out and "hand-offs per rep per week" in out and "won" in out
    assert "nothing was written" in out and f"{PAIRS + 1} leads change status" in out
    assert "100.0% (12)" in out  # the winners, now handed off by the rule: their known outcome counts
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(tables.stage_changes)) == changes_before
    engine.dispose()


def test_bad_input_gets_a_clear_message_and_no_traceback(leadrelay: Run, tmp_path: Path) -> None:
    assert_clean_refusal(leadrelay("model", "evaluate", "--csv", "missing.csv", "--target", "y", "--positive", "yes"),
                         "missing.csv: no such file")
    assert_clean_refusal(leadrelay("model", "train"), "too few to train and validate")
    assert_clean_refusal(leadrelay("model", "show"), "no model yet: run `leadrelay model train`")
    (tmp_path / "bad.yaml").write_text("name: x\n", encoding="utf-8")
    bad = leadrelay("playbook", "simulate", "bad.yaml")
    assert bad.returncode == 1 and "problem(s)" in bad.stderr and "Traceback" not in bad.stderr
