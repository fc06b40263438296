"""Rendering pages: the Jinja2 templates, their filters (times in the playbook's time zone,
ages, scores), and the security headers every page carries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from leadrelay import __version__
from leadrelay.adapters.users import Session
from leadrelay.domain.access import PAGES
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api.deps import application

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__

PAGE_TITLES = {"board": "Board", "marketing": "Marketing", "dashboard": "Dashboard", "playbook": "Playbook",
               "users": "Users", "audit": "Audit log"}


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest two units: '3 d 4 h', '25 min', 'just now'."""
    if moment is None:
        return ""
    seconds = int(((now or utc_now()) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if days:
        return f"{days} d {hours % 24} h" if days < 10 and hours % 24 else f"{days} d"
    if hours:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{minutes} min"


def label(name: str | None) -> str:
    """An identifier as people write it: 'bad_timing' -> 'Bad timing'."""
    return (name or "").replace("_", " ").capitalize()


def render(request: Request, template: str, session: Session | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    app = application(request)
    zone = ZoneInfo(app.playbook.timezone)

    def local(moment: datetime | None, style: str = "%d %b %Y, %H:%M") -> str:
        return "" if moment is None else moment.astimezone(zone).strftime(style + " %Z")

    user = session.user if session else None
    return templates.TemplateResponse(request, template, {
        "user": user, "csrf": session.csrf_token if session else "", "playbook": app.playbook,
        "nav": [(name, PAGE_TITLES[name]) for name in PAGES[user.role]] if user else [],
        "local": local, "age": age, "label": label, "now": utc_now(), **context,
    }, status_code=status)


# Pages run no inline script and load nothing from elsewhere. Charts are images (data: URLs of
# SVG), and styles may be inline (SVG and small layout touches need it).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
