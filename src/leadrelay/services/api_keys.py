"""API keys: create (the key is shown once), check, list, revoke.

A key is 32 random bytes; only its SHA-256 is stored. A slow password hash is not needed for
a key this long (nobody can guess it), and a fast one keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from leadrelay.adapters.api_keys import ApiKey
from leadrelay.domain.errors import ApiKeyNotFound, InvalidInput, PermissionDenied, Unauthenticated
from leadrelay.services.unit_of_work import UnitOfWork

SCOPES = {
    "write": "send tracking calls (/v1/...) only",
    "admin": "everything: the tracking calls and the whole REST API",
}
KEY_PREFIX = "lr_"
MAX_KEY_LENGTH = 200


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(uow: UnitOfWork, *, name: str, scope: str, now: datetime) -> tuple[str, ApiKey]:
    """A new key: returns the key itself (shown this once, never stored) and its record."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope: expected one of {', '.join(SCOPES)}, got {scope!r}", "invalid_scope")
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name: give the key a name of 1 to 200 characters (who or what uses it)", "invalid_name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with uow:
        record = uow.api_keys.add(name=name, scope=scope, prefix=key[:10], key_hash=_hash(key), now=now)
        uow.commit()
    return key, record


def authenticate(uow: UnitOfWork, key: str | None, *, scope: str) -> ApiKey:
    """The key's record, if the key is valid and allows `scope`; else Unauthenticated or
    PermissionDenied. An admin key may do everything a write key may."""
    if not key:
        raise Unauthenticated("an API key is needed (Authorization: Bearer KEY, or the write key as HTTP Basic user)")
    if len(key) > MAX_KEY_LENGTH:
        raise Unauthenticated("this API key is not valid")
    with uow:
        record = uow.api_keys.by_hash(_hash(key))
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("this API key is not valid" if record is None else "this API key was revoked")
    if scope == "admin" and record.scope != "admin":
        raise PermissionDenied(f"the key {record.name!r} is a {record.scope} key: this needs an admin key")
    return record


def list_keys(uow: UnitOfWork) -> list[ApiKey]:
    with uow:
        return uow.api_keys.all()


def revoke_key(uow: UnitOfWork, reference: str, now: datetime) -> ApiKey:
    """Revoke the key with this id or prefix; it stops working at once."""
    with uow:
        found = uow.api_keys.find(reference.strip())
        if not found:
            raise ApiKeyNotFound(f"no API key with id or prefix {reference!r} (see `leadrelay apikey list`)")
        if len(found) > 1:
            raise InvalidInput(f"{reference!r} names {len(found)} keys: give the id", "ambiguous_key")
        key = found[0]
        if key.revoked_at is None:
            uow.api_keys.revoke(key.id, now)
            uow.commit()
    return key
