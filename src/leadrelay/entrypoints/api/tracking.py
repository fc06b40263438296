"""The Segment-compatible tracking API: /v1/batch, /v1/identify, /v1/track, /v1/page,
/v1/screen, /v1/group, /v1/alias. Point any Segment or RudderStack library at this server's
address (its `host` setting) and its calls land here."""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from leadrelay.adapters.segment import (
    MAX_DEPTH,
    InvalidMessage,
    batch_messages,
    check_depth,
)
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput
from leadrelay.entrypoints.api.deps import key_from_header, limit_tracking
from leadrelay.services.api_keys import authenticate
from leadrelay.services.tracking import sort_messages

log = logging.getLogger("leadrelay.tracking")
router = APIRouter(prefix="/v1", tags=["tracking"])

MAX_REQUEST_BYTES = 500 * 1024
KINDS = ("identify", "track", "page", "screen", "group", "alias")
_ID = {"type": "string", "maxLength": 255}
_MESSAGE = {"type": "object", "additionalProperties": True,
            "description": "A Segment message (userId or anonymousId, timestamp, messageId, traits, properties, context, ...).",
            "properties": {
                "type": {"type": "string", "enum": list(KINDS), "description": "In a batch; a single call has its own."},
                "userId": _ID, "anonymousId": _ID, "messageId": _ID,
                "previousId": {**_ID, "description": "alias: the id the user had before."},
                "groupId": {**_ID, "description": "group: the account (company) the user belongs to."},
                "event": {"type": "string", "maxLength": 100, "description": "track: what happened."},
                "timestamp": {"type": "string", "format": "date-time", "description": "When it happened (now if absent)."},
                "traits": {"type": "object"}, "properties": {"type": "object"}, "context": {"type": "object"},
            },
            "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]}
_BODIES = {
    None: {"type": "object", "required": ["batch"], "properties": {
        "batch": {"type": "array", "items": _MESSAGE},
        "context": {"type": "object", "description": "Merged into every message's context."},
        "integrations": {"type": "object"},
        "writeKey": {"type": "string", "description": "The write key, for libraries that do not send it as HTTP Basic."},
        "sentAt": {"type": "string", "format": "date-time"},
    }},
}
_ANSWER = {"200": {"description": "Stored (refused messages, if any, are listed with the reason)", "content": {
    "application/json": {"schema": {"type": "object", "properties": {
        "success": {"type": "boolean"}, "accepted": {"type": "integer"},
        "rejected": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "messageId": {"type": "string"}, "reason": {"type": "string"}}}}}}}}},
    "400": {"description": "Not JSON, too large, or (single calls) an invalid message"},
    "401": {"description": "Missing or wrong write key"},
    "429": {"description": "Too much waiting to be stored: retry after `Retry-After` seconds"}}


async def read_body(request: Request) -> tuple[Any, int]:
    """The JSON body and its size, gunzipped if sent with `Content-Encoding: gzip`, at most 500 KB
    either way."""
    limit = MAX_REQUEST_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InvalidInput(f"request larger than {limit // 1024} KB ({int(declared):,} bytes)", "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"request larger than {limit // 1024} KB", "too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error as error:
            raise InvalidInput(f"the body is not valid gzip: {error}", "invalid_gzip") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise InvalidInput(f"request larger than {limit // 1024} KB once unzipped", "too_large")
    elif encoding not in ("", "identity"):
        raise InvalidInput(f"Content-Encoding {encoding!r} is not supported (use gzip or none)", "unsupported_encoding")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"the body is not valid JSON: {error}", "invalid_json") from None
    try:  # a batch and its messages hold at most MAX_DEPTH levels each
        check_depth(body, MAX_DEPTH + 2)
    except InvalidMessage as error:
        raise InvalidInput(f"the body is nested too deep: {error}", "too_deep") from None
    return body, len(raw)


async def _receive(request: Request, kind: str | None) -> dict[str, Any]:
    body, size = await read_body(request)
    app, writer = request.app.state.leadrelay, request.app.state.writer
    key = key_from_header(request.headers.get("authorization"))
    if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    api_key = await run_in_threadpool(authenticate, app.read_uow(), key, scope="write")
    limit_tracking(request, api_key)
    try:
        messages = batch_messages(body, kind)
    except InvalidMessage as error:
        raise InvalidInput(str(error), "invalid_batch") from None
    result = sort_messages(messages, app.playbook, utc_now(), body_size=size)
    for index, rejection in result.rejected:
        log.warning("refused message %d (messageId %s) from key %r: %s", index, rejection.message_id,
                    api_key.name, rejection.reason)
    future = writer.submit(result.events, [r for _, r in result.rejected], api_key_id=api_key.id)
    await asyncio.wrap_future(future)
    if kind is not None and result.rejected:
        raise InvalidInput(result.rejected[0][1].reason, "invalid_message")
    return {
        "success": True,
        "accepted": len(result.events),
        "rejected": [{"index": i, "messageId": r.message_id, "reason": r.reason} for i, r in result.rejected],
    }


def _route(kind: str | None):  # type: ignore[no-untyped-def]
    async def receive(request: Request) -> dict[str, Any]:
        return await _receive(request, kind)

    receive.__name__ = f"receive_{kind or 'batch'}"
    receive.__doc__ = (
        "Store a batch of messages (the form every Segment library sends). Invalid messages are refused one by one."
        if kind is None else f"Store one `{kind}` message."
    )
    return receive


for _kind in (None, *KINDS):
    router.add_api_route(
        f"/{_kind or 'batch'}", _route(_kind), methods=["POST"], responses=_ANSWER,  # type: ignore[arg-type]
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": _BODIES.get(_kind, _MESSAGE)}}}},
    )
