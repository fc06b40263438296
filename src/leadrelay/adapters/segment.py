"""Segment-format messages (identify, track, page, screen, group, alias) to domain events.

This is the one translation from the Segment message format, shared by the JSONL importer
and the tracking API. A message that cannot be taken raises `InvalidMessage` saying why.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from email_validator import EmailNotValidError, validate_email

from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import InvalidField
from leadrelay.domain.model import Event, normalize_email, snake_name
from leadrelay.domain.playbook import Playbook

MAX_MESSAGE_BYTES = 32 * 1024
MAX_ID_LENGTH = 255
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
TYPES = ("identify", "track", "page", "screen", "group", "alias")
_NAME_OF_TYPE = {"page": "page_view", "screen": "screen_view", "identify": "identify", "group": "group", "alias": "alias"}


class InvalidMessage(ValueError):
    """A message refused, with the reason a person can act on."""


@lru_cache(maxsize=65536)
def checked_email(raw: str) -> str:
    """A lead's key: a valid address, trimmed and lower-cased."""
    try:
        validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidMessage(f"invalid email {raw!r}: {error}") from None
    return normalize_email(raw)


def parse_time(raw: Any, now: datetime, where: str = "timestamp") -> datetime:
    """An ISO 8601 time within a sane range (no earlier than 2000, at most a day ahead)."""
    if not isinstance(raw, str):
        raise InvalidMessage(f"{where}: expected an ISO 8601 time like 2026-11-23T10:00:00Z, got {raw!r}")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidMessage(f"{where}: {raw!r} is not an ISO 8601 time like 2026-11-23T10:00:00Z") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment < EARLIEST:
        raise InvalidMessage(f"{where}: {raw} is before {EARLIEST.year}")
    if moment > now + FUTURE_TOLERANCE:
        raise InvalidMessage(f"{where}: {raw} is in the future")
    return moment


def _text(message: dict[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidMessage(f"{key}: expected text, got {type(value).__name__}")
    value = str(value)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidMessage(f"{key}: longer than {MAX_ID_LENGTH} characters")
    return value


def _mapping(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMessage(f"{key}: expected an object, got {type(value).__name__}")
    return value


def map_traits(raw: dict[str, Any], playbook: Playbook, where: str = "traits") -> dict[str, Any]:
    """Traits (or CSV columns) that name a playbook field, as that field's type."""
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        spec = playbook.field_for(key)
        if spec is None:
            continue
        try:
            fields[spec.name] = spec.coerce(value)
        except InvalidField as error:
            reason = str(error).split(": ", 1)[-1]
            raise InvalidMessage(f"{where}.{key}: {reason}" if where else f"{key}: {reason}") from None
    if "name" not in fields:
        first, last = raw.get("firstName") or raw.get("first_name"), raw.get("lastName") or raw.get("last_name")
        if isinstance(first, str) or isinstance(last, str):
            fields["name"] = " ".join(p.strip() for p in (first, last) if isinstance(p, str) and p.strip()) or None
    return {key: value for key, value in fields.items() if value is not None}


def to_event(message: Any, playbook: Playbook, now: datetime) -> Event:
    if not isinstance(message, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    if kind not in TYPES:
        raise InvalidMessage(f"type: expected one of {', '.join(TYPES)}, got {kind!r}")
    user_id = _text(message, "userId")
    anonymous_id = _text(message, "anonymousId")
    if kind == "alias":
        anonymous_id = _text(message, "previousId")
        if not anonymous_id or not user_id:
            raise InvalidMessage("alias needs both previousId and userId")
    if not user_id and not anonymous_id:
        raise InvalidMessage("a message needs a userId or an anonymousId")
    context = _mapping(message, "context")
    traits = {**_mapping(context, "traits"), **_mapping(message, "traits")}
    properties = _mapping(message, "properties")
    if kind == "track":
        name = _text(message, "event")
        if not name:
            raise InvalidMessage("track needs an event name (the `event` key)")
        name = snake_name(name)
    else:
        name = _NAME_OF_TYPE[kind]
    raw_email = (traits.get("email") or properties.get("email")) if kind != "alias" else None
    if not raw_email and user_id and "@" in user_id:
        raw_email = user_id
    if raw_email is not None and not isinstance(raw_email, str):
        raise InvalidMessage(f"traits.email: expected text, got {type(raw_email).__name__}")
    timestamp = message.get("timestamp") or message.get("originalTimestamp") or message.get("sentAt")
    message_id = _text(message, "messageId") or "sha1:" + hashlib.sha1(
        orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return Event(
        message_id=message_id,
        type=kind,
        name=name,
        timestamp=now if timestamp is None else parse_time(timestamp, now),
        email=checked_email(raw_email) if raw_email else None,
        user_id=user_id,
        anonymous_id=anonymous_id,
        properties=properties,
        traits=map_traits(traits, playbook) if traits else {},
    )
