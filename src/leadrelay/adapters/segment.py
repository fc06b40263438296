"""Segment-format messages (identify, track, page, screen, group, alias) to domain events.

This is the one translation from the Segment message format, shared by the JSONL importer
and the tracking API. A message that cannot be taken raises `InvalidMessage` saying why.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from email_validator import EmailNotValidError, validate_email

from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import InvalidField
from leadrelay.domain.model import GROUP_ID, Event, normalize_email, snake_name
from leadrelay.domain.playbook import Playbook

MAX_MESSAGE_BYTES = 32 * 1024
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 100
MAX_DEPTH = 32  # objects and arrays within one another in a message
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
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00: in UTC, past the last year a date can have
        raise InvalidMessage(f"{where}: {raw} is out of range (years 1 to 9999 in UTC)") from None
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
    if "\x00" in value:
        raise InvalidMessage(f"{key}: contains a NUL character")
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


MAX_TOUCH_VALUE = 500
_CAMPAIGN_KEYS = {"source": "source", "medium": "medium", "name": "campaign", "term": "term", "content": "content"}
_UTM = {f"utm_{'campaign' if key == 'name' else key}": key for key in _CAMPAIGN_KEYS}  # utm_campaign -> name


def _clean(value: Any) -> str | None:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:MAX_TOUCH_VALUE] or None


def _host(url: str | None) -> str | None:
    try:
        return (urlsplit(url).hostname or None) if url else None
    except ValueError:
        return None


def _query(url: str | None) -> dict[str, str]:
    """The parameters of an address; like its host, none when it cannot be parsed (say, a
    bracketed host that is no IPv6 address): a visit is not refused for its address."""
    try:
        return dict(parse_qsl(urlsplit(url).query)) if url else {}
    except ValueError:
        return {}


def touch_of(context: dict[str, Any], properties: dict[str, Any]) -> dict[str, str] | None:
    """Where a visit came from: its campaign (`context.campaign`, else the utm_* parameters of
    the page's address) and the site that referred it. None for a visit from neither (direct
    traffic, or a move from one page of the site to another)."""
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    url = _clean(properties.get("url")) or _clean(page.get("url"))
    referrer = _clean(properties.get("referrer")) or _clean(page.get("referrer"))
    campaign = context.get("campaign")
    if not isinstance(campaign, dict) or not campaign:
        query = _query(url)
        campaign = {_UTM.get(key, key): value for key, value in query.items() if key.startswith("utm_")}
    touch = {name: value for key, name in _CAMPAIGN_KEYS.items() if (value := _clean(campaign.get(key)))}
    referrer_host = _host(referrer)
    if referrer_host and referrer_host != _host(url):
        touch["referrer"] = referrer  # type: ignore[assignment]
        touch.setdefault("source", referrer_host)
        touch.setdefault("medium", "referral")
    if not touch:
        return None
    if url:
        touch["url"] = url
    return touch


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` objects and arrays, saying where it goes too deep
    (no real message comes near; deeper ones cannot be stored or hashed)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, where = stack.pop()
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in children:
            if isinstance(child, (dict, list)):
                path = f"{where}.{key}" if where else str(key)
                if depth >= limit:
                    raise InvalidMessage(f"{path}: nested deeper than {limit} levels")
                stack.append((child, depth + 1, path))


def to_event(message: Any, playbook: Playbook, now: datetime) -> Event:
    if not isinstance(message, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(message).__name__}")
    check_depth(message)
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
    properties = _mapping(message, "properties")
    if kind in ("page", "screen"):  # their name and category, top-level in the spec, are properties too
        extra = {key: message[key] for key in ("name", "category") if isinstance(message.get(key), str)}
        properties = {**extra, **properties} if extra else properties
    if kind == "group":  # the traits of a group describe the account, not the person
        group_id = _text(message, "groupId")
        if not group_id:
            raise InvalidMessage("group needs a groupId")
        group_traits = _mapping(message, "traits")
        for key in ("name", "domain", "website"):  # they name the account and give its domain
            if isinstance(value := group_traits.get(key), str) and "\x00" in value:
                raise InvalidMessage(f"traits.{key}: contains a NUL character")
        properties = {GROUP_ID: group_id, "traits": group_traits}
        traits = _mapping(context, "traits")
    else:
        traits = {**_mapping(context, "traits"), **_mapping(message, "traits")}
    if kind == "track":
        name = _text(message, "event")
        if not name:
            raise InvalidMessage("track needs an event name (the `event` key)")
        name = snake_name(name)
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidMessage(f"event: longer than {MAX_NAME_LENGTH} characters")
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
        touch=touch_of(context, properties) if kind in ("page", "screen", "track", "identify") else None,
    )


def batch_messages(body: Any, kind: str | None = None) -> list[Any]:
    """The messages of one tracking request. For `/v1/batch` (kind None): the `batch` list,
    with the batch's own `context` and `integrations` merged into each message (the message's
    keys win); for `/v1/track`, `/v1/page`, ...: the body itself, of that type."""
    if not isinstance(body, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(body).__name__}")
    if kind is not None:
        return [{**body, "type": kind}]
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise InvalidMessage("expected a `batch` list of messages")
    shared = {key: body[key] for key in ("context", "integrations") if isinstance(body.get(key), dict)}
    if not shared:
        return batch
    merged: list[Any] = []
    for message in batch:
        if isinstance(message, dict):
            message = dict(message)
            for key, values in shared.items():
                own = message.get(key)
                message[key] = {**values, **own} if isinstance(own, dict) else values
        merged.append(message)
    return merged
