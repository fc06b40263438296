"""What every route needs: the wired application, the writer, and who is calling.

The REST API (and every route that depends on `authorized`) is open to:
- an **admin key** (`Authorization: Bearer KEY`): everything;
- a **user key** (`leadrelay apikey create --user EMAIL`) or the **web session** of a logged-in
  user (its cookie; calls that change something also send the session's `X-CSRF-Token`): what
  that user's role reaches in the web app — admins everything; the others the routes of
  `SHARED_ROUTES` for their role, and on a deal or a lead only those their role lets them see
  (reading) or move (changing), by `leadrelay.domain.access`.
Write keys send tracking calls only. Each key (and each session) makes at most
`api_rate_per_minute` calls a minute to the REST API, counted in this process.
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadrelay.adapters.api_keys import ApiKey
from leadrelay.adapters.deals import DealFilter
from leadrelay.bootstrap import App
from leadrelay.domain.access import (
    Role,
    User,
    may_move_deal,
    may_reassign,
    may_see_deal,
    may_see_lead,
    teams_of,
)
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import PermissionDenied, Unauthenticated
from leadrelay.services import deals as deal_service
from leadrelay.services import users as user_service
from leadrelay.services.api_keys import RateLimiter, authenticate
from leadrelay.services.tracking import BatchWriter

bearer = HTTPBearer(auto_error=False, description=(
    "An admin key, or a key bound to a user: `Authorization: Bearer KEY` (or the web app's login session)."))

CSRF_HEADER = "x-csrf-token"
READING = frozenset({"GET", "HEAD", "OPTIONS"})


def application(request: Request) -> App:
    return request.app.state.leadrelay  # type: ignore[no-any-return]


def writer(request: Request) -> BatchWriter:
    return request.app.state.writer  # type: ignore[no-any-return]


def key_from_header(authorization: str | None) -> str | None:
    """The key in `Authorization`: `Bearer KEY`, or HTTP Basic with the key as user name."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an API key, or a user (through a key bound to them, or their session).
    `name` is how changes are signed (`by="api:NAME"`): the key's name, or the user's email."""

    name: str
    key: ApiKey | None = None
    user: User | None = None  # None: an admin key, bound to nobody

    @property
    def is_admin(self) -> bool:
        return self.user is None or self.user.role is Role.ADMIN

    @property
    def limit_id(self) -> object:
        return ("key", self.key.id) if self.key is not None else ("user", self.user.id if self.user else 0)


def _limiter(request: Request, setting: str) -> RateLimiter:
    state = request.app.state
    name = f"rate_limiter_{setting}"
    limiter = getattr(state, name, None)
    if limiter is None:
        with _LOCK:
            limiter = getattr(state, name, None)
            if limiter is None:
                limiter = RateLimiter(getattr(application(request).settings, setting))
                setattr(state, name, limiter)
    return limiter  # type: ignore[no-any-return]


_LOCK = threading.Lock()


def limit_tracking(request: Request, key: ApiKey) -> None:
    """Count a tracking call of this key (429 past `tracking_rate_per_minute`)."""
    _limiter(request, "tracking_rate_per_minute").take(("key", key.id), f"the key {key.name!r}")


def identify(request: Request, app: App) -> Caller:
    """The caller behind the request's key or session cookie (401 with neither)."""
    header = request.headers.get("authorization")
    if header:
        key = authenticate(app.read_uow(), key_from_header(header), scope="api")
        return Caller(key.user.email if key.user else key.name, key=key, user=key.user)
    from leadrelay.entrypoints.web.session import (  # the web app's login sessions
        COOKIE,
        policy,
    )

    session = user_service.session(app.uow(), request.cookies.get(COOKIE), now=utc_now(),
                                   policy=policy(app))
    if session is None:
        raise Unauthenticated("an API key is needed (Authorization: Bearer KEY), or a login session")
    if request.method not in READING:
        user_service.check_csrf(session, request.headers.get(CSRF_HEADER))
    return Caller(session.user.email, user=session.user)


# --- what people other than admins reach through the API ------------------------------------

ALL = frozenset(Role)
SALES = frozenset({Role.SALES_MANAGER, Role.SALES_REP})
NUMBERS = frozenset({Role.MARKETING, Role.SALES_MANAGER})  # the dashboard's readers
MARKETING = frozenset({Role.MARKETING})
DEAL_ACTIONS = ("accept", "reject", "disqualify", "win", "lose", "move", "reassign", "touches")

# (method, route) -> the roles that may call it; every other route is for admins. A deal's or a
# lead's own routes are then checked against that deal or lead (see `authorize`).
SHARED_ROUTES: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/api/v1/playbook"): ALL,
    ("GET", "/api/v1/board"): ALL - {Role.ADMIN},
    ("GET", "/api/v1/deals"): ALL - {Role.ADMIN},
    ("GET", "/api/v1/deals/hand-backs"): NUMBERS,
    ("GET", "/api/v1/deals/{deal_id}"): ALL,
    ("GET", "/api/v1/deals/{deal_id}/touches"): ALL,
    **{("POST", f"/api/v1/deals/{{deal_id}}/{action}"): SALES for action in DEAL_ACTIONS},
    ("GET", "/api/v1/leads"): MARKETING,
    ("POST", "/api/v1/leads"): MARKETING,
    ("GET", "/api/v1/leads/{lead_id}"): ALL,
    ("GET", "/api/v1/leads/{lead_id}/events"): ALL,
    ("POST", "/api/v1/leads/{lead_id}/move"): ALL,
    ("GET", "/api/v1/leads/{lead_id}/nurture"): MARKETING,
    **{("GET", f"/api/v1/reports/{name}"): NUMBERS
       for name in ("funnel", "velocity", "sources", "content", "meeting", "sla")},
}


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


def _check_list(request: Request, app: App, user: User) -> None:
    """Sales people list only what they may see: a rep their own deals (`owner=` their email),
    a manager those of their teams or the queue (`team=`) or their own."""
    if not user.role.in_sales:
        return
    owner, team = request.query_params.get("owner"), request.query_params.get("team")
    if owner is not None and owner.strip().lower() == user.email:
        return
    if user.role is Role.SALES_MANAGER and team is not None and (
            team == app.playbook.routing.fallback or team in teams_of(user, app.playbook.routing)):
        return
    mine = f"owner={user.email}" + ("" if user.role is Role.SALES_REP else " or team=one of your teams")
    raise PermissionDenied(f"a {user.role.label} lists only the deals they may see: add {mine}")


def _check_deal(request: Request, app: App, user: User, deal_id: int, *, changing: bool) -> None:
    deal = deal_service.view_deal(app.read_uow(), deal_id).deal  # DealNotFound: 404
    routing = app.playbook.routing
    if not (may_move_deal if changing else may_see_deal)(user, deal.team, deal.owner, routing):
        raise PermissionDenied(f"deal {deal_id} is not one a {user.role.label} may "
                               f"{'change' if changing else 'see'}: it belongs to another team or rep")
    if changing and _route_path(request).endswith("/reassign") and not may_reassign(user):
        raise PermissionDenied("only sales managers and admins reassign deals")


def _check_lead(app: App, user: User, lead_id: int, *, changing: bool) -> None:
    cards = deal_service.find_deals(app.read_uow(), DealFilter(lead_id=lead_id), before=None, limit=50)
    deals = [(card.deal.team, card.deal.owner) for card in cards]
    routing = app.playbook.routing
    if changing and user.role.in_sales:
        allowed = any(may_move_deal(user, team, owner, routing) for team, owner in deals)
    else:
        allowed = may_see_lead(user, deals, routing)
    if not allowed:
        raise PermissionDenied(f"lead {lead_id} is not one a {user.role.label} may "
                               f"{'change' if changing else 'see'}: its deal belongs to another team or rep")


def authorize(request: Request, app: App, caller: Caller) -> None:
    """403 unless the caller's role reaches this route and the deal or lead it names."""
    if caller.is_admin:
        return
    user = caller.user
    assert user is not None
    route = (request.method if request.method != "HEAD" else "GET", _route_path(request))
    if user.role not in SHARED_ROUTES.get(route, frozenset()):
        raise PermissionDenied(f"a {user.role.label} cannot call {route[0]} {route[1]}: it needs an admin")
    changing = request.method not in READING
    params: dict[str, Any] = request.path_params
    if "deal_id" in params:
        _check_deal(request, app, user, int(params["deal_id"]), changing=changing)
    elif "lead_id" in params:
        _check_lead(app, user, int(params["lead_id"]), changing=changing)
    elif route in (("GET", "/api/v1/board"), ("GET", "/api/v1/deals")):
        _check_list(request, app, user)


def authorized(
    request: Request,
    app: Annotated[App, Depends(application)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Caller:
    """The caller, if they may call this route (401: nobody; 403: not theirs; 429: too often):
    admin keys, user keys and sessions, as the module's docstring says."""
    caller = identify(request, app)
    _limiter(request, "api_rate_per_minute").take(caller.limit_id, f"the key {caller.key.name!r}" if caller.key
                                                  else f"the session of {caller.name}")
    authorize(request, app, caller)
    return caller


def admin_only(caller: Annotated[Caller, Depends(authorized)]) -> Caller:
    """Admins only, whatever the route table says (the audit log, ...)."""
    if not caller.is_admin:
        raise PermissionDenied("only admins may call this")
    return caller


AppDep = Annotated[App, Depends(application)]
Authorized = Annotated[Caller, Depends(authorized)]
AdminOnly = Annotated[Caller, Depends(admin_only)]
