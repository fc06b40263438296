"""The `leadrelay` command, run as users run it: the installed console script in a new process,
with LEADRELAY_DATABASE_URL pointing at a SQLite file and the working directory a fresh folder.

Each process start costs about a second, so each test runs only the few commands its rule needs.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from leadrelay.adapters.playbook_file import default_playbook_text
from leadrelay.entrypoints.cli import app

from .cli import TIMEOUT, Run, assert_clean_refusal, clean_environment, leadrelay_executable

# --- init and the playbook -----------------------------------------------------------------


def test_init_writes_the_example_playbook_and_creates_the_database(leadrelay: Run, tmp_path: Path) -> None:
    result = leadrelay("init")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "playbook.yaml").read_text(encoding="utf-8") == default_playbook_text()
    assert (tmp_path / "leadrelay.db").is_file()
    assert "Wrote playbook.yaml" in result.stdout

    again = leadrelay("init")
    assert_clean_refusal(again, "playbook.yaml already exists (use --force to overwrite it)")

    checked = leadrelay("playbook", "validate", "playbook.yaml")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok playbook.yaml: 'Default agreement' version 1")


BROKEN_PLAYBOOK = """\
name: Broken agreement
version: 1
stages:
  - id: lead
    team: marketing
    moves: [mql, nowhere]
  - id: mql
    team: salez
mql:
  rule: fit >= && engagement >= 40 && this condition is long enough to need more than eighty columns
scoring:
  fit:
    rules:
      - name: decision maker
        when: lead.title == "CEO"
        pointz: 25
"""


@pytest.fixture(scope="module")
def broken_playbook_check(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    folder = tmp_path_factory.mktemp("broken")
    (folder / "broken.yaml").write_text(BROKEN_PLAYBOOK, encoding="utf-8")
    return subprocess.run(
        [leadrelay_executable(), "playbook", "validate", "broken.yaml"], cwd=folder, capture_output=True, text=True,
        encoding="utf-8", env=clean_environment(f"sqlite:///{folder / 'unused.db'}"), timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def test_validating_a_broken_playbook_lists_every_problem_as_file_line_col_and_exits_1(
    broken_playbook_check: subprocess.CompletedProcess[str],
) -> None:
    result = broken_playbook_check
    assert_clean_refusal(result, "The playbook has 5 problem(s):")
    problems = re.findall(r"^broken\.yaml:(\d+):(\d+): (\S+)", result.stderr, re.MULTILINE)
    assert [(int(line), int(column), where) for line, column, where in problems] == [
        (6, 18, "stages[0].moves[1]:"),
        (8, 11, "stages[1].team:"),
        (10, 9, "mql.rule:"),
        (14, 9, "scoring.fit.rules[0].points:"),
        (16, 17, "scoring.fit.rules[0].pointz:"),
    ]
    errors = " ".join(result.stderr.split())
    assert "unknown stage 'nowhere'" in errors
    assert "did you mean 'points'?" in errors


def test_each_playbook_problem_is_printed_on_one_line_however_long(
    broken_playbook_check: subprocess.CompletedProcess[str],
) -> None:
    """Editors and CI annotate FILE:LINE:COL lines: a problem wrapped onto a second line is lost."""
    lines = [line for line in broken_playbook_check.stderr.splitlines() if line.strip()]
    assert lines[0] == "The playbook has 5 problem(s):"
    not_a_problem = [line for line in lines[1:] if not re.match(r"broken\.yaml:\d+:\d+: ", line)]
    assert not_a_problem == [], broken_playbook_check.stderr


def test_a_playbook_that_is_not_valid_yaml_is_reported_with_its_position(leadrelay: Run, tmp_path: Path) -> None:
    (tmp_path / "playbook.yaml").write_text("name: Agreement\nstages: [lead, mql\n", encoding="utf-8")

    result = leadrelay("playbook", "validate", "playbook.yaml")

    assert_clean_refusal(result, "The playbook has 1 problem(s):")
    assert re.search(r"^playbook\.yaml:3:1: not valid YAML", result.stderr, re.MULTILINE), result.stderr


# --- imports ------------------------------------------------------------------------------------

LEADS_CSV = """\
email,name,title,industry,company_size
ann@acme.io,Ann Archer,VP Sales,software,500
not-an-email,Bob Broken,CTO,software,50
cy@gamma.io,Cy Gray,Engineer,aerospace,20
fay@zeta.io,Fay Fox,Director,healthcare,1000
"""

EVENTS_JSONL = """\
{"type": "page", "messageId": "e-1", "userId": "u-ann", "properties": {"path": "/pricing"}, "context": {"traits": {"email": "ann@acme.io"}}}
{"type": "track", "messageId": "e-2", "userId": "u-ann"
{"type": "track", "messageId": "e-3", "userId": "u-ann", "event": "Demo Request"}
{"type": "track", "messageId": "e-4", "event": "Demo Request"}
"""


def summary_rows(stdout: str) -> dict[str, str]:
    """The import summary table as {label: value}."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_importing_leads_keeps_the_good_rows_and_lists_each_bad_row_with_its_line(leadrelay: Run, tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(LEADS_CSV, encoding="utf-8")

    result = leadrelay("import", "leads", "leads.csv")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = summary_rows(result.stdout)
    assert {key: summary.get(key) for key in ("rows read", "accepted", "rejected", "leads created")} == {
        "rows read": "4", "accepted": "2", "rejected": "2", "leads created": "2",
    }
    errors = " ".join(result.stderr.split())
    assert "leads.csv:3: invalid email 'not-an-email'" in errors
    assert "leads.csv:4: industry: 'aerospace' is not one of" in errors

    shown = leadrelay("lead", "show", "fay@zeta.io")
    assert shown.returncode == 0, shown.stderr
    assert "fay@zeta.io — stage lead" in shown.stdout
    assert "Fay Fox" in shown.stdout and "healthcare" in shown.stdout
    missing = leadrelay("lead", "show", "cy@gamma.io")
    assert_clean_refusal(missing, "error: no lead with email 'cy@gamma.io'")


def test_a_lead_file_with_unknown_columns_is_refused_whole_with_a_clear_message(leadrelay: Run, tmp_path: Path) -> None:
    (tmp_path / "odd.csv").write_text("email,favourite_colour\nann@acme.io,blue\n", encoding="utf-8")

    result = leadrelay("import", "leads", "odd.csv")

    assert_clean_refusal(result, "error: unknown column(s): favourite_colour. Map each to a field with --map")


def test_importing_events_keeps_the_good_lines_lists_the_bad_ones_and_scores_the_lead(
    leadrelay: Run, tmp_path: Path
) -> None:
    (tmp_path / "events.jsonl").write_text(EVENTS_JSONL, encoding="utf-8")

    result = leadrelay("import", "events", "events.jsonl")

    assert result.returncode == 0, result.stderr
    summary = summary_rows(result.stdout)
    assert {key: summary.get(key) for key in ("rows read", "accepted", "rejected", "leads created")} == {
        "rows read": "4", "accepted": "2", "rejected": "2", "leads created": "1",
    }
    assert summary.get("leads that entered sal") == "1"  # the demo request fast-tracks to sales
    errors = " ".join(result.stderr.split())
    assert "events.jsonl:2: not valid JSON" in errors
    assert "events.jsonl:4: a message needs a userId or an anonymousId" in errors
    assert "Traceback" not in result.stderr

    shown = leadrelay("lead", "show", "ann@acme.io")
    assert shown.returncode == 0, shown.stderr
    assert "ann@acme.io — stage sal" in shown.stdout
    assert "fast_track:demo request" in shown.stdout
    assert "pricing page" in shown.stdout


# --- leads --------------------------------------------------------------------------------------


def test_a_move_the_playbook_forbids_is_refused_with_a_clear_message_and_exit_1(leadrelay: Run, tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(LEADS_CSV, encoding="utf-8")
    assert leadrelay("import", "leads", "leads.csv").returncode == 0

    skipped = leadrelay("lead", "move", "ann@acme.io", "customer")
    assert_clean_refusal(skipped, "error: a lead in 'lead' cannot move to 'customer' (allowed moves: mql, sal, disqualified)")

    moved = leadrelay("lead", "move", "ann@acme.io", "mql", "--by", "marketing-ops")
    assert moved.returncode == 0, moved.stderr
    assert "ann@acme.io: lead → mql" in moved.stdout

    no_reason = leadrelay("lead", "move", "ann@acme.io", "recycled")
    assert_clean_refusal(no_reason, "error: moving to 'recycled' needs one of these reasons: not ready, no budget")

    shown = leadrelay("lead", "show", "ann@acme.io")
    assert "stage mql" in shown.stdout and "marketing-ops" in shown.stdout
    assert "recycled" not in shown.stdout.split("Stage history")[1]


def test_moving_a_lead_that_does_not_exist_is_refused(leadrelay: Run) -> None:
    result = leadrelay("lead", "move", "nobody@acme.io", "mql")

    assert_clean_refusal(result, "error: no lead with email 'nobody@acme.io'")


# --- help and errors ----------------------------------------------------------------------------


def every_command() -> list[list[str]]:
    """Every command and command group of the CLI, read from the app itself (new ones included)."""
    found: list[list[str]] = [[]]

    def walk(group: Any, path: list[str]) -> None:
        for name, command in sorted(group.commands.items()):
            found.append([*path, name])
            if hasattr(command, "commands"):  # a group of commands
                walk(command, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_working_help(leadrelay: Run) -> None:
    commands = every_command()
    assert ["lead", "move"] in commands and ["import", "events"] in commands and ["demo"] in commands

    # The installed script, for the top level and a nested command (a process start costs a second) ...
    with ThreadPoolExecutor(max_workers=2) as pool:
        for result in pool.map(lambda command: leadrelay(*command, "--help"), ([], ["lead", "move"])):
            assert result.returncode == 0, result.stderr
            assert "Usage: leadrelay" in result.stdout and "Traceback" not in result.stdout + result.stderr
    # ... and every command of the same app in this process.
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], prog_name="leadrelay")
        name = " ".join(["leadrelay", *command, "--help"])
        assert result.exit_code == 0, f"{name}: {result.output}"
        assert "Usage: leadrelay" in result.output, f"{name} printed no usage: {result.output}"


def test_an_unreachable_database_gives_a_one_line_error_and_exit_1(leadrelay: Run) -> None:
    result = leadrelay("lead", "show", "ann@acme.io", database_url="postgresql://leadrelay@127.0.0.1:1/leadrelay")

    assert_clean_refusal(result, "cannot be used")
    assert result.stderr.strip().startswith("error: the database at postgresql+psycopg://leadrelay@127.0.0.1:1/leadrelay")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{result.stderr}"
