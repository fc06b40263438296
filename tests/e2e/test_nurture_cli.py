"""Nurture from the command line, as users run it: sequences with their figures, putting a lead in one, and the
suppression list."""

from __future__ import annotations

from pathlib import Path

from .cli import Run, assert_clean_refusal


def test_sequences_enrollment_and_the_suppression_list_from_the_command_line(leadrelay: Run, tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("email,name\nann@acme.example,Ann Lee\n", encoding="utf-8")
    assert leadrelay("import", "leads", str(leads)).returncode == 0

    listed = leadrelay("sequence", "list")
    shown = leadrelay("sequence", "show", "welcome")
    again = leadrelay("sequence", "enroll", "welcome", "ann@acme.example")
    nobody = leadrelay("sequence", "enroll", "welcome", "zed@acme.example")
    unknown = leadrelay("sequence", "show", "nope")
    added = leadrelay("suppression", "add", "Bo@Else.example", "--note", "asked by phone")
    suppressed = leadrelay("suppression", "list")
    removed = leadrelay("suppression", "remove", "bo@else.example")
    gone = leadrelay("suppression", "remove", "bo@else.example")

    assert listed.returncode == 0 and "Welcome nurture" in listed.stdout and "re_nurture" in listed.stdout
    assert shown.returncode == 0 and "1. email welcome" in shown.stdout and "3. if last_email.clicked" in shown.stdout
    assert_clean_refusal(again, "cannot enter 'welcome': already in a nurture sequence")
    assert_clean_refusal(nobody, "no lead with email 'zed@acme.example'")
    assert_clean_refusal(unknown, "no sequence 'nope' in the playbook")
    assert added.returncode == 0 and "bo@else.example is now on the suppression list" in added.stdout
    assert "bo@else.example" in suppressed.stdout and "manual" in suppressed.stdout
    assert removed.returncode == 0
    assert_clean_refusal(gone, "bo@else.example is not on the suppression list")
