"""People of the web app from the command line: `leadrelay user create|list|set`, and the demo
logins `leadrelay demo` prints, which work on the login page."""

from __future__ import annotations

import re

from .cli import Run, assert_clean_refusal


def test_a_user_is_created_listed_changed_and_refused_with_reasons(leadrelay: Run) -> None:
    created = leadrelay("user", "create", "Nora@LeadRelay.example", "--role", "sales_manager", "--team", "emea",
                        "--name", "Nora North")
    assert created.returncode == 0, created.stderr
    assert "Created sales manager nora@leadrelay.example in team emea." in " ".join(created.stdout.split())
    password = created.stdout.strip().splitlines()[-1]
    assert len(password) >= 12  # no terminal: a password is made up and shown once
    assert_clean_refusal(leadrelay("user", "create", "nora@leadrelay.example", "--role", "admin"),
                         "email: there is already a user nora@leadrelay.example")
    assert_clean_refusal(leadrelay("user", "create", "x@leadrelay.example", "--role", "boss"),
                         "role: 'boss' is not a role (roles: admin, marketing, sales_manager, sales_rep)")
    assert_clean_refusal(leadrelay("user", "create", "x@leadrelay.example", "--role", "admin", "--team", "mars"),
                         "team: no team 'mars' in the playbook")
    assert_clean_refusal(leadrelay("user", "set", "nobody@leadrelay.example", "--disable"),
                         "no user nobody@leadrelay.example")
    changed = leadrelay("user", "set", "nora@leadrelay.example", "--role", "marketing", "--disable")
    assert changed.returncode == 0 and "nora@leadrelay.example: marketing, team emea, disabled." in changed.stdout
    listed = leadrelay("user", "list")
    assert re.search(r"nora@leadrelay\.example\s+│\s+Nora North\s+│\s+marketing\s+│\s+emea\s+│\s+no", listed.stdout)


def test_the_demo_prints_a_login_for_each_role(leadrelay: Run) -> None:
    demo = leadrelay("demo", "--leads", "1000", "--no-serve")
    assert demo.returncode == 0, demo.stderr
    logins = dict(re.findall(r"│ (admin|marketing|sales manager|sales rep)\s+│ \S+@\S+\s+│ (\S+)\s+│", demo.stdout))
    assert set(logins) == {"admin", "marketing", "sales manager", "sales rep"}, demo.stdout
    listed = leadrelay("user", "list").stdout
    for role in ("admin", "marketing", "sales manager", "sales rep"):  # each once, able to log in
        assert len(re.findall(rf"│ {role}\s+│[^│\n]*│ yes", listed)) == 1, listed
