"""Nurture use cases: leads enter and leave sequences as they move, the worker advances the runs
that are due (each email rendered and written to the outbox in the transaction that advances its
run), the outbox holds back what may no longer go, and opens, clicks, unsubscribes, bounces and
complaints are recorded. Sequence analytics sum it all per sequence and step.

Nobody in a sales stage, no customer, no disqualified lead and no suppressed address gets a nurture
email: checked when a lead would enter, at every step, and once more just before delivery.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadrelay.adapters.email_links import (
    LinkSigner,
    is_web_url,
    text_with_unsubscribe,
    track_html,
)
from leadrelay.adapters.nurture import EmailCounts, NewSend, NurtureRepository
from leadrelay.adapters.outbox import Item, NewItem
from leadrelay.config import Settings
from leadrelay.domain import nurture as domain
from leadrelay.domain.errors import InvalidInput
from leadrelay.domain.lifecycle import RuleContext
from leadrelay.domain.model import Event, Lead, email_domain, normalize_email
from leadrelay.domain.nurture import (
    Enrollment,
    EnrollmentNotFound,
    EnrollmentRefused,
    SequenceNotFound,
)
from leadrelay.domain.playbook import Playbook
from leadrelay.services.unit_of_work import UnitOfWork

log = logging.getLogger("leadrelay.nurture")
EVENT_PREFIX = "nurture."
TEMPLATE_ERROR = "[template error:"  # what a template that failed renders (adapters/templates.py)


@dataclass(frozen=True)
class NurtureSettings:
    sender: str | None = None
    limits: domain.RateLimits = field(default_factory=domain.RateLimits)
    quiet: domain.QuietHours | None = None
    batch: int = 500

    @classmethod
    def of(cls, settings: Settings) -> NurtureSettings:
        return cls(
            sender=settings.nurture_sender or None,
            limits=domain.RateLimits(settings.nurture_per_minute or None, settings.nurture_per_domain_per_minute or None),
            quiet=domain.QuietHours.parse(settings.nurture_quiet_hours),
            batch=settings.nurture_batch,
        )


def _repo(uow: UnitOfWork) -> NurtureRepository:
    return NurtureRepository(uow.connection)


def link_signer(uow_factory: Callable[[], UnitOfWork], settings: Settings, now: datetime) -> LinkSigner:
    """The signer of this server's email links: the configured secret, else the one kept in the database."""
    secret = settings.email_link_secret
    if secret is None:
        with uow_factory() as uow:
            secret = _repo(uow).link_key(now)
            uow.commit()
    return LinkSigner(secret.encode("utf-8"), settings.link_base_url())


# --- entering and leaving as leads move (inside the use case's transaction) -------------------------


def follow_moves(uow: UnitOfWork, playbook: Playbook, leads: Iterable[Lead], now: datetime,
                 requested: Iterable[tuple[Lead, str, str]] = ()) -> None:
    """Enroll and exit as this transaction's moves say: a lead entering a sales stage (an MQL or
    beyond), becoming a customer or being disqualified leaves its sequences; new leads, handed-back
    leads, leads entering a stage and leads in a segment enter theirs (as each sequence's trigger,
    condition and re-enrollment rule allow). `requested`: (lead, sequence, automation) from
    automations' `enroll` actions."""
    sequences = playbook.sequences
    requested = list(requested)
    if not sequences:
        return
    leads = [lead for lead in leads if lead.id is not None]
    moved = [lead for lead in leads if lead.history]
    candidates: list[tuple[Lead, domain.Sequence, str]] = []
    for lead in moved:
        for change in lead.history:
            for sequence in sequences.values():
                on = sequence.trigger.on
                if ((on == "new_lead" and change.from_stage is None)
                        or (on == "hand_back" and change.from_stage is not None
                            and change.to_stage == playbook.hand_back_stage)
                        or (on == "stage_entered" and change.to_stage == sequence.trigger.stage)):
                    candidates.append((lead, sequence, on))
    segments = [sequence for sequence in sequences.values() if sequence.trigger.on == "segment"]
    for lead in leads:
        candidates.extend((lead, sequence, "segment") for sequence in segments)
    candidates.extend((lead, sequences[name], f"automation:{automation}"[:64])
                      for lead, name, automation in requested if name in sequences and lead.id is not None)
    stopping = {lead.id: reason for lead in moved if (reason := domain.stop_reason(lead, playbook))}
    candidates = [(lead, sequence, trigger) for lead, sequence, trigger in candidates
                  if lead.id not in stopping and _enters(sequence, lead, playbook, now, trigger)]
    if not candidates and not stopping:
        return
    repo = _repo(uow)
    active = repo.active_for({lead.id for lead, _, _ in candidates} | stopping.keys())  # type: ignore[arg-type]
    ended = []
    for lead_id, reason in stopping.items():
        for enrollment in active.pop(lead_id, []):  # type: ignore[arg-type]
            enrollment.exit(reason, now)
            ended.append(enrollment)
    repo.save_enrollments(ended)
    if candidates:
        _enroll_all(repo, playbook, candidates, active, now)


def _enters(sequence: domain.Sequence, lead: Lead, playbook: Playbook, now: datetime, trigger: str) -> bool:
    when = sequence.trigger.when
    return when is None or trigger.startswith("automation:") or when(RuleContext(lead, playbook, now))


def _enroll_all(repo: NurtureRepository, playbook: Playbook, candidates: list[tuple[Lead, domain.Sequence, str]],
                active: dict[int, list[Enrollment]], now: datetime) -> list[Enrollment]:
    leads = {lead.id: lead for lead, _, _ in candidates}
    suppressed = repo.suppressed({lead.email for lead in leads.values()})
    new_leads = {lead.id for lead in leads.values() if lead.history and lead.history[0].from_stage is None}
    returning = leads.keys() - new_leads  # a lead created in this transaction has no earlier runs
    past = repo.runs(returning, {sequence.id for _, sequence, _ in candidates}) if returning else {}  # type: ignore[arg-type]
    added: list[Enrollment] = []
    for lead, sequence, trigger in candidates:
        assert lead.id is not None
        mine = active.setdefault(lead.id, [])
        runs = past.setdefault((lead.id, sequence.id), [])
        if domain.refusal(sequence, lead, playbook, now=now, suppressed=suppressed.get(lead.email),
                          active_kinds={e.kind for e in mine}, past=runs) is None:
            enrollment = domain.enroll(sequence, lead.id, now, trigger)
            mine.append(enrollment)
            runs.append(enrollment)
            added.append(enrollment)
    repo.add_enrollments(added)
    return added


def enroll(uow: UnitOfWork, playbook: Playbook, sequence_id: str, lead_ref: str | int, now: datetime) -> Enrollment:
    """Put a lead in a sequence by hand (as its rules allow), or say why not."""
    sequence = _sequence(playbook, sequence_id)
    with uow:
        lead = uow.leads.find(lead_ref, lock=True)
        repo = _repo(uow)
        active = repo.active_for([lead.id])  # type: ignore[list-item]
        why = domain.refusal(sequence, lead, playbook, now=now, suppressed=repo.suppressed([lead.email]).get(lead.email),
                             active_kinds={e.kind for e in active.get(lead.id, [])},  # type: ignore[arg-type]
                             past=repo.runs([lead.id], [sequence.id]).get((lead.id, sequence.id), []))  # type: ignore[list-item,arg-type]
        if why is not None:
            raise EnrollmentRefused(f"{lead.email} cannot enter {sequence.id!r}: {why}")
        enrollment = domain.enroll(sequence, lead.id, now, "manual")  # type: ignore[arg-type]
        repo.add_enrollment(enrollment)
        uow.commit()
    return enrollment


def remove(uow: UnitOfWork, enrollment_id: int, now: datetime) -> Enrollment:
    """Take a lead out of a sequence by hand."""
    with uow:
        repo = _repo(uow)
        enrollment = repo.get(enrollment_id)
        if enrollment is None:
            raise EnrollmentNotFound(f"no enrollment with id {enrollment_id}")
        if enrollment.active:
            enrollment.exit("removed", now)
            repo.save_enrollments([enrollment])
            uow.commit()
    return enrollment


def _sequence(playbook: Playbook, sequence_id: str) -> domain.Sequence:
    sequence = playbook.sequences.get(sequence_id)
    if sequence is None:
        known = ", ".join(playbook.sequences) or "none"
        raise SequenceNotFound(f"no sequence {sequence_id!r} in the playbook (sequences: {known})")
    return sequence



# --- the worker: advancing the runs that are due -------------------------------------------------


@dataclass
class _Round:
    playbook: Playbook
    settings: NurtureSettings
    signer: LinkSigner
    now: datetime
    sends: list[NewSend] = field(default_factory=list)
    items: list[NewItem] = field(default_factory=list)


def advance(uow_factory: Callable[[], UnitOfWork], playbook: Playbook, settings: NurtureSettings, signer: LinkSigner,
            now: datetime) -> int:
    """Run the steps of every enrollment due at `now` (up to a batch): branches are followed, waits
    started, and each email rendered and written to the outbox with its send record, in the one
    transaction that moves the run on. Quiet hours and the rate limits postpone an email; a lead
    that may no longer get nurture mail leaves. How many enrollments were looked at."""
    if not playbook.sequences:
        return 0
    with uow_factory() as uow:
        repo = _repo(uow)
        due = repo.due(now, limit=settings.batch)
        if not due:
            return 0
        leads = uow.leads.by_ids({e.lead_id for e in due})
        suppressed = repo.suppressed({lead.email for lead in leads.values()})
        counts = repo.email_counts([e.id for e in due])  # type: ignore[misc]
        accounts = uow.deals.accounts_of({lead.account_id for lead in leads.values() if lead.account_id})
        sent, by_domain = repo.sent_since(settings.limits.window_start(now))
        budget = domain.SendBudget(settings.limits, now, sent, by_domain)
        run = _Round(playbook, settings, signer, now)
        for enrollment in due:
            _advance_one(run, enrollment, leads.get(enrollment.lead_id), suppressed, counts, accounts, budget)
        repo.add_sends(run.sends, now)
        uow.outbox.add(run.items, now)
        repo.save_enrollments(due)
        uow.commit()
    return len(due)


def _advance_one(run: _Round, enrollment: Enrollment, lead: Lead | None, suppressed: Mapping[str, str],
                 counts: Mapping[int, EmailCounts], accounts: Mapping[int, dict[str, Any]],
                 budget: domain.SendBudget) -> None:
    now, playbook = run.now, run.playbook
    enrollment.dirty = True
    sequence = playbook.sequences.get(enrollment.sequence)
    if lead is None or sequence is None:  # the sequence left the playbook
        enrollment.exit("removed", now)
        return
    reason = domain.stop_reason(lead, playbook, suppressed.get(lead.email))
    mine = counts.get(enrollment.id or 0, EmailCounts())
    context = RuleContext(lead, playbook, now)
    context["last_email"] = {"opened": mine.last_opened, "clicked": mine.last_clicked}
    context["emails"] = {"sent": mine.sent, "opened": mine.opened, "clicked": mine.clicked}
    if reason is None and sequence.exit_when is not None and sequence.exit_when(context):
        reason = "condition"
    if reason is not None:
        enrollment.exit(reason, now)
        return
    # a wait counts from when the run was due (a worker that was stopped for a while does not add to it)
    outcome = domain.walk(sequence, enrollment.step, context, min(enrollment.next_at or now, now))
    if outcome.action == "complete":
        enrollment.step = outcome.step
        enrollment.complete(now)
        return
    if outcome.action == "wait":
        enrollment.step, enrollment.next_at = outcome.step, outcome.at
        return
    if run.settings.quiet is not None:
        allowed = run.settings.quiet.next_allowed(now, _zone(lead, playbook))
        if allowed > now:
            enrollment.next_at = allowed  # the branches are taken again then, on what is known then
            return
    if not budget.take(email_domain(lead.email)):
        enrollment.next_at = budget.next_window
        return
    template = playbook.email_templates[outcome.template]  # type: ignore[index]
    try:
        _queue(run, enrollment, sequence, template, lead, accounts.get(lead.account_id or 0), outcome.email_step)
    except Exception as error:  # noqa: BLE001 - one lead's broken email must not stop everyone's
        log.warning("the %s email of %s could not be rendered for lead %s: %s", template.name, sequence.id,
                    lead.id, error)
        enrollment.exit("template_error", now)  # counted among the exits: the template needs fixing
        return
    enrollment.step, enrollment.last_email_step, enrollment.next_at = outcome.step, outcome.email_step, now
    follow = domain.after_send(sequence, outcome.step, now)
    if follow is not None and follow.action == "wait":
        enrollment.step, enrollment.next_at = follow.step, follow.at
    elif follow is not None:
        enrollment.complete(now)


def _zone(lead: Lead, playbook: Playbook) -> tzinfo:
    for name in (lead.fields.get("timezone"), playbook.timezone):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return domain.UTC


def template_values(lead: Lead, account: Mapping[str, Any] | None, sequence: domain.Sequence) -> dict[str, Any]:
    """What an email template reads: the lead (every field, email, first_name), its account, the sequence."""
    values = lead.context()
    name = values.get("name")
    if isinstance(name, str) and name.strip():
        values["first_name"] = name.strip().split()[0]
    shown = {key: value for key, value in (account or {}).items() if key in ("name", "domain", "is_target", "owner")}
    if isinstance((account or {}).get("traits"), dict):
        shown.update({k: v for k, v in account["traits"].items() if k not in shown})  # type: ignore[index]
    return {"lead": values, "account": shown, "sequence": {"id": sequence.id, "name": sequence.name}}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    headers: dict[str, str]
    links: list[str]


def render(template: domain.EmailTemplate, values: dict[str, Any], signer: LinkSigner, key: str) -> Rendered:
    """One email for one lead: the templates filled in, web links tracked, an open pixel, the unsubscribe
    link (in the body unless the template shows one) and the one-click unsubscribe headers (RFC 8058)."""
    unsubscribe = signer.unsubscribe_url(key)
    values = {**values, "unsubscribe_url": unsubscribe}
    parts = [template.subject(values), template.text(values), template.html(values) if template.html else None]
    for part in parts:
        if part is not None and TEMPLATE_ERROR in part:  # a template that fails is not sent half-rendered
            raise ValueError(part[part.index(TEMPLATE_ERROR):][:300])
    subject = " ".join(parts[0].split())[:300] or "(no subject)"  # type: ignore[union-attr]
    text = text_with_unsubscribe(parts[1], unsubscribe)  # type: ignore[arg-type]
    html, links = (None, [])
    if parts[2] is not None:
        html, links = track_html(parts[2], signer, key, unsubscribe)
    headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return Rendered(subject, text, html, headers, links)


def _queue(run: _Round, enrollment: Enrollment, sequence: domain.Sequence, template: domain.EmailTemplate,
           lead: Lead, account: Mapping[str, Any] | None, step: int | None) -> None:
    key = uuid.uuid4().hex
    rendered = render(template, template_values(lead, account, sequence), run.signer, key)
    run.sends.append(NewSend(key, lead.id, enrollment.id, sequence.id, step, template.name, lead.email,  # type: ignore[arg-type]
                             rendered.subject))
    payload: dict[str, Any] = {
        "to": [lead.email], "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
        "headers": rendered.headers, "lead_id": lead.id, "send_key": key,
    }
    if run.settings.sender:
        payload["sender"] = run.settings.sender
    run.items.append(NewItem(key, "email", f"{EVENT_PREFIX}{sequence.id}"[:100], payload))


# --- delivery: the last check before an email goes ---------------------------------------------------


def screen(uow: UnitOfWork, playbook: Playbook, items: list[Item]) -> dict[int, str]:
    """The nurture emails among `items` that must not go after all (the lead moved to sales, became a
    customer, or the address was suppressed since it was queued), each with why; their sends are
    marked cancelled. Called by the outbox's delivery, in the transaction that claims the items."""
    mine = [item for item in items if item.kind == "email" and item.payload.get("send_key")]
    if not mine:
        return {}
    repo = _repo(uow)
    leads = uow.leads.by_ids({item.payload.get("lead_id") for item in mine} - {None})
    suppressed = repo.suppressed({address for item in mine for address in item.payload.get("to", [])})
    refused: dict[int, str] = {}
    for item in mine:
        lead = leads.get(item.payload.get("lead_id"))
        address = (item.payload.get("to") or [""])[0]
        reason = "lead deleted" if lead is None else domain.stop_reason(lead, playbook, suppressed.get(address.lower()))
        if reason is not None:
            refused[item.id] = f"not sent: {reason}"
    repo.cancel({item.key: refused[item.id].removeprefix("not sent: ") for item in mine if item.id in refused})
    return refused


# --- what leads do with the emails (public links) -------------------------------------------------


@dataclass(frozen=True)
class Tracked:
    """What a link recorded: the event to store for the lead (None when the email is unknown)."""

    event: Event | None
    target: str | None = None  # a click's destination


def opened(uow: UnitOfWork, signer: LinkSigner, token: str, now: datetime) -> Tracked | None:
    """An open (the pixel was loaded); None when the token is not one this server signed."""
    data = signer.read("open", token)
    if data is None or not isinstance(data.get("k"), str):
        return None
    return Tracked(_record(uow, data["k"], now, "email_open", lambda repo, key: repo.count_open(key, now)))


def clicked(uow: UnitOfWork, signer: LinkSigner, token: str, now: datetime) -> Tracked | None:
    """A click: where to send the reader (the link written in the email); None for a token this
    server did not sign, or one without a web address."""
    data = signer.read("click", token)
    if data is None or not isinstance(data.get("k"), str) or not isinstance(data.get("u"), str):
        return None
    target = data["u"]
    if not is_web_url(target):
        return None
    digest = hashlib.sha256(target.encode()).hexdigest()[:12]
    event = _record(uow, data["k"], now, "email_click", lambda repo, key: repo.count_click(key, now),
                    suffix=digest, url=target)
    return Tracked(event, target)


def unsubscribed(uow: UnitOfWork, signer: LinkSigner, token: str, now: datetime) -> Tracked | None:
    """The reader unsubscribed (the link, or a mail program's one-click POST): the address the email
    went to is suppressed and leaves every sequence. None for a token this server did not sign; the
    answer says nothing about the address either way."""
    data = signer.read("unsubscribe", token)
    if data is None or not isinstance(data.get("k"), str):
        return None
    key = data["k"]
    with uow:
        repo = _repo(uow)
        send = repo.send(key)
        if send is None:
            return Tracked(None)
        repo.suppress(send.email, "unsubscribed", now, source=key[:200], note=None)
        repo.mark(key, "unsubscribed_at", now)
        _exit_address(uow, send.email, "unsubscribed", now)
        uow.commit()
    return Tracked(Event(message_id=f"unsubscribe:{key}", type="track", name="unsubscribe", timestamp=now,
                         email=send.email, properties=_properties(send)))


def _record(uow: UnitOfWork, key: str, now: datetime, name: str, count: Callable[[NurtureRepository, str], None],
            suffix: str = "", **extra: Any) -> Event | None:
    with uow:
        repo = _repo(uow)
        send = repo.send(key)
        if send is None:
            return None
        count(repo, key)
        uow.commit()
    # one event per email (per link, for clicks): repeated opens change no score twice
    message_id = f"{name}:{key}" + (f":{suffix}" if suffix else "")
    return Event(message_id=message_id, type="track", name=name, timestamp=now, email=send.email,
                 properties={**_properties(send), **extra})


def _properties(send: Any) -> dict[str, Any]:
    return {"sequence": send.sequence, "step": None if send.step is None else send.step + 1,
            "template": send.template, "email_id": send.key}


def _exit_address(uow: UnitOfWork, email: str, reason: str, now: datetime) -> None:
    lead = uow.leads.by_emails([email]).get(email)
    if lead is None:
        return
    repo = _repo(uow)
    active = repo.active_for([lead.id]).get(lead.id, [])  # type: ignore[list-item,arg-type]
    for enrollment in active:
        enrollment.exit(reason, now)
    repo.save_enrollments(active)


# --- bounces, complaints and the suppression list (REST API, CLI) --------------------------------


def _send_key(message_id: str | None) -> str | None:
    """The send a bounce or complaint names: its Message-ID (<KEY@leadrelay>) or its key."""
    if not message_id:
        return None
    return message_id.strip().strip("<>").partition("@")[0] or None


def bounced(uow: UnitOfWork, email: str, now: datetime, *, permanent: bool = True, message_id: str | None = None,
            reason: str | None = None) -> bool:
    """A bounce the mail server or provider reported. A permanent (hard) bounce suppresses the address
    and takes it out of every sequence; a temporary one is only recorded on its email. Whether the
    address is now suppressed."""
    email = _checked_email(email)
    key = _send_key(message_id)
    with uow:
        repo = _repo(uow)
        if key is not None and permanent:
            repo.mark(key, "bounced_at", now)
        if permanent:
            repo.suppress(email, "bounced", now, source=key or "api", note=reason)
            _exit_address(uow, email, "bounced", now)
        uow.commit()
        return permanent


def complained(uow: UnitOfWork, email: str, now: datetime, *, message_id: str | None = None,
               reason: str | None = None) -> None:
    """A spam complaint (feedback loop): the address is suppressed and leaves every sequence."""
    email = _checked_email(email)
    key = _send_key(message_id)
    with uow:
        repo = _repo(uow)
        if key is not None:
            repo.mark(key, "complained_at", now)
        repo.suppress(email, "complained", now, source=key or "api", note=reason)
        _exit_address(uow, email, "complained", now)
        uow.commit()


def suppress(uow: UnitOfWork, email: str, reason: str, now: datetime, *, note: str | None = None,
             source: str = "api") -> bool:
    """Add an address to the suppression list by hand; whether it was new."""
    email = _checked_email(email)
    if reason not in domain.SUPPRESSION_REASONS:
        raise InvalidInput(f"reason: one of {', '.join(domain.SUPPRESSION_REASONS)}", "invalid_reason")
    with uow:
        added = _repo(uow).suppress(email, reason, now, source=source, note=note)
        _exit_address(uow, email, reason if reason in domain.EXIT_REASONS else "suppressed", now)
        uow.commit()
    return added


def unsuppress(uow: UnitOfWork, email: str) -> bool:
    """Take an address off the list (the person opted in again); whether it was on it."""
    with uow:
        removed = _repo(uow).unsuppress(normalize_email(email))
        uow.commit()
    return removed


def suppressions(uow: UnitOfWork, *, reason: str | None = None, email: str | None = None, before: int | None = None,
                 limit: int = 50) -> list[dict[str, Any]]:
    with uow:
        return _repo(uow).suppressions(reason=reason, email=email, before=before, limit=limit)


def _checked_email(email: str) -> str:
    email = normalize_email(email)
    local, at, domain_ = email.rpartition("@")
    if not at or not local or "." not in domain_ or any(c.isspace() or c in "<>,;\x00" for c in email):
        raise InvalidInput(f"email: {email[:100]!r} is not an email address", "invalid_email")
    return email


# --- reading ----------------------------------------------------------------------------------------


def enrollments(uow: UnitOfWork, *, lead_ref: str | int | None = None, sequence: str | None = None,
                status: str | None = None, before: int | None = None, limit: int = 50) -> list[Enrollment]:
    with uow:
        lead_id = None
        if lead_ref is not None:
            lead_id = uow.leads.find(lead_ref, lock=True).id
        return _repo(uow).enrollments(lead_id=lead_id, sequence=sequence, status=status, before=before, limit=limit)


def emails_of(uow: UnitOfWork, lead_ref: str | int) -> list[dict[str, Any]]:
    """The nurture emails a lead was sent, newest first."""
    with uow:
        return _repo(uow).sends_of(uow.leads.find(lead_ref, lock=True).id)  # type: ignore[arg-type]


STAT_NAMES = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "complained", "mqls")


@dataclass
class StepStats:
    step: int  # 1-based, as marketing counts them
    label: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_NAMES, 0))


@dataclass
class SequenceStats:
    id: str
    name: str
    kind: str
    trigger: str
    in_playbook: bool
    runs: dict[str, int]  # active, completed, exited
    exits: dict[str, int]  # by reason
    totals: dict[str, int]
    steps: list[StepStats]


def analytics(uow: UnitOfWork, playbook: Playbook, sequence_id: str | None = None) -> list[SequenceStats]:
    """Per sequence and step: emails sent, delivered, opened, clicked, unsubscribed, bounced,
    complained, and the MQLs produced (runs that ended because the lead was handed to sales,
    credited to the step of the last email it was sent)."""
    if sequence_id is not None and sequence_id not in playbook.sequences:
        _sequence(playbook, sequence_id)
    with uow:
        repo = _repo(uow)
        steps_rows, runs_rows = repo.step_sums(sequence_id), repo.enrollment_sums(sequence_id)
    found: dict[str, SequenceStats] = {}

    def stats(name: str) -> SequenceStats:
        if name not in found:
            sequence = playbook.sequences.get(name)
            found[name] = SequenceStats(
                id=name, name=sequence.name if sequence else name, kind=sequence.kind if sequence else "",
                trigger=sequence.trigger.on if sequence else "", in_playbook=sequence is not None,
                runs={"active": 0, "completed": 0, "exited": 0}, exits={}, totals=dict.fromkeys(STAT_NAMES, 0),
                steps=[StepStats(i + 1, sequence.step_label(i)) for i, step in enumerate(sequence.steps)
                       if isinstance(step, domain.SendEmail)] if sequence else [])
        return found[name]

    def step_of(entry: SequenceStats, index: int) -> StepStats:
        for step in entry.steps:
            if step.step == index + 1:
                return step
        step = StepStats(index + 1, f"{index + 1}. (no longer in the playbook)")
        entry.steps.append(step)
        entry.steps.sort(key=lambda s: s.step)
        return step

    for name in (playbook.sequences if sequence_id is None else [sequence_id]):
        stats(name)
    for row in steps_rows:
        entry = stats(row["sequence"])
        target = step_of(entry, row["step"] if row["step"] is not None else -1)
        for key in STAT_NAMES[:-1]:
            target.counts[key] += int(row[key])
            entry.totals[key] += int(row[key])
    for row in runs_rows:
        entry = stats(row["sequence"])
        entry.runs[row["status"]] = entry.runs.get(row["status"], 0) + int(row["runs"])
        if row["exit_reason"]:
            entry.exits[row["exit_reason"]] = entry.exits.get(row["exit_reason"], 0) + int(row["runs"])
        if row["exit_reason"] in domain.HANDED_TO_SALES:
            entry.totals["mqls"] += int(row["runs"])
            if row["last_email_step"] is not None:
                step_of(entry, row["last_email_step"]).counts["mqls"] += int(row["runs"])
    return list(found.values())

