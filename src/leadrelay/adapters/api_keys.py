"""API keys: only a hash of each key is stored. A key may be bound to a user: it then acts as
that user (their role and teams)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from leadrelay.adapters.tables import api_keys, users
from leadrelay.domain.access import Role, User


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    user: User | None = None  # a key bound to a user acts as that user


COLUMNS = (*api_keys.c, users.c.email.label("user_email"), users.c.name.label("user_name"),
           users.c.role.label("user_role"), users.c.team.label("user_team"),
           users.c.disabled_at.label("user_disabled_at"))


def _key(row: Row[Any]) -> ApiKey:
    user = None
    if row.user_id is not None:
        user = User(row.user_id, row.user_email, row.user_name, Role(row.user_role), row.user_team,
                    row.user_disabled_at)
    return ApiKey(row.id, row.name, row.scope, row.prefix, row.created_at, row.revoked_at, user)


def _select():  # type: ignore[no-untyped-def]
    return select(*COLUMNS).select_from(api_keys.outerjoin(users, users.c.id == api_keys.c.user_id))


class ApiKeyRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, *, name: str, scope: str, prefix: str, key_hash: str, now: datetime,
            user_id: int | None = None) -> ApiKey:
        key_id = self.connection.execute(
            api_keys.insert().returning(api_keys.c.id),
            {"name": name, "scope": scope, "prefix": prefix, "key_hash": key_hash, "created_at": now,
             "user_id": user_id},
        ).scalar_one()
        return _key(self.connection.execute(_select().where(api_keys.c.id == key_id)).one())

    def by_hash(self, key_hash: str) -> ApiKey | None:
        row = self.connection.execute(_select().where(api_keys.c.key_hash == key_hash)).first()
        return None if row is None else _key(row)

    def all(self) -> list[ApiKey]:
        return [_key(row) for row in self.connection.execute(_select().order_by(api_keys.c.id))]

    def find(self, reference: str) -> list[ApiKey]:
        """Keys by id or by the start of the key (its prefix)."""
        condition = api_keys.c.prefix == reference
        if reference.isdigit() and len(reference) < 18:
            condition = condition | (api_keys.c.id == int(reference))
        return [_key(row) for row in self.connection.execute(_select().where(condition))]

    def revoke(self, key_id: int, now: datetime) -> None:
        self.connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
