"""API keys: create (the key is shown once), check, list, revoke; and the per-key rate limit.

A key is 32 random bytes; only its SHA-256 is stored. A slow password hash is not needed for
a key this long (nobody can guess it), and a fast one keeps every request cheap.

Scopes: a **write** key sends tracking calls only; an **admin** key does everything; a **user**
key is bound to a user of the web app and acts as that user (their role and teams) on the REST
API, as their login session would.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from datetime import datetime

from leadrelay.adapters.api_keys import ApiKey
from leadrelay.domain.errors import (
    ApiKeyNotFound,
    InvalidInput,
    PermissionDenied,
    TooManyAttempts,
    Unauthenticated,
)
from leadrelay.domain.model import normalize_email
from leadrelay.services import audit
from leadrelay.services.unit_of_work import UnitOfWork

SCOPES = {
    "write": "send tracking calls (/v1/...) only",
    "admin": "everything: the tracking calls and the whole REST API",
    "user": "the REST API as the user the key belongs to: that user's role and teams (create with --user)",
}
KEY_PREFIX = "lr_"
MAX_KEY_LENGTH = 200


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(uow: UnitOfWork, *, name: str, scope: str, now: datetime, user: str | None = None,
               by: str = "cli") -> tuple[str, ApiKey]:
    """A new key: returns the key itself (shown this once, never stored) and its record. With
    `user` (an email), the key belongs to that user and acts as them (scope "user")."""
    if user is not None and scope in ("write", "user"):
        scope = "user"
    if scope not in SCOPES:
        raise InvalidInput(f"scope: expected one of {', '.join(SCOPES)}, got {scope!r}", "invalid_scope")
    if scope == "user" and user is None:
        raise InvalidInput("user: a user key needs the user it acts as (--user EMAIL)", "user_required")
    if scope != "user" and user is not None:
        raise InvalidInput(f"scope: a key bound to a user acts with the user's role; it cannot be a {scope} key "
                           "(leave the scope out)", "invalid_scope")
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name: give the key a name of 1 to 200 characters (who or what uses it)", "invalid_name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with uow:
        user_id = None
        if user is not None:
            found = uow.users.by_email(normalize_email(user))
            if found is None:
                raise InvalidInput(f"user: no user {user!r} (see `leadrelay user list`)", "unknown_user")
            user_id = found[0].id
        record = uow.api_keys.add(name=name, scope=scope, prefix=key[:10], key_hash=_hash(key), now=now,
                                  user_id=user_id)
        audit.record(uow, actor=by, action="api_key.create", subject=f"api_key:{record.id}", now=now,
                     detail={"name": name, "scope": scope, "prefix": record.prefix,
                             "user": record.user.email if record.user else None})
        uow.commit()
    return key, record


def authenticate(uow: UnitOfWork, key: str | None, *, scope: str) -> ApiKey:
    """The key's record, if the key is valid and allows `scope`; else Unauthenticated or
    PermissionDenied. `scope`: "write" (tracking: write and admin keys), "api" (the REST API:
    admin keys, and user keys acting as their user), "admin" (admin keys only)."""
    if not key:
        raise Unauthenticated("an API key is needed (Authorization: Bearer KEY, or the write key as HTTP Basic user)")
    if len(key) > MAX_KEY_LENGTH:
        raise Unauthenticated("this API key is not valid")
    with uow:
        record = uow.api_keys.by_hash(_hash(key))
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("this API key is not valid" if record is None else "this API key was revoked")
    if record.user is not None and not record.user.active:
        raise Unauthenticated(f"the key {record.name!r} belongs to a disabled user")
    allowed = {"write": ("write", "admin"), "api": ("admin", "user"), "admin": ("admin",)}.get(scope, ())
    if record.scope not in allowed:
        needs = {"write": "a write (or admin) key: user keys open the REST API only",
                 "api": "an admin key, or a key bound to a user: write keys only send tracking calls",
                 "admin": "an admin key"}.get(scope, scope)
        raise PermissionDenied(f"the key {record.name!r} is a {record.scope} key: this needs {needs}")
    return record


def list_keys(uow: UnitOfWork) -> list[ApiKey]:
    with uow:
        return uow.api_keys.all()


def revoke_key(uow: UnitOfWork, reference: str, now: datetime, *, by: str = "cli") -> ApiKey:
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
            audit.record(uow, actor=by, action="api_key.revoke", subject=f"api_key:{key.id}", now=now,
                         detail={"name": key.name, "scope": key.scope, "prefix": key.prefix})
            uow.commit()
    return key


class RateLimited(TooManyAttempts):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most `per_minute` calls a minute for each key (a token bucket: a full minute's calls
    may come at once, then they come back evenly). The counts live in this process: with N
    server processes a key may make up to N times the limit. 0: no limit."""

    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.per_minute = per_minute
        self.clock = clock
        self.buckets: dict[object, tuple[float, float]] = {}  # who -> (tokens, at)
        self.lock = threading.Lock()

    def take(self, who: object, what: str) -> None:
        """Count one call of `who`; RateLimited (with the seconds to wait) past the limit."""
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        with self.lock:
            now = self.clock()
            tokens, at = self.buckets.get(who, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                self.buckets[who] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / rate))
                raise RateLimited(f"{what} made more than {self.per_minute} calls a minute: "
                                  f"try again in {wait} s", wait)
            self.buckets[who] = (tokens - 1.0, now)
            if len(self.buckets) > 100_000:  # forget keys unused for a minute: their buckets are full again
                self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
