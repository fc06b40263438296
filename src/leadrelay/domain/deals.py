"""Deals: the cards on the sales board. A deal opens when a lead is handed to sales and follows
its lead through the sales stages until it is won, lost, handed back or disqualified.

The lead's stage is the one truth: every move of a deal is a move of its lead (checked by
`lifecycle.move` against the playbook), and the deal follows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadrelay.domain.errors import DealClosed, InvalidTouch, MoveNotAllowed
from leadrelay.domain.lifecycle import move
from leadrelay.domain.model import TOUCH_KINDS, Engagement, Event, Lead, StageChange, Touch
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.routing import Assignment


@dataclass(slots=True)
class Activity:
    """One line of a deal's log: what was done to it, when, by whom."""

    action: str  # opened, moved, reassigned, won, lost, handed_back, disqualified, closed
    at: datetime
    by: str
    from_stage: str | None = None
    to_stage: str | None = None
    owner: str | None = None
    reason: str | None = None
    note: str | None = None
    value: float | None = None


@dataclass(slots=True, eq=False)
class Deal:
    lead: Lead
    stage: str
    team: str
    owner: str | None
    opened_at: datetime
    stage_entered_at: datetime
    routed_by: str  # why this owner or queue, in plain words
    package: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    assigned_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: str | None = None  # won, lost, handed_back, disqualified, merged
    close_reason: str | None = None
    value: float | None = None
    log: list[Activity] = field(default_factory=list)  # activity not yet stored
    dirty: bool = False

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def is_hand_off(change: StageChange, playbook: Playbook) -> bool:
    """A lead crossing from marketing into an open sales stage (the MQL rule, a fast-track, or by hand)."""
    to = playbook.stages[change.to_stage]
    before = playbook.stages.get(change.from_stage) if change.from_stage else None
    return to.team == "sales" and to.outcome is None and (before is None or before.team != "sales")


def open_deal(change: StageChange, assignment: Assignment, package: dict[str, Any]) -> Deal:
    """The card for a lead just handed to sales, with its owner (or queue) and what marketing knows."""
    lead, at = change.lead, change.at
    deal = Deal(
        lead=lead, stage=change.to_stage, team=assignment.team, owner=assignment.owner, opened_at=at,
        stage_entered_at=at, routed_by=assignment.reason, package=package,
        assigned_at=at if assignment.owner else None, dirty=True,
    )
    lead.owner = assignment.owner
    lead.dirty = True
    deal.log.append(Activity("opened", at, change.by, to_stage=change.to_stage, owner=assignment.owner,
                             note=assignment.reason))
    return deal


def outcome_of(stage: str, playbook: Playbook) -> str | None:
    """What entering `stage` means for an open deal: None while it stays in sales."""
    entered = playbook.stages[stage]
    if entered.reasons == "hand_back":
        return "handed_back"
    if entered.reasons == "disqualify":
        return "disqualified"
    if entered.outcome is not None:
        return entered.outcome
    return None if entered.team == "sales" else "handed_back"


def follow(deal: Deal, change: StageChange, playbook: Playbook) -> None:
    """The deal takes its lead's move; leaving the sales stages (or reaching an outcome) closes it."""
    outcome = outcome_of(change.to_stage, playbook)
    deal.log.append(Activity(outcome or "moved", change.at, change.by, change.from_stage, change.to_stage,
                             reason=change.reason, note=change.note, value=deal.value if outcome == "won" else None))
    deal.stage, deal.stage_entered_at, deal.dirty = change.to_stage, change.at, True
    if outcome is not None:
        deal.closed_at, deal.outcome, deal.close_reason = change.at, outcome, change.reason


# The moves people make on a deal: each moves its lead (checked against the playbook); the
# deal follows when the hand-off service sees the lead's move.

def move_deal(deal: Deal, to_stage: str, playbook: Playbook, *, at: datetime, by: str, reason: str | None = None,
              note: str | None = None) -> StageChange:
    """Move an open deal's lead to another stage, as the playbook allows."""
    _check_open(deal)
    change = move(deal.lead, to_stage, playbook=playbook, at=at, by=by, reason=reason)
    change.note = note
    return change


def accept(deal: Deal, playbook: Playbook, *, at: datetime, by: str, note: str | None = None) -> StageChange:
    """Sales takes the lead (SAL: the stage after the hand-off in the funnel)."""
    return move_deal(deal, playbook.accept_stage, playbook, at=at, by=by, note=note)


def hand_back(deal: Deal, reason: str | None, playbook: Playbook, *, at: datetime, by: str,
              note: str | None = None) -> StageChange:
    """Sales returns the lead to marketing's nurture stage with a reason from the playbook;
    its engagement starts again from zero when the playbook says so."""
    change = move_deal(deal, playbook.hand_back_stage, playbook, at=at, by=by, reason=reason, note=note)
    if playbook.hand_back_resets_engagement:
        deal.lead.engagement = Engagement(as_of=change.at)
    return change


def disqualify(deal: Deal, reason: str | None, playbook: Playbook, *, at: datetime, by: str,
               note: str | None = None) -> StageChange:
    return move_deal(deal, playbook.disqualify_stage, playbook, at=at, by=by, reason=reason, note=note)


def win(deal: Deal, value: float | None, playbook: Playbook, *, at: datetime, by: str,
        note: str | None = None) -> StageChange:
    change = move_deal(deal, _stage_with(playbook, "won"), playbook, at=at, by=by, note=note)
    deal.value = value
    return change


def lose(deal: Deal, reason: str | None, playbook: Playbook, *, at: datetime, by: str,
         note: str | None = None) -> StageChange:
    return move_deal(deal, _stage_with(playbook, "lost"), playbook, at=at, by=by, reason=reason, note=note)


def reassign(deal: Deal, owner: str, *, at: datetime, by: str, team: str | None = None,
             note: str | None = None) -> None:
    """Give an open deal to another owner; `team`: the owner's team, when the deal changes team
    (a deal taken from the queue leaves it)."""
    _check_open(deal)
    deal.owner, deal.assigned_at, deal.dirty = owner, at, True
    deal.team = team or deal.team
    deal.lead.owner, deal.lead.dirty = owner, True
    deal.log.append(Activity("reassigned", at, by, owner=owner, note=note))


def merge_into(deal: Deal, target: Lead, target_deal: Deal | None, *, at: datetime, by: str) -> None:
    """A lead with an open deal is merged into `target`: the deal goes with it, unless the target
    has an open deal of its own (a lead never has two): then this one closes as a duplicate."""
    if target_deal is None:
        deal.lead = target
        if target.owner is None:
            target.owner, target.dirty = deal.owner, True
        deal.log.append(Activity("merged", at, by, owner=deal.owner, note=f"now the deal of lead {target.id}"))
    else:
        deal.closed_at, deal.outcome, deal.close_reason = at, "merged", f"merged into deal {target_deal.id}"
        deal.log.append(Activity("closed", at, by, reason=deal.close_reason))
    deal.dirty = True


def _check_open(deal: Deal) -> None:
    if not deal.is_open:
        raise DealClosed(f"deal {deal.id} is closed ({deal.outcome}); a closed deal does not move")


def _stage_with(playbook: Playbook, outcome: str) -> str:
    """The sales stage a deal is won (or lost) in."""
    for stage in playbook.stages.values():
        if stage.outcome == outcome and stage.team == "sales":
            return stage.id
    raise MoveNotAllowed(f"the playbook has no sales stage with outcome {outcome!r}")


# --- touches: what reps do to reach a lead ---------------------------------------------------

CLOCK_SKEW = timedelta(minutes=5)  # a touch's time may be this far ahead of ours (another device's clock)


def check_touch(deal: Deal, touch: Touch, now: datetime) -> None:
    """A touch is one of the known kinds, happened after the deal opened, and not in the future."""
    if touch.kind not in TOUCH_KINDS:
        raise InvalidTouch(f"kind: {touch.kind!r} is not a touch (kinds: {', '.join(TOUCH_KINDS)})")
    if touch.at > now + CLOCK_SKEW:
        raise InvalidTouch(f"at: {touch.at.isoformat()} is in the future")
    if touch.at < deal.opened_at:
        raise InvalidTouch(f"at: {touch.at.isoformat()} is before the deal was opened ({deal.opened_at.isoformat()})")


# --- the hand-off package: what marketing knows, so the rep sees why this lead is here --------

CONTENT_EVENTS = frozenset({"download", "downloaded", "file_downloaded", "content_download", "asset_downloaded"})
WEBINAR_EVENTS = frozenset({"webinar_attended", "webinar_joined", "webinar_registered"})
FORM_EVENTS = frozenset({"form_submit", "form_submitted"})
TIMELINE_LENGTH = 50
TOP = 10


def package(lead: Lead, events: Iterable[Event], *, engagement: float, engagement_breakdown: dict[str, float],
            fields: dict[str, str]) -> dict[str, Any]:
    """The hand-off package of a lead as of now: fit fields, scores with breakdown, content,
    pages (most recent and most frequent), webinars, forms, first and last touch, recent timeline.
    `fields` maps each field name to its label (the fit fields both teams agreed on)."""
    history = sorted(events, key=lambda e: e.timestamp)
    pages = [e for e in history if e.type == "page" or e.name == "page_view"]
    page_counts = Counter(_page_of(e) for e in pages)
    return {
        "fields": [{"name": name, "label": label, "value": lead.fields[name]}
                   for name, label in fields.items() if lead.fields.get(name) not in (None, "")],
        "scores": {
            "fit": lead.fit, "engagement": round(engagement, 3), "total": round(lead.fit + engagement, 3),
            "fit_breakdown": dict(lead.fit_breakdown), "engagement_breakdown": engagement_breakdown,
        },
        "content": _items(e for e in history if e.name in CONTENT_EVENTS),
        "pages": {
            "recent": [{"page": _page_of(e), "at": e.timestamp.isoformat()} for e in reversed(pages[-TOP:])],
            "frequent": [{"page": page, "views": views} for page, views in page_counts.most_common(TOP)],
        },
        "webinars": _items(e for e in history if e.name in WEBINAR_EVENTS),
        "forms": _items(e for e in history if e.name in FORM_EVENTS),
        "first_touch": lead.first_touch,
        "last_touch": lead.last_touch,
        "events": len(history),
        "timeline": [
            {"name": e.name, "type": e.type, "at": e.timestamp.isoformat(), "points": e.points,
             "what": _title_of(e)}
            for e in reversed(history[-TIMELINE_LENGTH:])
        ],
    }


def _page_of(event: Event) -> str:
    props = event.properties
    return str(props.get("path") or props.get("url") or props.get("name") or event.name)[:300]


def _title_of(event: Event) -> str | None:
    props = event.properties
    for key in ("title", "name", "asset", "webinar", "form", "path", "url"):
        if isinstance(props.get(key), str) and props[key]:
            return props[key][:300]
    return None


def _items(found: Iterable[Event]) -> list[dict[str, Any]]:
    """Each distinct item once, most recent first, with how often it came up."""
    seen: dict[str, dict[str, Any]] = {}
    for event in found:
        title = _title_of(event) or event.name
        item = seen.pop(title, {"title": title, "times": 0})
        item["times"] += 1
        item["last_at"] = event.timestamp.isoformat()
        seen[title] = item
    return list(reversed(seen.values()))[:TOP * 2]
