"""The links in nurture emails: signed tokens, tracked links, the open pixel and the unsubscribe link.

A token is its data (compact JSON, base64url) and an HMAC-SHA256 of that data and of what the token
is for (open, click, unsubscribe), under a secret key only the server knows. A token changed in any
way, or used for another purpose, is refused; a click token carries the URL written in the email,
so a redirect can only ever go where the email pointed (no open redirect).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
from typing import Any

import orjson

PURPOSES = ("open", "click", "unsubscribe")
MAX_TOKEN_LENGTH = 4096
PATHS = {"open": "/email/open/", "click": "/email/click/", "unsubscribe": "/email/unsubscribe/"}
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_web_url(url: str) -> bool:
    return re.match(r"^https?://[^\s/?#]+", url, re.IGNORECASE) is not None and not any(c in url for c in "\r\n\x00")


class LinkSigner:
    """Makes and checks the tokens of one server (`base_url` is where its links point)."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        if len(secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")
        self._secret = secret
        self.base_url = base_url.rstrip("/")

    def _signature(self, purpose: str, payload: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}.{payload}".encode("ascii"), hashlib.sha256).digest()

    def token(self, purpose: str, data: dict[str, Any]) -> str:
        assert purpose in PURPOSES
        payload = _encode(orjson.dumps(data))
        return f"{payload}.{_encode(self._signature(purpose, payload))}"

    def read(self, purpose: str, token: str) -> dict[str, Any] | None:
        """The data of a token this server signed for `purpose`; None for anything else."""
        if purpose not in PURPOSES or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return None
        payload, dot, signature = token.partition(".")
        if not dot or not re.fullmatch(r"[A-Za-z0-9_\-]+", payload) or not re.fullmatch(r"[A-Za-z0-9_\-]+", signature):
            return None
        try:
            given = _decode(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given, self._signature(purpose, payload)):
            return None
        try:
            data = orjson.loads(_decode(payload))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def url(self, purpose: str, data: dict[str, Any]) -> str:
        return f"{self.base_url}{PATHS[purpose]}{self.token(purpose, data)}"

    # --- what one email gets --------------------------------------------------------------------
    def open_url(self, send_key: str) -> str:
        return self.url("open", {"k": send_key})

    def click_url(self, send_key: str, target: str) -> str:
        return self.url("click", {"k": send_key, "u": target})

    def unsubscribe_url(self, send_key: str) -> str:
        return self.url("unsubscribe", {"k": send_key})


def track_html(body: str, signer: LinkSigner, send_key: str, unsubscribe_url: str) -> tuple[str, list[str]]:
    """The HTML with each web link turned into a tracked link, an open pixel, and an unsubscribe link
    at the end unless the email shows one already; and the links it points to."""
    links: list[str] = []
    own = signer.base_url + "/email/"

    def tracked(found: re.Match[str]) -> str:
        target = html.unescape(found.group(3)).strip()
        if not is_web_url(target) or target.startswith(own):
            return found.group(0)
        links.append(target)
        return f"{found.group(1)}{found.group(2)}{html.escape(signer.click_url(send_key, target))}{found.group(2)}"

    body = _HREF.sub(tracked, body)
    extra = ""
    if unsubscribe_url not in html.unescape(body):
        extra += (f'<p style="font-size:12px;color:#666">Do not want these emails? '
                  f'<a href="{html.escape(unsubscribe_url)}">Unsubscribe</a>.</p>')
    extra += f'<img src="{html.escape(signer.open_url(send_key))}" width="1" height="1" alt="" style="display:none">'
    end = None
    for end in _BODY_END.finditer(body):
        pass
    if end is None:
        return body + extra, links
    return body[:end.start()] + extra + body[end.start():], links


def text_with_unsubscribe(text: str, unsubscribe_url: str) -> str:
    if unsubscribe_url in text:
        return text
    return f"{text.rstrip()}\n\n--\nUnsubscribe: {unsubscribe_url}\n"
