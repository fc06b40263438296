"""What the REST API reads and answers (JSON), and the cursors of its pages."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import InvalidInput

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
    traits: dict[str, Any] | None
    leads: int | None = None
    created_at: datetime


class AccountPage(Page):
    items: list[Account]


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
