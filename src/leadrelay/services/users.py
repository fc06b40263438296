"""Users of the web app: create and manage them, log them in and out, and their sessions.

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, with a CSRF token
every form and script call must send back. Sessions end after `idle` without use, and after
`lifetime` in any case. Failed logins are counted per email and per client address: past the
limit within the window, logins are refused until the window has passed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadrelay.adapters.passwords import hash_password, needs_rehash, verify_password
from leadrelay.adapters.users import Session
from leadrelay.domain.access import Role, User
from leadrelay.domain.errors import (
    InvalidInput,
    PermissionDenied,
    TooManyAttempts,
    Unauthenticated,
    UserNotFound,
)
from leadrelay.domain.model import normalize_email
from leadrelay.domain.playbook import Playbook
from leadrelay.services import audit
from leadrelay.services.unit_of_work import UnitOfWork

MIN_PASSWORD = 10
SEEN_EVERY = timedelta(minutes=1)  # how often a session's last use is written (not on every request)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=12)
    lifetime: timedelta = timedelta(days=7)
    max_failures: int = 5  # per email within the window
    max_failures_per_address: int = 30
    window: timedelta = field(default=timedelta(minutes=15))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _role(raw: str) -> Role:
    try:
        return Role(raw.strip().lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        raise InvalidInput(f"role: {raw!r} is not a role (roles: {', '.join(role.value for role in Role)})",
                           "unknown_role") from None


def _team(team: str | None, playbook: Playbook) -> str | None:
    team = (team or "").strip() or None
    if team is not None and team not in playbook.routing.teams:
        raise InvalidInput(f"team: no team {team!r} in the playbook (teams: {', '.join(playbook.routing.teams)})",
                           "unknown_team")
    return team


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters", "weak_password")
    return hash_password(password)


def _email(raw: str) -> str:
    email = normalize_email(raw)
    local, at, domain = email.partition("@")
    if not local or not at or "." not in domain or any(c.isspace() for c in email):
        raise InvalidInput(f"email: {raw!r} is not an email address", "invalid_email")
    return email


def create_user(uow: UnitOfWork, playbook: Playbook, *, email: str, role: str, password: str, now: datetime,
                name: str | None = None, team: str | None = None, by: str = "cli") -> User:
    """A new user; `by` (who made it) goes into the audit log."""
    email = _email(email)
    with uow:
        if uow.users.by_email(email) is not None:
            raise InvalidInput(f"email: there is already a user {email}", "user_exists")
        user = uow.users.add(email=email, name=(name or "").strip() or email.split("@")[0], role=_role(role),
                             team=_team(team, playbook), password_hash=_password(password), now=now)
        audit.record(uow, actor=by, action="user.create", subject=f"user:{email}", now=now,
                     detail={"role": user.role.value, "team": user.team, "name": user.name})
        uow.commit()
    return user


def update_user(uow: UnitOfWork, playbook: Playbook, email: str, now: datetime, *, role: str | None = None,
                team: str | None = None, name: str | None = None, password: str | None = None,
                disabled: bool | None = None, by: str = "cli") -> User:
    """Change a user; `team=""` clears it. Disabling or a new password ends their sessions.
    `by` (who changed it) goes into the audit log, with what changed (never the password)."""
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = _role(role).value
    if team is not None:
        values["team"] = _team(team, playbook)
    if name is not None and name.strip():
        values["name"] = name.strip()
    if password:
        values["password_hash"] = _password(password)
    if disabled is not None:
        values["disabled_at"] = now if disabled else None
    with uow:
        user = _get(uow, email)
        if values:
            uow.users.update(user.id, **values)
        if password or disabled:
            uow.users.end_sessions(user_id=user.id)
        was = {"role": user.role.value, "team": user.team, "name": user.name, "disabled": not user.active}
        changed: dict[str, object] = {}
        for attribute, column in (("role", "role"), ("team", "team"), ("name", "name"), ("disabled", "disabled_at")):
            if column in values:
                new = values[column] is not None if attribute == "disabled" else values[column]
                if new != was[attribute]:
                    changed[attribute] = {"from": was[attribute], "to": new}
        if "password_hash" in values:
            changed["password"] = "changed"
        if changed:
            audit.record(uow, actor=by, action="user.update", subject=f"user:{user.email}", now=now, detail=changed)
        uow.commit()
        return _get(uow, email)


def users(uow: UnitOfWork) -> list[User]:
    with uow:
        return uow.users.all()


def _get(uow: UnitOfWork, email: str) -> User:
    found = uow.users.by_email(normalize_email(email))
    if found is None:
        raise UserNotFound(f"no user {email}")
    return found[0]


def log_in(uow: UnitOfWork, email: str, password: str, *, address: str, now: datetime,
           policy: SessionPolicy) -> tuple[str, Session]:
    """A new session for the right email and password; the token goes into the cookie. A wrong
    email and a wrong password get the same answer, in the same time."""
    email = normalize_email(email)
    with uow:
        since = now - policy.window
        if (uow.users.failures(since=since, email=email) >= policy.max_failures
                or uow.users.failures(since=since, address=address) >= policy.max_failures_per_address):
            minutes = int(policy.window.total_seconds() // 60)
            raise TooManyAttempts(f"too many failed logins: try again in {minutes} minutes")
        found = uow.users.by_email(email)
        user, stored_hash = found if found is not None else (None, None)
        if not verify_password(stored_hash, password) or user is None or not user.active:
            uow.users.add_failure(email, address, now)
            uow.commit()
            raise Unauthenticated("wrong email or password")
        if needs_rehash(stored_hash):  # type: ignore[arg-type]
            uow.users.update(user.id, password_hash=hash_password(password))
        uow.users.forget_failures(email)
        uow.users.end_sessions(idle_before=now - policy.idle, now=now)  # tidy: expired sessions go
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        uow.users.add_session(user.id, _token_hash(token), csrf, now, now + policy.lifetime)
        uow.commit()
        session = uow.users.session(_token_hash(token))
    assert session is not None
    return token, session


def session(uow: UnitOfWork, token: str | None, *, now: datetime, policy: SessionPolicy) -> Session | None:
    """The live session of this cookie token, or None (unknown, expired, or the user disabled)."""
    if not token:
        return None
    with uow:
        found = uow.users.session(_token_hash(token))
        if found is None:
            return None
        if found.expires_at <= now or found.seen_at + policy.idle <= now or not found.user.active:
            uow.users.end_sessions(session_id=found.id)
            uow.commit()
            return None
        if now - found.seen_at >= SEEN_EVERY:
            uow.users.touch_session(found.id, now)
            uow.commit()
        return found


def log_out(uow: UnitOfWork, token: str | None) -> None:
    if not token:
        return
    with uow:
        found = uow.users.session(_token_hash(token))
        if found is not None:
            uow.users.end_sessions(session_id=found.id)
            uow.commit()


def check_csrf(session: Session, sent: str | None) -> None:
    """Every form and script call that changes something sends the session's CSRF token."""
    if not sent or not secrets.compare_digest(sent, session.csrf_token):
        raise PermissionDenied("the form has expired or did not come from LeadRelay: reload the page and try again")


def demo_users(uow: UnitOfWork, playbook: Playbook, now: datetime) -> list[tuple[User, str]]:
    """One user per role for trying LeadRelay, each with a new random password (printed once):
    an admin, a marketer, the first team's manager and its first rep."""
    team = next(iter(playbook.routing.teams.values()), None)
    people = [
        ("admin@leadrelay.example", Role.ADMIN, "Ada Admin"),
        ("marketing@leadrelay.example", Role.MARKETING, "Mia Marketing"),
        ((team.manager if team and team.manager else "manager@leadrelay.example"), Role.SALES_MANAGER, "Head of Sales"),
    ]
    if team and team.reps:
        people.append((team.reps[0].email, Role.SALES_REP, team.reps[0].name or team.reps[0].email))
    made = []
    for email, role, name in people:
        password = secrets.token_urlsafe(12)
        with uow:
            found = uow.users.by_email(email)
        if found is None:
            user = create_user(uow, playbook, email=email, role=role.value, password=password, name=name, now=now,
                               team=team.id if team and role is Role.SALES_MANAGER else None, by="demo")
        else:
            user = update_user(uow, playbook, email, now, role=role.value, password=password, disabled=False,
                               by="demo")
        made.append((user, password))
    return made
