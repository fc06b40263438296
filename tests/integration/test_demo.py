"""`leadrelay demo`: a realistic funnel generated through the one batch path.

Most tests read one demo database (1,500 leads, SQLite file) generated once for this module;
the reproducibility tests generate their own, and one test runs on every backend.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from email_validator import validate_email
from sqlalchemy import Engine, func, select

from leadrelay.adapters import tables
from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import DomainError
from leadrelay.domain.model import FREE_MAIL_DOMAINS, email_domain
from leadrelay.domain.playbook import Playbook
from leadrelay.services.demo import (
    COMPETITOR_DOMAINS,
    DEMO_REPS,
    REPS_BY_TERRITORY,
    DemoNeedsEmptyDatabase,
    DemoSummary,
    generate,
)
from leadrelay.services.unit_of_work import UnitOfWork

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LEADS = 1500
SEED = 11


def _engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine


def _playbook() -> Playbook:
    return parse_playbook(default_playbook_text(), "<built-in playbook>")


class Demo:
    """A generated demo database and what `generate` said about it."""

    def __init__(self, engine: Engine, playbook: Playbook, summary: DemoSummary, progress: list[int]) -> None:
        self.engine, self.playbook, self.summary, self.progress = engine, playbook, summary, progress

    def rows(self, table: Any, *order: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            query = select(table).order_by(*(order or (table.c.id,)))
            return [dict(row._mapping) for row in connection.execute(query)]

    def count(self, table: Any) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(table)) or 0

    def leads(self) -> list[dict[str, Any]]:
        return self.rows(tables.leads)

    def histories(self) -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for change in self.rows(tables.stage_changes, tables.stage_changes.c.lead_id, tables.stage_changes.c.at,
                                tables.stage_changes.c.id):
            found[change["lead_id"]].append(change)
        return found


def _generate(engine: Engine, playbook: Playbook, leads: int, seed: int) -> Demo:
    progress: list[int] = []
    summary = generate(lambda: UnitOfWork(engine), playbook, leads=leads, seed=seed, now=NOW, progress=progress.append)
    return Demo(engine, playbook, summary, progress)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    engine = _engine(tmp_path_factory.mktemp("demo") / "demo.db")
    try:
        yield _generate(engine, _playbook(), LEADS, SEED)
    finally:
        engine.dispose()


def _customers_share(leads: list[dict[str, Any]]) -> float:
    return sum(lead["stage"] == "customer" for lead in leads) / max(len(leads), 1)


# --- the same seed, the same data ---------------------------------------------------------------


def _content(demo: Demo) -> dict[str, Any]:
    """Everything that matters in a demo database, without surrogate ids and write times."""
    emails = {lead["id"]: lead["email"] for lead in demo.leads()}
    return {
        "leads": [
            (lead["email"], lead["stage"], lead["highest_stage"], lead["stage_entered_at"], lead["created_at"],
             lead["fields"], lead["fit"], round(lead["engagement"], 6), lead["owner"])
            for lead in demo.leads()
        ],
        "events": [
            (e["message_id"], emails.get(e["lead_id"]), e["anonymous_id"], e["type"], e["name"], e["timestamp"],
             e["properties"], e["traits"], e["points"])
            for e in demo.rows(tables.events)
        ],
        "moves": [
            (emails[c["lead_id"]], c["from_stage"], c["to_stage"], c["at"], c["by"], c["reason"])
            for c in demo.rows(tables.stage_changes)
        ],
        "accounts": [a["domain"] for a in demo.rows(tables.accounts)],
    }


def test_demo_is_reproducible_for_a_seed(demo: Demo, tmp_path: Path) -> None:
    random.seed(12345)  # the process-wide generator plays no part
    again = _generate(_engine(tmp_path / "again.db"), _playbook(), LEADS, SEED)
    assert _content(again) == _content(demo)
    assert (again.summary.current, again.summary.reached, again.summary.examples) == (
        demo.summary.current, demo.summary.reached, demo.summary.examples)


def test_demo_differs_for_another_seed(demo: Demo, tmp_path: Path) -> None:
    other = _generate(_engine(tmp_path / "other.db"), _playbook(), 1000, SEED + 1)
    assert {lead["email"] for lead in other.leads()}.isdisjoint({lead["email"] for lead in demo.leads()[1000:]})
    assert _content(other)["events"] != _content(demo)["events"][: len(_content(other)["events"])]


# --- the summary is the database ---------------------------------------------------------------


def test_demo_summary_counts_what_the_database_holds(demo: Demo) -> None:
    summary, leads = demo.summary, demo.leads()
    assert summary.leads == len(leads) == LEADS
    assert summary.events == demo.count(tables.events)
    assert summary.accounts == demo.count(tables.accounts)
    assert summary.current == Counter(lead["stage"] for lead in leads)
    assert summary.seconds > 0
    assert sum(demo.progress) == LEADS and all(step > 0 for step in demo.progress)  # leads added per batch


def test_demo_examples_are_leads_in_interesting_stages(demo: Demo) -> None:
    stages = {lead["email"]: lead["stage"] for lead in demo.leads()}
    examples = demo.summary.examples
    assert len(examples) >= 3 and len(set(examples)) == len(examples)
    assert all(email in stages for email in examples)
    assert stages[examples[0]] == "customer"
    assert {"customer", "mql", "recycled"} <= {stages[email] for email in examples}


def test_demo_refuses_a_database_that_already_has_leads(demo: Demo) -> None:
    before = demo.count(tables.events)
    with pytest.raises(DemoNeedsEmptyDatabase, match="already has 1,500 leads") as refused:
        generate(lambda: UnitOfWork(demo.engine), demo.playbook, leads=1000, seed=SEED, now=NOW)
    assert isinstance(refused.value, DomainError)  # the command line shows it as a clear message
    assert demo.count(tables.events) == before


# --- the funnel -------------------------------------------------------------------------------


def test_demo_funnel_narrows_from_lead_to_customer(demo: Demo) -> None:
    playbook, reached = demo.playbook, demo.summary.reached
    funnel = sorted((s for s in playbook.stages.values() if s.rank is not None), key=lambda s: s.rank or 0)
    counts = [reached[stage.id] for stage in funnel]
    assert [stage.id for stage in funnel] == ["lead", "mql", "sal", "sql", "opportunity", "customer"]
    assert counts[0] == LEADS
    assert all(earlier > later for earlier, later in zip(counts, counts[1:])), counts
    assert 0 < counts[-1] < 0.05 * LEADS  # a few percent of leads become customers
    assert 0.08 * LEADS < reached["mql"] < 0.4 * LEADS
    highest = Counter(lead["highest_stage"] for lead in demo.leads())
    for stage in funnel:
        assert reached[stage.id] == sum(n for s, n in highest.items() if playbook.rank(s) >= (stage.rank or 0))


def test_demo_has_leads_in_every_stage(demo: Demo) -> None:
    assert set(demo.summary.current) == set(demo.playbook.stages)
    assert all(count > 0 for count in demo.summary.current.values()), demo.summary.current


def test_demo_history_only_contains_moves_the_playbook_allows(demo: Demo) -> None:
    playbook, histories = demo.playbook, demo.histories()
    for lead in demo.leads():
        history = histories[lead["id"]]
        assert (history[0]["from_stage"], history[0]["to_stage"], history[0]["by"]) == (None, "lead", "created")
        assert history[0]["at"] == lead["created_at"]
        for before, change in zip(history, history[1:]):
            assert change["from_stage"] == before["to_stage"], (lead["email"], history)
            assert playbook.allows(change["from_stage"], change["to_stage"]), (lead["email"], change)
            assert change["at"] >= before["at"]
            reasons = playbook.reasons_for(change["to_stage"])
            assert change["reason"] in reasons if reasons else change["reason"] is None
        assert history[-1]["to_stage"] == lead["stage"]
        assert history[-1]["at"] == lead["stage_entered_at"] <= NOW
        assert lead["highest_stage"] == max((c["to_stage"] for c in history), key=playbook.rank)


def test_demo_sales_moves_come_after_the_hand_off_and_before_now(demo: Demo) -> None:
    reps = {rep.email for rep in DEMO_REPS}
    worked = 0
    for history in demo.histories().values():
        handed_off = next((c["at"] for c in history if c["to_stage"] in ("mql", "sal")), None)
        for change in history:
            if change["by"] in reps:
                worked += 1
                assert handed_off is not None and handed_off <= change["at"] <= NOW
            else:
                assert change["by"] == "created" or change["by"].startswith(("rule:", "fast_track:")), change
    assert worked > 0.1 * LEADS


def test_demo_hand_backs_and_disqualifications_carry_the_playbook_reasons(demo: Demo) -> None:
    changes = demo.rows(tables.stage_changes)
    hand_back = Counter(c["reason"] for c in changes if c["to_stage"] == "recycled")
    disqualified = Counter(c["reason"] for c in changes if c["to_stage"] == "disqualified")
    assert set(hand_back) <= set(demo.playbook.hand_back_reasons) and len(hand_back) >= 4
    assert set(disqualified) <= set(demo.playbook.disqualify_reasons) and "not a fit" in disqualified


# --- outcomes that a model can learn ---------------------------------------------------------


def test_demo_outcomes_depend_on_fit(demo: Demo) -> None:
    handed_off = [lead for lead in demo.leads() if demo.playbook.rank(lead["highest_stage"]) >= 1]
    high = [lead for lead in handed_off if lead["fit"] >= 55]
    low = [lead for lead in handed_off if lead["fit"] < 40]
    assert len(high) > 30 and len(low) > 30
    assert _customers_share(high) > 1.5 * _customers_share(low)
    everyone = demo.leads()
    assert _customers_share([x for x in everyone if x["fit"] >= 55]) > 4 * _customers_share(
        [x for x in everyone if x["fit"] < 40])


def test_demo_outcomes_depend_on_behaviour(demo: Demo) -> None:
    activity = Counter(e["lead_id"] for e in demo.rows(tables.events) if e["lead_id"] is not None)
    leads = demo.leads()
    customers = [activity[lead["id"]] for lead in leads if lead["stage"] == "customer"]
    never_handed_off = [activity[lead["id"]] for lead in leads if lead["highest_stage"] == "lead"]
    assert statistics.median(customers) > 2 * statistics.median(never_handed_off)
    requested = {e["lead_id"] for e in demo.rows(tables.events) if e["name"] == "demo_request"}
    asked = [lead for lead in leads if lead["id"] in requested]
    assert _customers_share(asked) > 2 * _customers_share(leads)


# --- who the leads are -----------------------------------------------------------------------


def test_demo_emails_are_unique_and_valid(demo: Demo) -> None:
    emails = [lead["email"] for lead in demo.leads()]
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert validate_email(email, check_deliverability=False).normalized.lower() == email


def test_demo_accounts_span_industries_sizes_and_territories(demo: Demo) -> None:
    leads = demo.leads()
    fields = [lead["fields"] for lead in leads]
    assert set(demo.playbook.fields["industry"].values) == {f["industry"] for f in fields if "industry" in f}
    sizes = [f["company_size"] for f in fields if "company_size" in f]
    assert min(sizes) < 20 and max(sizes) > 1000
    assert set(REPS_BY_TERRITORY) == {f["territory"] for f in fields}
    assert len({f["country"] for f in fields}) >= 12
    per_account = Counter(lead["account_id"] for lead in leads if lead["account_id"] is not None)
    assert max(per_account.values()) >= 5  # some companies have many contacts
    assert demo.summary.accounts < 0.7 * LEADS
    domains = {a["domain"]: a["id"] for a in demo.rows(tables.accounts)}
    for lead in leads:
        domain = email_domain(lead["email"])
        assert lead["account_id"] == (None if domain in FREE_MAIL_DOMAINS else domains[domain])


def test_demo_free_mail_competitor_and_student_leads_are_there_and_treated_by_the_playbook(demo: Demo) -> None:
    leads = demo.leads()
    free = [lead for lead in leads if email_domain(lead["email"]) in ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com")]
    assert len(free) > 0.05 * LEADS
    assert all("free-mail address" in lead["fit_breakdown"] for lead in free)
    competitors = [lead for lead in leads if email_domain(lead["email"]) in COMPETITOR_DOMAINS]
    students = [lead for lead in leads if "student" in lead["fields"]["title"].lower()]
    assert competitors and students
    histories = demo.histories()
    for lead, reason in [*((c, "competitor") for c in competitors), *((s, "student") for s in students)]:
        assert lead["stage"] == "disqualified" and lead["owner"] is None
        assert [c["reason"] for c in histories[lead["id"]] if c["to_stage"] == "disqualified"] == [reason]


def test_demo_owner_is_a_rep_of_the_team_covering_the_leads_territory(demo: Demo) -> None:
    teams = {rep.team for rep in DEMO_REPS}
    assert 2 <= len(teams) <= 3
    owners: Counter[str] = Counter()
    for lead in demo.leads():
        handed_off = demo.playbook.rank(lead["highest_stage"]) >= 1
        assert (lead["owner"] is not None) == handed_off, lead["email"]
        if lead["owner"]:
            covering = {rep.team for rep in REPS_BY_TERRITORY[lead["fields"]["territory"]]}
            assert lead["owner"] in {rep.email for rep in DEMO_REPS if rep.team in covering}
            owners[lead["owner"]] += 1
    assert set(owners) == {rep.email for rep in DEMO_REPS}
    moved_by = {(c["lead_id"], c["by"]) for c in demo.rows(tables.stage_changes) if "@" in c["by"]}
    owner_of = {lead["id"]: lead["owner"] for lead in demo.leads()}
    assert all(owner_of[lead_id] == by for lead_id, by in moved_by)  # each lead's moves are made by its rep


# --- what they did ----------------------------------------------------------------------------


def test_demo_events_span_six_months_before_now(demo: Demo) -> None:
    events = demo.rows(tables.events)
    times = [e["timestamp"] for e in events]
    assert NOW - timedelta(days=183) <= min(times) < NOW - timedelta(days=150)
    assert max(times) <= NOW
    months = Counter((NOW - t).days // 30 for t in times)
    assert all(months[m] > 0.04 * len(events) for m in range(6)), months


def test_demo_events_are_the_kinds_marketing_tracks(demo: Demo) -> None:
    events = demo.rows(tables.events)
    kinds = Counter((e["type"], e["name"]) for e in events)
    assert set(kinds) == {
        ("identify", "identify"), ("page", "page_view"), ("track", "email_open"), ("track", "email_click"),
        ("track", "form_submit"), ("track", "download"), ("track", "webinar_attended"), ("track", "demo_request"),
    }
    assert kinds[("page", "page_view")] > kinds[("track", "email_open")] > kinds[("track", "demo_request")]
    paths = {e["properties"]["path"] for e in events if e["name"] == "page_view"}
    assert "/" in paths and "/pricing" in paths and "/careers" in paths
    assert any(p.startswith("/blog/") for p in paths) and any(p.startswith("/docs") for p in paths)


def test_demo_has_about_twenty_events_a_lead_most_leads_few(demo: Demo) -> None:
    per_lead = sorted(Counter(e["lead_id"] for e in demo.rows(tables.events) if e["lead_id"] is not None).values())
    mean = statistics.mean(per_lead)
    assert 14 <= demo.summary.events / LEADS <= 28
    assert statistics.median(per_lead) < mean  # skewed: a long tail of very active leads
    assert per_lead[-1] > 5 * mean


def test_demo_anonymous_visits_are_tied_to_the_lead_by_an_identify(demo: Demo) -> None:
    leads = {lead["id"]: lead for lead in demo.leads()}
    events = demo.rows(tables.events)
    identified = {e["anonymous_id"]: e for e in events if e["name"] == "identify" and e["anonymous_id"]}
    before = [e for e in events if e["lead_id"] is not None and e["anonymous_id"] and e["name"] == "page_view"
              and e["timestamp"] < leads[e["lead_id"]]["created_at"]]
    assert len({e["lead_id"] for e in before}) > 0.1 * LEADS  # browsed anonymously, then became known
    for event in before:
        assert identified[event["anonymous_id"]]["lead_id"] == event["lead_id"]
    waiting = [e for e in events if e["lead_id"] is None]
    assert waiting and all(e["anonymous_id"] and e["name"] == "page_view" for e in waiting)  # never identified


# --- every database ----------------------------------------------------------------------------


def test_demo_generates_the_same_funnel_on_every_database(engine: Engine, playbook: Playbook, demo: Demo) -> None:
    here = _generate(engine, playbook, LEADS, SEED)
    assert here.summary.current == demo.summary.current
    assert here.summary.reached == demo.summary.reached
    assert (here.summary.events, here.summary.accounts) == (demo.summary.events, demo.summary.accounts)
    assert _content(here)["moves"] == _content(demo)["moves"]
