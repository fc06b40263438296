"""What the REST API reads and answers (JSON), and the cursors of its pages."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import InvalidInput
from leadrelay.domain.playbook import Playbook

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    """Times without a zone are UTC; times outside 1970-2200 are refused."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    if not EARLIEST <= moment <= LATEST:
        raise ValueError("must be between 1970 and 2200")
    return moment.astimezone(UTC)


Moment = Annotated[datetime, AfterValidator(_aware)]
Text = Annotated[str, Field(max_length=320, pattern=r"^[^\x00]*$")]
Limit = Annotated[int, Field(ge=1, le=500)]
MAX_ID = 2**63 - 1


class Page(BaseModel):
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, count: int) -> list[str] | None:
    if cursor is None:
        return None
    try:
        parts = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if len(parts) != count:
        raise InvalidInput("cursor: not a cursor this API gave (take `next_cursor` from the last page)", "invalid_cursor")
    return parts


def cursor_id(cursor: str | None) -> int | None:
    parts = decode_cursor(cursor, 1)
    if parts is None:
        return None
    if not parts[0].isdigit() or int(parts[0]) > MAX_ID:
        raise InvalidInput("cursor: not a cursor this API gave", "invalid_cursor")
    return int(parts[0])


class Touch(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    referrer: str | None = None
    url: str | None = None
    at: datetime | None = None


class Scores(BaseModel):
    fit: float
    engagement: float = Field(description="As of now: engagement fades with the playbook's half-life.")
    total: float


class LeadSummary(BaseModel):
    id: int
    email: str
    stage: str
    highest_stage: str
    owner: str | None
    source: str | None
    account_id: int | None
    scores: Scores
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


class StageEntry(BaseModel):
    from_stage: str | None
    to_stage: str
    at: datetime
    by: str
    reason: str | None


class ScoresWithBreakdown(Scores):
    fit_breakdown: dict[str, float]
    engagement_breakdown: dict[str, float]


class LeadDetail(LeadSummary):
    scores: ScoresWithBreakdown
    stage_entered_at: datetime
    first_touch: Touch | None
    last_touch: Touch | None
    history: list[StageEntry]
    clocks: list[ClockOut] = Field(description="The SLA clocks of the lead's deals, oldest first.")


class LeadPage(Page):
    items: list[LeadSummary]


class LeadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Text = Field(description="The lead's email: the lead with this email is updated, or created.")
    fields: dict[str, Any] = Field(default_factory=dict, description="Field values, by field name or alias.")


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Text = Field(description="The stage to move to.")
    reason: Text | None = Field(None, description="Needed for hand-back and disqualify: one of the playbook's reasons.")


class Moved(BaseModel):
    lead_id: int
    from_stage: str | None
    to_stage: str
    at: datetime


class EventOut(BaseModel):
    id: int
    message_id: str
    type: str
    name: str
    timestamp: datetime
    points: float
    properties: dict[str, Any]
    traits: dict[str, Any]
    touch: dict[str, Any] | None


class EventPage(Page):
    items: list[EventOut]


class Account(BaseModel):
    id: int
    domain: str | None
    name: str | None
    group_id: str | None
    is_target: bool
    owner: str | None = Field(None, description="The rep who owns it: a target account's leads go to them.")
    traits: dict[str, Any] | None
    leads: int | None = None
    created_at: datetime


class AccountPage(Page):
    items: list[Account]


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    is_target: bool | None = Field(None, description="A named (target) account.")
    owner: Annotated[str, Field(max_length=320, pattern=r"^([^@\s]+@[^@\s]+)?$")] | None = Field(
        None, description="The rep who owns it (empty text: nobody).")


class PlaybookOut(BaseModel):
    name: str
    version: str
    timezone: str
    stages: list[dict[str, Any]]
    fields: list[dict[str, Any]]
    mql_rule: str
    yaml: str = Field(description="The playbook file as written.")


class PlaybookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    yaml: str = Field(max_length=1_000_000, description="A candidate playbook, as YAML text.")


class PlaybookProblem(BaseModel):
    line: int
    column: int
    message: str


class PlaybookCheck(BaseModel):
    valid: bool
    problems: list[PlaybookProblem]
    summary: str | None = None


class RejectionOut(BaseModel):
    id: int
    received_at: datetime
    api_key_id: int | None
    message_id: str | None
    reason: str
    message: str


class RejectionPage(Page):
    items: list[RejectionOut]


# --- deals, the board, reps and tasks --------------------------------------------------------

Note = Annotated[str, Field(max_length=5000, pattern=r"^[^\x00]*$")]


class DealAccount(BaseModel):
    name: str | None = None
    domain: str | None = None


class DealSummary(BaseModel):
    id: int
    lead_id: int
    email: str
    name: str | None = Field(description="The lead's name, when known.")
    company: str | None = None
    account: DealAccount
    stage: str
    team: str = Field(description="The team, or the queue where the deal waits for an owner.")
    owner: str | None
    source: str | None
    scores: Scores
    opened_at: datetime
    stage_entered_at: datetime
    assigned_at: datetime | None
    closed_at: datetime | None
    outcome: str | None = Field(description="won, lost, handed_back, disqualified or merged; null while open.")
    close_reason: str | None
    value: float | None
    routed_by: str = Field(description="Why this owner or queue, in plain words.")


class DealActivity(BaseModel):
    action: str
    at: datetime
    by: str
    from_stage: str | None = None
    to_stage: str | None = None
    owner: str | None = None
    reason: str | None = None
    note: str | None = None
    value: float | None = None


class ClockOut(BaseModel):
    commitment: str
    measure: str = Field(description="accept, first_touch, attempts or stage_time.")
    status: str = Field(description="running, met, breached, or stopped (no longer owed).")
    owner: str | None
    started_at: datetime
    due_at: datetime
    warn_at: datetime
    paused_seconds: float = Field(description="Time not counted (outside business hours) between start and due.")
    warned_at: datetime | None
    ended_at: datetime | None = Field(description="When it was met, breached or stopped.")


def clock_out(row: dict[str, Any], playbook: Playbook) -> ClockOut:
    """A stored clock as the API shows it, with the time it did not count (outside business hours)."""
    commitment = next((c for c in playbook.sla.commitments if c.name == row["commitment"]), None)
    span = (row["due_at"] - row["started_at"]).total_seconds()
    paused = max(span - commitment.within.total_seconds(), 0.0) if commitment else 0.0
    return ClockOut(**{k: row[k] for k in ClockOut.model_fields if k != "paused_seconds"}, paused_seconds=paused)


class DealDetail(DealSummary):
    package: dict[str, Any] = Field(description="The hand-off package: what marketing knew when it handed the lead over.")
    activity: list[DealActivity]
    clocks: list[ClockOut] = Field(description="The deal's SLA clocks, oldest first.")


class DealPage(Page):
    items: list[DealSummary]


class BoardColumn(BaseModel):
    stage: str
    name: str
    deals: list[DealSummary]


class Board(BaseModel):
    columns: list[BoardColumn]


class DealAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note | None = Field(None, description="What the person wants to remember about this move.")


class ReasonAction(DealAction):
    reason: Text | None = Field(None, description="One of the playbook's reasons for this move (required when "
                                                  "the playbook lists reasons for it).")


class MoveDeal(DealAction):
    to: Text = Field(description="The stage to move to (as the playbook allows).")
    reason: Text | None = None


class WinDeal(DealAction):
    value: float | None = Field(None, ge=0, le=1e15, description="What the deal is worth.")


class Reassign(DealAction):
    owner: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class TouchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="call, email, meeting, note, or email_reply (the lead answered).")
    at: Moment | None = Field(None, description="When it happened (default: now).")
    by: Annotated[str, Field(max_length=320, pattern=r"^[^\x00]+$")] | None = Field(
        None, description="Who did it (default: the API key's name).")
    outcome: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        None, description="e.g. connected, voicemail, no answer.")
    note: Note | None = None


class TouchOut(BaseModel):
    id: int
    deal_id: int
    lead_id: int
    kind: str
    at: datetime
    logged_at: datetime
    by: str
    outcome: str | None
    note: str | None


class TouchPage(Page):
    items: list[TouchOut]


class HandBacks(BaseModel):
    reasons: dict[str, int] = Field(description="Leads handed back to marketing, by reason.")
    total: int


class Rep(BaseModel):
    email: str
    name: str
    teams: list[str]
    away_until: datetime | None
    inactive: bool
    note: str | None
    open_deals: int
    available: bool = Field(description="Gets new leads now (not away, not inactive).")


class RepAway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    away_until: Moment | None = Field(None, description="Out of office until then (null: back now).")
    inactive: bool = Field(False, description="Gets no new leads at all until set back to false.")
    note: Note | None = None


class TaskOut(BaseModel):
    id: int
    lead_id: int
    deal_id: int | None
    owner: str | None
    title: str
    due_at: datetime
    created_at: datetime
    done_at: datetime | None
    automation: str | None


class TaskPage(Page):
    items: list[TaskOut]


# --- webhooks and the outbox -------------------------------------------------------------------

EventName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^(\*|[a-z][a-z0-9_.\-]*)$")]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    url: Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00]+$")]
    events: list[EventName] = Field(["*"], min_length=1, max_length=100,
                                    description="Event names to receive (deal.opened, deal.assigned, deal.moved, "
                                                "deal.closed, and the playbook automations' webhook events); * for all.")


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")] | None = None
    url: Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00]+$")] | None = None
    events: list[EventName] | None = Field(None, min_length=1, max_length=100)
    active: bool | None = None


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signs every delivery (Standard Webhooks: webhook-signature). Shown once.")


class OutboxItem(BaseModel):
    id: int
    key: str = Field(description="The idempotency key receivers see (Idempotency-Key, webhook-id).")
    kind: str
    event: str
    webhook_id: int | None
    status: str = Field(description="pending, delivered or dead (every attempt failed).")
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class OutboxPage(Page):
    items: list[OutboxItem]


class DeliveryOut(BaseModel):
    id: int
    outbox_id: int
    key: str
    event: str
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryPage(Page):
    items: list[DeliveryOut]


# --- reports -------------------------------------------------------------------------------------


class ComplianceOut(BaseModel):
    commitment: str
    group: str | None = Field(description="The rep (or team) the clocks belonged to.")
    met: int
    breached: int
    running: int
    stopped: int
    rate: float | None = Field(description="Met among the clocks met or breached; null when none ended yet.")


class Spread(BaseModel):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class ClockRow(BaseModel):
    deal_id: int
    lead_id: int
    email: str
    commitment: str
    owner: str | None
    team: str
    started_at: datetime
    due_at: datetime
    ended_at: datetime | None


class MarketingOut(BaseModel):
    commitment: str
    kind: str = Field(description="mql_volume, acceptance_rate or sql_rate.")
    target: float
    actual: float | None = Field(description="MQLs per complete period on average, or the rate.")
    met: bool | None = Field(description="Every complete period at target (volume), or the rate at target.")
    periods: list[dict[str, Any]]
    by_source: dict[str, dict[str, Any]]


class SlaReportOut(BaseModel):
    since: datetime
    until: datetime
    compliance: list[ComplianceOut]
    response: dict[str, Spread] = Field(description="Time to answer the hand-off (accept) and to touch the lead first.")
    at_risk: list[ClockRow] = Field(description="Running clocks past their warning time, nearest due first.")
    breaches: list[ClockRow]
    marketing: list[MarketingOut]
    hand_backs: dict[str, int]
