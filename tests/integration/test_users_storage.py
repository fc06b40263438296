"""Users, login sessions and the playbook's versions in the store (SQLite and PostgreSQL):
passwords kept only as Argon2 hashes, failed logins counted and limited, sessions that end when
idle, when too old, at logout or when the user is disabled; versions kept once per change."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.adapters.tables import users as users_table
from leadrelay.adapters.tables import web_sessions
from leadrelay.domain.errors import InvalidInput, TooManyAttempts, Unauthenticated
from leadrelay.domain.playbook import Playbook
from leadrelay.services import playbook as playbook_service
from leadrelay.services import users as user_service
from leadrelay.services.unit_of_work import UnitOfWork

from .support import NOW

PASSWORD = "a long enough password"
POLICY = user_service.SessionPolicy(idle=timedelta(hours=1), lifetime=timedelta(hours=8), max_failures=3,
                                    max_failures_per_address=10, window=timedelta(minutes=15))


@pytest.fixture
def uow(engine: Engine):  # type: ignore[no-untyped-def]
    return lambda: UnitOfWork(engine)


def add(uow, playbook: Playbook, email: str = "rep@leadrelay.example", role: str = "sales_rep", **extra):  # type: ignore[no-untyped-def]
    return user_service.create_user(uow(), playbook, email=email, role=role, password=PASSWORD, now=NOW, **extra)


def log_in(uow, email: str = "rep@leadrelay.example", password: str = PASSWORD, *, minutes: float = 0,  # type: ignore[no-untyped-def]
           address: str = "10.0.0.1"):
    return user_service.log_in(uow(), email, password, address=address, now=NOW + timedelta(minutes=minutes),
                               policy=POLICY)


def test_a_password_is_kept_only_as_an_argon2_hash(engine: Engine, uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook)
    with engine.connect() as connection:
        stored = connection.execute(select(users_table.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.mark.parametrize(("change", "message"), [
    ({"email": "not-an-email"}, "email: 'not-an-email' is not an email address"),
    ({"role": "boss"}, "role: 'boss' is not a role (roles: admin, marketing, sales_manager, sales_rep)"),
    ({"team": "mars"}, "team: no team 'mars' in the playbook (teams: americas, emea, apac)"),
])
def test_a_user_is_refused_with_the_reason(uow, playbook: Playbook, change: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as refused:
        add(uow, playbook, **change)
    assert refused.value.message == message


def test_a_short_password_and_a_second_user_with_the_same_email_are_refused(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        user_service.create_user(uow(), playbook, email="a@leadrelay.example", role="admin", password="short", now=NOW)
    add(uow, playbook, email="A@LeadRelay.example ")
    with pytest.raises(InvalidInput, match="already a user a@leadrelay.example"):
        add(uow, playbook, email="a@leadrelay.example")


def test_logging_in_gives_a_session_that_knows_its_user_and_csrf_token(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook, role="sales_manager", team="emea")
    token, session = log_in(uow, "REP@leadrelay.example")
    found = user_service.session(uow(), token, now=NOW + timedelta(minutes=5), policy=POLICY)
    assert found is not None and found.user.email == "rep@leadrelay.example" and found.user.team == "emea"
    assert found.csrf_token == session.csrf_token and len(found.csrf_token) >= 32
    assert user_service.session(uow(), token + "x", now=NOW, policy=POLICY) is None


def test_a_wrong_email_and_a_wrong_password_get_the_same_answer(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook)
    with pytest.raises(Unauthenticated) as wrong_password:
        log_in(uow, password="not the password")
    with pytest.raises(Unauthenticated) as wrong_email:
        log_in(uow, "nobody@leadrelay.example")
    assert wrong_password.value.message == wrong_email.value.message == "wrong email or password"


def test_too_many_failed_logins_lock_the_email_until_the_window_has_passed(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook)
    for minute in range(POLICY.max_failures):
        with pytest.raises(Unauthenticated):
            log_in(uow, password="guess", minutes=minute)
    with pytest.raises(TooManyAttempts):
        log_in(uow, minutes=3)  # even the right password, now
    token, _ = log_in(uow, minutes=2 + POLICY.window.total_seconds() / 60)  # the first failures have aged out
    assert token


def test_too_many_failures_from_one_address_lock_that_address(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook)
    for number in range(POLICY.max_failures_per_address):
        with pytest.raises(Unauthenticated):
            log_in(uow, f"guess{number}@leadrelay.example", address="10.6.6.6")
    with pytest.raises(TooManyAttempts):
        log_in(uow, address="10.6.6.6")
    assert log_in(uow, address="10.0.0.2")[0]


def test_a_session_ends_when_idle_too_long_and_when_too_old(engine: Engine, uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook)
    token, _ = log_in(uow)
    still = NOW
    for _ in range(9):  # used every 55 minutes: the idle limit (1 h) never passes ...
        still += timedelta(minutes=55)
        found = user_service.session(uow(), token, now=still, policy=POLICY)
        if still - NOW >= POLICY.lifetime:
            assert found is None  # ... but after 8 hours it ends anyway
            break
        assert found is not None
    else:
        pytest.fail("the session never reached its lifetime")
    token, _ = log_in(uow, minutes=600)
    assert user_service.session(uow(), token, now=NOW + timedelta(minutes=600 + 61), policy=POLICY) is None
    with engine.connect() as connection:  # an ended session is deleted, not just refused
        assert connection.execute(select(web_sessions)).all() == []


def test_logging_out_and_disabling_a_user_end_their_sessions(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    add(uow, playbook)
    first, _ = log_in(uow)
    second, _ = log_in(uow)
    user_service.log_out(uow(), first)
    assert user_service.session(uow(), first, now=NOW, policy=POLICY) is None
    assert user_service.session(uow(), second, now=NOW, policy=POLICY) is not None
    user_service.update_user(uow(), playbook, "rep@leadrelay.example", NOW, disabled=True)
    assert user_service.session(uow(), second, now=NOW, policy=POLICY) is None
    with pytest.raises(Unauthenticated):
        log_in(uow)
    user_service.update_user(uow(), playbook, "rep@leadrelay.example", NOW, disabled=False, password="another good one")
    assert log_in(uow, password="another good one")[0]


def test_demo_users_get_new_passwords_on_each_run(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    first = {user.role.value: (user.email, password) for user, password in user_service.demo_users(uow(), playbook, NOW)}
    assert set(first) == {"admin", "marketing", "sales_manager", "sales_rep"}
    second = dict(user_service.demo_users(uow(), playbook, NOW))
    for user, password in second.items():
        assert first[user.role.value][1] != password
        assert log_in(uow, user.email, password)[0]


def test_the_playbook_is_kept_once_per_change_with_who_applied_it(uow, playbook: Playbook) -> None:  # type: ignore[no-untyped-def]
    assert playbook_service.record(uow(), playbook, by="built-in playbook", now=NOW)
    assert not playbook_service.record(uow(), playbook, by="built-in playbook", now=NOW)  # the same text again
    changed = parse_playbook(default_playbook_text().replace("fit >= 40 && engagement >= 40",
                                                             "fit >= 40 && engagement >= 30"))
    assert playbook_service.record(uow(), changed, by="ada@leadrelay.example", now=NOW, note="more MQLs")
    newest, oldest = playbook_service.versions(uow())
    assert (newest.applied_by, newest.note, oldest.applied_by) == ("ada@leadrelay.example", "more MQLs",
                                                                   "built-in playbook")
    change = playbook_service.version_change(uow(), newest.id)
    assert change.previous == oldest
    assert "-  rule: fit >= 40 && engagement >= 40" in change.diff
    assert "+  rule: fit >= 40 && engagement >= 30" in change.diff


def test_a_preview_lists_every_problem_or_says_what_changes(playbook: Playbook) -> None:
    broken = playbook_service.preview(playbook, default_playbook_text().replace("rule: fit >= 40", "rule: fit >>= 40"))
    assert not broken.valid and broken.problems and broken.problems[0].line > 1
    text = default_playbook_text().replace("hand_back: [not ready,", "hand_back: [wrong person, not ready,")
    preview = playbook_service.preview(replace(playbook), text)
    assert preview.valid
    assert preview.changes == [(
        "Hand back reasons: wrong person, not ready, no budget, no authority, no need, bad timing, no response "
        "(was not ready, no budget, no authority, no need, bad timing, no response).")]
