"""The things LeadRelay keeps: leads, the events they do, and every move through the funnel."""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
        "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "web.de", "proton.me",
        "protonmail.com", "mail.com", "yandex.ru", "qq.com", "163.com",
    }
)


def normalize_email(raw: str) -> str:
    """Leads are keyed by email: trimmed and compared without case."""
    return raw.strip().lower()


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")


@lru_cache(maxsize=4096)
def snake_name(raw: str) -> str:
    """One spelling for names from outside: "Demo Requested", "demoRequested" -> demo_requested."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", raw.strip())).lower()


def email_domain(email: str) -> str:
    return email.rpartition("@")[2]


def company_domain(email: str) -> str | None:
    """The account domain an email belongs to; None for free-mail addresses."""
    domain = email_domain(email)
    return None if domain in FREE_MAIL_DOMAINS else domain


@dataclass(slots=True)
class RuleScore:
    """What one engagement rule has given a lead: the decayed value as of the lead's
    `as_of`, the raw points it has awarded in all, and per day (the most recent days)."""

    value: float = 0.0
    awarded: float = 0.0
    days: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Engagement:
    """Engagement kept as values at one moment (`as_of`), brought forward by decay in O(1)."""

    as_of: datetime | None = None
    rules: dict[str, RuleScore] = field(default_factory=dict)
    total: float = 0.0  # the sum of the rules' values at `as_of`, kept up to date by scoring

    def __post_init__(self) -> None:
        self.total = sum(score.value for score in self.rules.values())


@dataclass(slots=True)
class Event:
    """Something a lead (or a still anonymous visitor) did, or that happened to it."""

    message_id: str
    type: str  # the message type: identify, track, page, group, alias, screen
    name: str  # what happened: page_view, email_open, form_submit, demo_request, ...
    timestamp: datetime
    email: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)  # fields, already checked against the playbook
    touch: dict[str, str] | None = None  # source, medium, campaign, ... when it came from a campaign or another site
    lead: Lead | None = None
    points: float = 0.0
    stored: bool = False  # already in the store (tied to a lead later, by identity)

    @property
    def group_id(self) -> str | None:
        """For a `group` event, the account (group) the lead belongs to."""
        return self.properties.get(GROUP_ID) if self.type == "group" else None


GROUP_ID = "groupId"  # where a `group` event keeps its group's id (its traits are under "traits")


@dataclass(slots=True)
class StageChange:
    lead: Lead
    from_stage: str | None
    to_stage: str
    at: datetime
    by: str
    reason: str | None = None
    note: str | None = None  # what the person who moved it wrote (kept in the deal's log)


@dataclass(slots=True, eq=False)
class Lead:
    email: str
    stage: str
    highest_stage: str
    stage_entered_at: datetime
    created_at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    fit: float = 0.0
    fit_breakdown: dict[str, float] = field(default_factory=dict)
    engagement: Engagement = field(default_factory=Engagement)
    id: int | None = None
    account_id: int | None = None
    owner: str | None = None
    merged_into: int | None = None
    updated_at: datetime | None = None
    first_touch: dict[str, str] | None = None  # the earliest visit from a campaign or another site
    last_touch: dict[str, str] | None = None  # the latest one
    history: list[StageChange] = field(default_factory=list)  # moves not yet stored
    dirty: bool = False

    @property
    def source(self) -> str | None:
        """Where the lead came from: its `source` field, else the source of its first touch."""
        return self.fields.get("source") or (self.first_touch or {}).get("source")

    def record_touch(self, touch: dict[str, str], at: datetime) -> None:
        """Keep the earliest and the latest touch; arrival order does not matter."""
        stamped = {**touch, "at": at.isoformat(timespec="microseconds")}
        if self.first_touch is None or stamped["at"] < self.first_touch["at"]:
            self.first_touch = stamped
            self.dirty = True
        if self.last_touch is None or stamped["at"] >= self.last_touch["at"]:
            self.last_touch = stamped
            self.dirty = True

    def context(self) -> dict[str, Any]:
        """What lead conditions in the playbook can read as `lead`."""
        values = dict(self.fields)
        values["email"] = self.email
        values["email_domain"] = email_domain(self.email)
        values["stage"] = self.stage
        return values


TOUCH_KINDS = ("call", "email", "meeting", "note", "email_reply")
ATTEMPT_KINDS = frozenset({"call", "email", "meeting"})  # the touches that count as attempts to reach the lead


@dataclass(frozen=True, slots=True)
class Touch:
    """A call, email, meeting, note, or the lead's email reply, logged on a deal."""

    kind: str
    at: datetime
    by: str
    outcome: str | None = None  # e.g. connected, voicemail, no answer
    note: str | None = None
