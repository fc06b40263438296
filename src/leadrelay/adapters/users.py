"""Users of the web app, their login sessions and failed logins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from leadrelay.adapters.tables import login_failures, users, web_sessions
from leadrelay.domain.access import Role, User


def _user(row: Row[Any]) -> User:
    return User(row.id, row.email, row.name, Role(row.role), row.team, row.disabled_at)


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    user: User
    csrf_token: str
    seen_at: datetime
    expires_at: datetime


class UserRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # --- users ---------------------------------------------------------------------------------

    def add(self, *, email: str, name: str, role: Role, team: str | None, password_hash: str,
            now: datetime) -> User:
        row = self.connection.execute(
            insert(users).returning(*users.c),
            {"email": email, "name": name, "role": role.value, "team": team, "password_hash": password_hash,
             "created_at": now},
        ).one()
        return _user(row)

    def by_email(self, email: str) -> tuple[User, str] | None:
        """The user and their password hash."""
        row = self.connection.execute(select(users).where(users.c.email == email)).first()
        return None if row is None else (_user(row), row.password_hash)

    def all(self) -> list[User]:
        return [_user(row) for row in self.connection.execute(select(users).order_by(users.c.email))]

    def update(self, user_id: int, **values: Any) -> None:
        self.connection.execute(update(users).where(users.c.id == user_id).values(**values))

    # --- sessions ------------------------------------------------------------------------------

    def add_session(self, user_id: int, token_hash: str, csrf_token: str, now: datetime,
                    expires_at: datetime) -> None:
        self.connection.execute(insert(web_sessions), {
            "token_hash": token_hash, "user_id": user_id, "csrf_token": csrf_token, "created_at": now,
            "seen_at": now, "expires_at": expires_at,
        })

    def session(self, token_hash: str) -> Session | None:
        row = self.connection.execute(
            select(web_sessions.c.id, web_sessions.c.csrf_token, web_sessions.c.seen_at, web_sessions.c.expires_at,
                   *users.c)
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.token_hash == token_hash)
        ).first()
        if row is None:
            return None
        return Session(row[0], _user(row), row.csrf_token, row.seen_at, row.expires_at)

    def touch_session(self, session_id: int, now: datetime) -> None:
        self.connection.execute(update(web_sessions).where(web_sessions.c.id == session_id).values(seen_at=now))

    def end_sessions(self, *, session_id: int | None = None, user_id: int | None = None,
                     idle_before: datetime | None = None, now: datetime | None = None) -> None:
        """Delete one session, a user's sessions, or (with `idle_before` and `now`) the expired."""
        statement = delete(web_sessions)
        if session_id is not None:
            statement = statement.where(web_sessions.c.id == session_id)
        elif user_id is not None:
            statement = statement.where(web_sessions.c.user_id == user_id)
        else:
            statement = statement.where(or_(web_sessions.c.seen_at < idle_before, web_sessions.c.expires_at <= now))
        self.connection.execute(statement)

    # --- failed logins -------------------------------------------------------------------------

    def add_failure(self, email: str, address: str, now: datetime) -> None:
        self.connection.execute(insert(login_failures), {"email": email, "address": address, "at": now})

    def failures(self, *, since: datetime, email: str | None = None, address: str | None = None) -> int:
        condition = login_failures.c.email == email if email is not None else login_failures.c.address == address
        return self.connection.execute(
            select(func.count()).select_from(login_failures).where(condition, login_failures.c.at >= since)
        ).scalar_one()

    def forget_failures(self, email: str) -> None:
        self.connection.execute(delete(login_failures).where(login_failures.c.email == email))
