"""Nurture over HTTP.

The REST API (admin key): sequences with their analytics per step, enrollments (by hand too), a
lead's nurture emails, the suppression list, and bounces and complaints reported by the mail
server or provider.

The email links (public, no key, not in the API's documentation: they are what leads click):
`/email/open/{token}` (the open pixel), `/email/click/{token}` (a tracked link: a redirect to the
link written in the email, and only there), `/email/unsubscribe/{token}` (GET: a page with a
button; POST: the unsubscribe itself, which is also RFC 8058's one-click POST). A token this server
did not sign is answered with a plain 404 page; these answers never say whether an address is known,
and never fail with a server error.
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from leadrelay.adapters.email_links import LinkSigner, is_web_url
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput
from leadrelay.domain.model import Event
from leadrelay.domain.nurture import SUPPRESSION_REASONS, Enrollment, Sequence
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized
from leadrelay.services import nurture as service

log = logging.getLogger("leadrelay.nurture")
router = APIRouter(prefix="/api/v1", tags=["nurture"], dependencies=[Depends(authorized)])
links = APIRouter(tags=["email links"], include_in_schema=False)

SequenceId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="The sequence's id.")]
Id = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]
EmailText = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s<>,;\x00]+@[^@\s<>,;\x00]+\.[^@\s<>,;\x00]+$")]
Note = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")]
STATUS_PATTERN = "^(active|completed|exited)$"


# --- what the REST API answers -------------------------------------------------------------


class Counts(BaseModel):
    sent: int = Field(description="Emails written to the outbox for sending.")
    delivered: int = Field(description="Taken by the mail server, and not bounced since.")
    opened: int
    clicked: int
    unsubscribed: int
    bounced: int
    complained: int
    mqls: int = Field(description="Runs that ended because the lead was handed to sales (an MQL or beyond).")


class StepOut(BaseModel):
    step: int = Field(description="The step's number in the sequence (1 is the first).")
    label: str
    counts: Counts


class SequenceOut(BaseModel):
    id: str
    name: str
    kind: str
    trigger: str
    stage: str | None
    in_playbook: bool = Field(description="False for a sequence that has runs but is no longer in the playbook.")
    steps: list[str] = Field(description="Every step, as the playbook says it.")
    runs: dict[str, int] = Field(description="Runs by status: active, completed, exited.")
    exits: dict[str, int] = Field(description="Ended runs by exit reason.")
    totals: Counts
    emails: list[StepOut] = Field(description="Each email step with what its emails did.")


class EnrollmentOut(BaseModel):
    id: int
    lead_id: int
    sequence: str
    kind: str
    trigger: str
    step: int = Field(description="The number of the next step to run.")
    status: str
    enrolled_at: datetime
    next_at: datetime | None
    ended_at: datetime | None
    exit_reason: str | None


class EnrollmentPage(schemas.Page):
    items: list[EnrollmentOut]


class EnrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailText = Field(description="The lead's email.")


class EmailSentOut(BaseModel):
    id: str = Field(description="The email's key (its Message-ID is <id@leadrelay>).")
    sequence: str | None
    step: int | None
    template: str
    subject: str
    queued_at: datetime
    status: str
    opens: int
    clicks: int
    opened_at: datetime | None
    clicked_at: datetime | None
    unsubscribed_at: datetime | None
    bounced_at: datetime | None
    complained_at: datetime | None


class LeadNurtureOut(BaseModel):
    enrollments: list[EnrollmentOut]
    emails: list[EmailSentOut]


class SuppressionOut(BaseModel):
    email: str
    reason: str
    at: datetime
    source: str | None
    note: str | None


class SuppressionPage(schemas.Page):
    items: list[SuppressionOut]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailText
    reason: str = Field("manual", pattern="^(" + "|".join(SUPPRESSION_REASONS) + ")$")
    note: Note | None = None


class SuppressionAdded(BaseModel):
    email: str
    added: bool = Field(description="False when the address was on the list already (it is kept as it was).")


class BounceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailText
    permanent: bool = Field(True, description="A hard bounce suppresses the address; a soft one does not.")
    message_id: Annotated[str, Field(max_length=300, pattern=r"^[^\x00]*$")] | None = Field(
        None, description="The bounced email's Message-ID (<id@leadrelay>) or id, to count it on its step.")
    reason: Note | None = None


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailText
    message_id: Annotated[str, Field(max_length=300, pattern=r"^[^\x00]*$")] | None = None
    reason: Note | None = None


class Reported(BaseModel):
    email: str
    suppressed: bool


def _enrollment(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut(id=enrollment.id, lead_id=enrollment.lead_id, sequence=enrollment.sequence,  # type: ignore[arg-type]
                         kind=enrollment.kind, trigger=enrollment.trigger, step=enrollment.step + 1,
                         status=enrollment.status, enrolled_at=enrollment.enrolled_at, next_at=enrollment.next_at,
                         ended_at=enrollment.ended_at, exit_reason=enrollment.exit_reason)


def _sequence_out(stats: service.SequenceStats, sequence: Sequence | None) -> SequenceOut:
    return SequenceOut(
        id=stats.id, name=stats.name, kind=stats.kind, trigger=stats.trigger,
        stage=sequence.trigger.stage if sequence else None, in_playbook=stats.in_playbook,
        steps=[sequence.step_label(i) for i in range(len(sequence.steps))] if sequence else [],
        runs=stats.runs, exits=stats.exits, totals=Counts(**stats.totals),
        emails=[StepOut(step=step.step, label=step.label, counts=Counts(**step.counts)) for step in stats.steps],
    )


# --- sequences and enrollments -------------------------------------------------------------


@router.get("/sequences", response_model=list[SequenceOut])
def list_sequences(app: AppDep) -> list[SequenceOut]:
    """Every nurture sequence, with its runs and what its emails did (sent, delivered, opened,
    clicked, unsubscribed, bounced, complained) and the MQLs it produced."""
    return [_sequence_out(stats, app.playbook.sequences.get(stats.id))
            for stats in service.analytics(app.read_uow(), app.playbook)]


@router.get("/sequences/{sequence_id}", response_model=SequenceOut)
def get_sequence(sequence_id: SequenceId, app: AppDep) -> SequenceOut:
    """One sequence, with its analytics per email step."""
    [stats] = service.analytics(app.read_uow(), app.playbook, sequence_id)
    return _sequence_out(stats, app.playbook.sequences.get(sequence_id))


@router.get("/sequences/{sequence_id}/enrollments", response_model=EnrollmentPage)
def sequence_enrollments(
    sequence_id: SequenceId, app: AppDep,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN, description="active, completed or exited.")] = None,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EnrollmentPage:
    """The sequence's runs, newest first."""
    found = service.enrollments(app.read_uow(), sequence=sequence_id, status=status,
                                before=schemas.cursor_id(cursor), limit=limit)
    return EnrollmentPage(items=[_enrollment(e) for e in found],
                          next_cursor=schemas.encode_cursor(found[-1].id) if len(found) == limit else None)


@router.post("/sequences/{sequence_id}/enrollments", response_model=EnrollmentOut, status_code=201)
def enroll(sequence_id: SequenceId, body: EnrollIn, app: AppDep) -> EnrollmentOut:
    """Put a lead in a sequence by hand. Refused (400, `enrollment_refused`, saying why) for a lead in
    sales, a customer, a suppressed address, a lead already in a sequence of the same kind, or one
    that went through it before when it does not re-enroll."""
    return _enrollment(service.enroll(app.uow(), app.playbook, sequence_id, body.email, utc_now()))


@router.post("/enrollments/{enrollment_id}/exit", response_model=EnrollmentOut)
def exit_enrollment(enrollment_id: Id, app: AppDep) -> EnrollmentOut:
    """Take a lead out of a sequence (exit reason `removed`); an ended run is answered as it is."""
    return _enrollment(service.remove(app.uow(), enrollment_id, utc_now()))


@router.get("/leads/{lead_id}/nurture", response_model=LeadNurtureOut)
def lead_nurture(lead_id: Id, app: AppDep) -> LeadNurtureOut:
    """A lead's sequence runs and the nurture emails it was sent, newest first."""
    runs = service.enrollments(app.read_uow(), lead_ref=lead_id, limit=100)
    sent = service.emails_of(app.read_uow(), lead_id)
    return LeadNurtureOut(enrollments=[_enrollment(e) for e in runs],
                          emails=[EmailSentOut(id=row["key"], **{k: row[k] for k in EmailSentOut.model_fields if k != "id"})
                                  for row in sent])


# --- suppression list, bounces and complaints ------------------------------------------------


@router.get("/suppressions", response_model=SuppressionPage)
def list_suppressions(
    app: AppDep,
    reason: Annotated[str | None, Query(pattern="^(" + "|".join(SUPPRESSION_REASONS) + ")$")] = None,
    email: Annotated[schemas.Text | None, Query(description="Only this address.")] = None,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SuppressionPage:
    """Addresses no nurture email goes to (unsubscribed, bounced, complained, or added by hand), newest first."""
    rows = service.suppressions(app.read_uow(), reason=reason, email=email, before=schemas.cursor_id(cursor), limit=limit)
    return SuppressionPage(items=[SuppressionOut(**{k: row[k] for k in SuppressionOut.model_fields}) for row in rows],
                           next_cursor=schemas.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None)


@router.post("/suppressions", response_model=SuppressionAdded, status_code=201)
def add_suppression(body: SuppressionIn, app: AppDep) -> SuppressionAdded:
    """Add an address to the suppression list: it gets no nurture email and leaves its sequences."""
    added = service.suppress(app.uow(), body.email, body.reason, utc_now(), note=body.note)
    return SuppressionAdded(email=body.email.strip().lower(), added=added)


@router.delete("/suppressions/{email}", status_code=204)
def remove_suppression(email: Annotated[str, Path(max_length=320)], app: AppDep) -> Response:
    """Take an address off the list (only when the person asked for the emails again)."""
    if not service.unsuppress(app.uow(), email):
        raise InvalidInput(f"{email[:100]!r} is not on the suppression list", "not_suppressed")
    return Response(status_code=204)


@router.post("/email/bounces", response_model=Reported)
def report_bounce(body: BounceIn, app: AppDep) -> Reported:
    """A bounce, as the mail server or provider reported it. A permanent one suppresses the address."""
    suppressed = service.bounced(app.uow(), body.email, utc_now(), permanent=body.permanent,
                                 message_id=body.message_id, reason=body.reason)
    return Reported(email=body.email.strip().lower(), suppressed=suppressed)


@router.post("/email/complaints", response_model=Reported)
def report_complaint(body: ComplaintIn, app: AppDep) -> Reported:
    """A spam complaint (a provider's feedback loop): the address is suppressed."""
    service.complained(app.uow(), body.email, utc_now(), message_id=body.message_id, reason=body.reason)
    return Reported(email=body.email.strip().lower(), suppressed=True)


# --- the email links (public) --------------------------------------------------------------------

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
WRITE_WAIT_SECONDS = 5.0


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
            f"content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title></head>"
            f"<body style=\"font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em\">"
            f"<h1 style=\"font-size:1.4em\">{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(text, status_code=status, headers=NO_STORE)


def _not_found() -> PlainTextResponse:
    return PlainTextResponse("This link is not valid.\n", status_code=404, headers=NO_STORE)


def _unavailable() -> PlainTextResponse:
    return PlainTextResponse("Please try again in a moment.\n", status_code=503, headers={**NO_STORE, "Retry-After": "5"})


def _signer(request: Request) -> LinkSigner:
    signer = getattr(request.app.state, "nurture_signer", None)
    if signer is None:
        app: App = request.app.state.leadrelay
        signer = request.app.state.nurture_signer = service.link_signer(app.uow, app.settings, utc_now())
    return signer  # type: ignore[no-any-return]


async def _track(request: Request, use_case: Any, token: str) -> service.Tracked | None | Exception:
    """Run a link's use case; the exception instead of raising it (a link never answers 500)."""
    app: App = request.app.state.leadrelay
    try:
        signer = await run_in_threadpool(_signer, request)
        return await run_in_threadpool(use_case, app.uow(), signer, token, utc_now())  # type: ignore[no-any-return]
    except Exception as error:
        log.exception("an email link could not be recorded")
        return error


async def _store(request: Request, event: Event | None) -> None:
    """Record the lead's event (it counts for scoring) through the server's writer."""
    if event is None:
        return
    try:
        future = request.app.state.writer.submit([event])
        await asyncio.wait_for(asyncio.wrap_future(future), WRITE_WAIT_SECONDS)
    except Exception:
        log.exception("the %s event of an email could not be stored", event.name)


@links.get("/email/open/{token}")
async def email_open(token: str, request: Request) -> Response:
    tracked = await _track(request, service.opened, token)
    if tracked is None:
        return _not_found()
    if isinstance(tracked, service.Tracked):
        await _store(request, tracked.event)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@links.get("/email/click/{token}")
async def email_click(token: str, request: Request) -> Response:
    tracked = await _track(request, service.clicked, token)
    if tracked is None:
        return _not_found()
    if isinstance(tracked, Exception):  # the link is genuine: go there all the same
        signer = getattr(request.app.state, "nurture_signer", None)
        data = signer.read("click", token) if signer is not None else None
        if data is None or not is_web_url(str(data.get("u", ""))):
            return _unavailable()
        return RedirectResponse(str(data["u"]), status_code=302, headers=NO_STORE)
    await _store(request, tracked.event)
    return RedirectResponse(tracked.target or "/", status_code=302, headers=NO_STORE)


@links.get("/email/unsubscribe/{token}")
async def unsubscribe_page(token: str, request: Request) -> Response:
    try:
        signer = await run_in_threadpool(_signer, request)
    except Exception:
        log.exception("the email links' key could not be read")
        return _unavailable()
    if signer.read("unsubscribe", token) is None:
        return _not_found()
    return _page("Unsubscribe", (
        "<p>Press the button to get no more of these emails.</p>"
        f"<form method=\"post\" action=\"{html.escape(str(request.url.path))}\">"
        "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
        "<button type=\"submit\" style=\"font-size:1em;padding:.5em 1em\">Unsubscribe</button></form>"))


@links.post("/email/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request) -> Response:
    """The unsubscribe itself: the page's button, or a mail program's one-click POST (RFC 8058, body
    `List-Unsubscribe=One-Click`); the token alone says who."""
    tracked = await _track(request, service.unsubscribed, token)
    if tracked is None:
        return _not_found()
    if isinstance(tracked, Exception):
        return _unavailable()
    await _store(request, tracked.event)
    return _page("You are unsubscribed", "<p>You will get no more of these emails.</p>")
