"""API keys: only a hash of each key is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from leadrelay.adapters.tables import api_keys


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(row.id, row.name, row.scope, row.prefix, row.created_at, row.revoked_at)


class ApiKeyRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, *, name: str, scope: str, prefix: str, key_hash: str, now: datetime) -> ApiKey:
        row = self.connection.execute(
            api_keys.insert().returning(*api_keys.c),
            {"name": name, "scope": scope, "prefix": prefix, "key_hash": key_hash, "created_at": now},
        ).one()
        return _key(row)

    def by_hash(self, key_hash: str) -> ApiKey | None:
        row = self.connection.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return None if row is None else _key(row)

    def all(self) -> list[ApiKey]:
        return [_key(row) for row in self.connection.execute(select(api_keys).order_by(api_keys.c.id))]

    def find(self, reference: str) -> list[ApiKey]:
        """Keys by id or by the start of the key (its prefix)."""
        condition = api_keys.c.prefix == reference
        if reference.isdigit() and len(reference) < 18:
            condition = condition | (api_keys.c.id == int(reference))
        return [_key(row) for row in self.connection.execute(select(api_keys).where(condition))]

    def revoke(self, key_id: int, now: datetime) -> None:
        self.connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
