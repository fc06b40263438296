"""The schema, in SQLAlchemy Core. Alembic migrations are the only way it reaches a database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    LargeBinary,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

from leadrelay.domain.clock import UTC

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware in, timezone-aware out; stored as UTC on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("domain", String(255), unique=True),  # none for a group known only by its id
    Column("name", String(255)),
    Column("is_target", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("group_id", String(255), unique=True),  # the Segment `groupId` that names it, if any
    Column("traits", JSON),  # what `group` calls said of it (industry, employees, plan, ...)
    Column("owner", String(320)),  # the rep who owns it: named accounts' leads go to them
)

leads = Table(
    "leads",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("account_id", ForeignKey("accounts.id"), index=True),
    Column("stage", String(64), nullable=False),
    Column("highest_stage", String(64), nullable=False),
    Column("stage_entered_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("fit", Float, nullable=False),
    Column("fit_breakdown", JSON, nullable=False),
    # engagement: the total and each rule's share, as of engagement_as_of (decay brings it forward)
    Column("engagement", Float, nullable=False),
    Column("engagement_as_of", UtcDateTime),
    Column("engagement_rules", JSON, nullable=False),
    Column("owner", String(320)),
    Column("merged_into", ForeignKey("leads.id")),
    # where the lead came from: the `source` field, else the source of its first touch
    Column("source", String(200), index=True),
    # the first and the latest visit that came from a campaign or another site
    Column("first_touch", JSON),
    Column("last_touch", JSON),
    Index("ix_leads_stage", "stage", "merged_into"),  # covers the count of leads per stage
)

identities = Table(
    "identities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),  # "user" (a userId) or "anonymous" (a visitor id)
    Column("value", String(255), nullable=False),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("kind", "value", name="uq_identities_kind_value"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("lead_id", ForeignKey("leads.id")),
    Column("user_id", String(255)),
    Column("anonymous_id", String(255)),
    Column("type", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("traits", JSON),
    Column("points", Float, nullable=False),
    Column("touch", JSON),  # campaign and referrer, when the event came from one
    # a lead's events in time order; partial, so SQLite never picks it for the waiting events
    Index("ix_events_lead_id_timestamp", "lead_id", "timestamp",
          sqlite_where=text("lead_id IS NOT NULL"), postgresql_where=text("lead_id IS NOT NULL")),
    # only events still waiting for their lead are looked up by visitor id
    Index("ix_events_waiting_anonymous_id", "anonymous_id",
          sqlite_where=text("lead_id IS NULL"), postgresql_where=text("lead_id IS NULL")),
    Index("ix_events_waiting_user_id", "user_id",
          sqlite_where=text("lead_id IS NULL"), postgresql_where=text("lead_id IS NULL")),
)

stage_changes = Table(
    "stage_changes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("from_stage", String(64)),
    Column("to_stage", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("by", String(200), nullable=False),
    Column("reason", Text),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(16), nullable=False),  # "write" (tracking only) or "admin" (everything)
    Column("prefix", String(16), nullable=False),  # the key's first characters, to recognise it
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the key; the key is never stored
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

rejected_messages = Table(
    "rejected_messages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("api_key_id", ForeignKey("api_keys.id")),
    Column("message_id", String(255)),
    Column("reason", Text, nullable=False),
    Column("message", Text, nullable=False),  # the message as received (cut at a few KB)
)

deals = Table(
    "deals",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False),
    Column("stage", String(64), nullable=False),  # the lead's stage; after closing, the stage it closed in
    Column("team", String(64), nullable=False),  # the team, or the queue where it waits for an owner
    Column("owner", String(320)),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("stage_entered_at", UtcDateTime, nullable=False),
    Column("assigned_at", UtcDateTime),
    Column("closed_at", UtcDateTime),
    Column("outcome", String(32)),  # won, lost, handed_back, disqualified
    Column("close_reason", Text),
    Column("value", Float),
    Column("routed_by", Text, nullable=False),
    Column("package", JSON, nullable=False),  # what marketing knew at the hand-off
    Column("updated_at", UtcDateTime, nullable=False),
    # a lead never has two open deals (whatever number of processes hand it off at once)
    Index("uq_deals_open_lead_id", "lead_id", unique=True,
          sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    Index("ix_deals_lead_id", "lead_id"),
    Index("ix_deals_owner_closed_at", "owner", "closed_at"),
    Index("ix_deals_owner_assigned_at", "owner", "assigned_at"),  # new deals per rep in a period
    Index("ix_deals_stage", "stage", "closed_at"),
)

deal_activity = Table(
    "deal_activity",
    metadata,
    Column("id", Id, primary_key=True),
    Column("deal_id", ForeignKey("deals.id"), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("by", String(200), nullable=False),
    Column("from_stage", String(64)),
    Column("to_stage", String(64)),
    Column("owner", String(320)),
    Column("reason", Text),
    Column("note", Text),
    Column("value", Float),
)

reps = Table(
    "reps",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("away_until", UtcDateTime),  # out of office until then
    Column("inactive", Boolean, nullable=False, default=False),  # gets no new leads at all
    Column("note", Text),
    Column("updated_at", UtcDateTime, nullable=False),
)

seats = Table(
    "seats",
    metadata,
    Column("id", Id, primary_key=True),
    Column("team", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("last_turn", Float),
    Column("assigned", Integer, nullable=False),
    Column("last_assigned_at", UtcDateTime),
    UniqueConstraint("team", "email", name="uq_seats_team_email"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("deal_id", ForeignKey("deals.id")),
    Column("owner", String(320)),
    Column("title", Text, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime),
    Column("automation", String(200)),
    Index("ix_tasks_owner_done_at", "owner", "done_at"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(100), nullable=False),  # signs each delivery (HMAC-SHA256)
    Column("events", JSON, nullable=False),  # the event names it receives; ["*"] for all
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),  # the idempotency key receivers see
    Column("kind", String(16), nullable=False),  # webhook or email
    Column("event", String(100), nullable=False),
    Column("webhook_id", ForeignKey("webhooks.id"), index=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered or dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("outbox_id", ForeignKey("outbox.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
)

touches = Table(
    "touches",
    metadata,
    Column("id", Id, primary_key=True),
    Column("deal_id", ForeignKey("deals.id"), nullable=False),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # call, email, meeting, note, email_reply
    Column("at", UtcDateTime, nullable=False),  # when it happened
    Column("logged_at", UtcDateTime, nullable=False),
    Column("by", String(320), nullable=False),
    Column("outcome", String(200)),
    Column("note", Text),
    Index("ix_touches_deal_id_at", "deal_id", "at"),
)

clocks = Table(
    "clocks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("deal_id", ForeignKey("deals.id"), nullable=False, index=True),
    Column("commitment", String(200), nullable=False),
    Column("measure", String(32), nullable=False),
    Column("team", String(64), nullable=False),
    Column("owner", String(320)),  # who owed it when it ended (or owes it now)
    Column("started_at", UtcDateTime, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("warn_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # running, met, breached, stopped
    Column("ended_at", UtcDateTime),
    Column("warned_at", UtcDateTime),
    # the worker's sweep reads only running clocks coming due: an index, not a scan of every deal
    Index("ix_clocks_running_due_at", "due_at", sqlite_where=text("status = 'running'"),
          postgresql_where=text("status = 'running'")),
    Index("ix_clocks_running_warn_at", "warn_at", sqlite_where=text("status = 'running' AND warned_at IS NULL"),
          postgresql_where=text("status = 'running' AND warned_at IS NULL")),
)

# --- the web app: users, their login sessions, failed logins; the playbook's versions ---------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),  # admin, marketing, sales_manager, sales_rep
    Column("team", String(64)),  # an extra team set by an admin (e.g. a manager's)
    Column("password_hash", Text, nullable=False),  # Argon2id
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the cookie's token
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),  # idle expiry counts from here
    Column("expires_at", UtcDateTime, nullable=False),  # absolute expiry
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("address", String(64), nullable=False),  # the client's IP address
    Column("at", UtcDateTime, nullable=False),
    Index("ix_login_failures_email_at", "email", "at"),
    Index("ix_login_failures_address_at", "address", "at"),
)

playbook_versions = Table(
    "playbook_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("sha256", String(64), nullable=False),  # of the text: a start with the same text as the latest adds none
    Column("name", String(200), nullable=False),
    Column("version", String(64), nullable=False),  # the playbook's own `version`
    Column("text", Text, nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
    Column("applied_by", String(320), nullable=False),
    Column("note", Text),
)

# --- nurture: sequences' enrollments, the emails they sent, and the suppression list ---------------

sequence_enrollments = Table(
    "sequence_enrollments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False),
    Column("sequence", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("trigger", String(64), nullable=False),  # what put the lead in: new_lead, hand_back, ..., manual
    Column("step", Integer, nullable=False),  # the index of the next step to run
    Column("status", String(16), nullable=False),  # active, completed, exited
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("next_at", UtcDateTime),  # when the worker looks at it again
    Column("ended_at", UtcDateTime),
    Column("exit_reason", String(32)),
    Column("last_email_step", Integer),  # the step of the last email sent (an exit is credited to it)
    # a lead is in at most one sequence of a kind at once, whatever number of processes enroll it
    Index("uq_sequence_enrollments_active_kind", "lead_id", "kind", unique=True,
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    Index("ix_sequence_enrollments_lead_id_sequence", "lead_id", "sequence"),
    Index("ix_sequence_enrollments_due", "next_at",
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    Index("ix_sequence_enrollments_sequence", "sequence", "status"),
)

email_sends = Table(
    "email_sends",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),  # the outbox item's key, in the Message-ID and links
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("enrollment_id", ForeignKey("sequence_enrollments.id")),
    Column("sequence", String(64)),
    Column("step", Integer),
    Column("template", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("subject", Text, nullable=False),
    Column("queued_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # queued (the outbox delivers it) or cancelled before sending
    Column("cancel_reason", String(64)),
    Column("opens", Integer, nullable=False),
    Column("clicks", Integer, nullable=False),
    Column("opened_at", UtcDateTime),
    Column("clicked_at", UtcDateTime),
    Column("unsubscribed_at", UtcDateTime),
    Column("bounced_at", UtcDateTime),
    Column("complained_at", UtcDateTime),
    Index("ix_email_sends_queued_at", "queued_at"),  # the rate limits count the current window's sends
    Index("ix_email_sends_sequence_step", "sequence", "step"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("reason", String(32), nullable=False),  # unsubscribed, bounced, complained, manual
    Column("at", UtcDateTime, nullable=False),
    Column("source", String(200)),  # where it came from: a send's key, api, cli
    Column("note", Text),
)

email_link_keys = Table(
    "email_link_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("secret", String(128), nullable=False),  # signs tracking and unsubscribe links (HMAC-SHA256)
    Column("created_at", UtcDateTime, nullable=False),
)

# --- analytics: content items and shares, and what the reports read --------------------------
# The reports read tables derived from the stage history, deals and events, kept up to date by
# `leadrelay.adapters.analytics.refresh` (incrementally, from the rows added since its last run).

content_items = Table(
    "content_items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),  # asset, page, email, webinar
    # how events name it: the asset downloaded, the page's path, the email's campaign, the webinar
    Column("key", String(500), nullable=False),
    Column("title", String(300), nullable=False),
    Column("url", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("archived_at", UtcDateTime),
    UniqueConstraint("kind", "key", name="uq_content_items_kind_key"),
)

content_shares = Table(
    "content_shares",
    metadata,
    Column("id", Id, primary_key=True),
    Column("item_id", ForeignKey("content_items.id"), nullable=False),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("deal_id", ForeignKey("deals.id")),
    Column("by", String(320), nullable=False),  # the rep who shared it
    Column("at", UtcDateTime, nullable=False),
    Column("logged_at", UtcDateTime, nullable=False),
    Column("note", Text),
    Index("ix_content_shares_at", "at"),
    Index("ix_content_shares_item_id_at", "item_id", "at"),
)

lead_facts = Table(  # one row per lead (merged leads have none): what the funnel groups and counts
    "lead_facts",
    metadata,
    Column("lead_id", ForeignKey("leads.id"), primary_key=True, autoincrement=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("source", String(200)),
    Column("medium", String(200)),
    Column("campaign", String(500)),
    Column("segment", String(32)),  # company size band
    Column("team", String(64)),  # of the lead's latest deal
    Column("rep", String(320)),  # the owner of the lead's latest deal
    Column("stage", String(64), nullable=False),
    Column("highest_stage", String(64), nullable=False),
    Column("handed_off_at", UtcDateTime),  # its first deal opened
    Column("outcome", String(16)),  # won, or lost (its last deal closed lost); none while neither
    Column("closed_at", UtcDateTime),
    Column("value", Float),  # the won deal's value
    Column("cycle_seconds", Float),  # created -> won
    # covering: a cohort's counts, in any breakdown, are read from the index alone
    Index("ix_lead_facts_created_at", "created_at", "highest_stage", "stage", "source", "medium", "campaign",
          "segment", "team", "rep", "value"),
    Index("ix_lead_facts_closed_at", "closed_at", "outcome", "cycle_seconds", "lead_id"),
)

stage_spans = Table(  # the stage history as stays: entered, left (none while it is there), how long
    "stage_spans",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("stage", String(64), nullable=False),
    Column("entered_at", UtcDateTime, nullable=False),
    Column("left_at", UtcDateTime),
    Column("seconds", Float),
    Column("next_stage", String(64)),
    Column("reason", Text),  # the reason given for leaving (hand-back, disqualify, lost)
    Column("lead_created_at", UtcDateTime, nullable=False),  # the lead's, so a cohort's exits need no join
    Index("ix_stage_spans_left_at", "left_at", "stage", "seconds"),  # the stays that ended in a period
    Index("ix_stage_spans_exits", "next_stage", "lead_created_at", "stage", "reason"),
)

stage_reached = Table(  # when a lead first reached each funnel stage (a skipped stage: when it was skipped)
    "stage_reached",
    metadata,
    Column("lead_id", ForeignKey("leads.id"), primary_key=True, autoincrement=False),
    Column("stage", String(64), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_stage_reached_stage_at", "stage", "at"),
)

attribution = Table(  # each outcome's credit to the channels of the lead's touchpoints, per model
    "attribution",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),  # lead, mql, sql, won
    Column("at", UtcDateTime, nullable=False),  # when the outcome happened
    Column("source", String(200)),
    Column("medium", String(200)),
    Column("campaign", String(500)),
    Column("first_share", Float, nullable=False),
    Column("last_share", Float, nullable=False),
    Column("linear_share", Float, nullable=False),
    Column("w_shaped_share", Float, nullable=False),
    Column("value", Float),  # won: the deal's value
    Index("ix_attribution_outcome_at", "outcome", "at", "source", "medium", "campaign", "first_share", "last_share",
          "linear_share", "w_shaped_share", "value"),  # covering: a period's credits from the index alone
)

lead_content = Table(  # the content a won or lost lead consumed before it closed
    "lead_content",
    metadata,
    Column("lead_id", ForeignKey("leads.id"), primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("first_at", UtcDateTime, nullable=False),
    Column("times", Integer, nullable=False),
)

analytics_state = Table(  # how far the derived tables are: the last row read of each source, ...
    "analytics_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The events with a campaign or referrer (a lead's touchpoints), and the few merged leads.
Index("ix_events_touched_lead_id", events.c.lead_id, events.c.timestamp,
      sqlite_where=text("touch IS NOT NULL AND lead_id IS NOT NULL"),
      postgresql_where=text("touch IS NOT NULL AND lead_id IS NOT NULL"))
Index("ix_leads_merged_into", leads.c.merged_into,
      sqlite_where=text("merged_into IS NOT NULL"), postgresql_where=text("merged_into IS NOT NULL"))
# Deals opened, open deals by time in stage, clocks started and ended: what the reports read by period.
Index("ix_deals_opened_at", deals.c.opened_at)
Index("ix_deals_open_stage_entered_at", deals.c.stage, deals.c.stage_entered_at,
      sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL"))
Index("ix_clocks_started_at", clocks.c.started_at, clocks.c.commitment, clocks.c.team, clocks.c.owner,
      clocks.c.status)
Index("ix_clocks_ended_at", clocks.c.ended_at, clocks.c.status, clocks.c.measure, clocks.c.started_at)
Index("ix_touches_deal_id_kind_at", touches.c.deal_id, touches.c.kind, touches.c.at)  # a deal's first attempt

# --- access and audit: who did what and when (append-only), and keys bound to a user -----------
# The database itself refuses UPDATE and DELETE on audit_log (triggers, made by migration 0010).

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(320), nullable=False),  # a user's email, "api:KEY NAME", "cli", "system"
    Column("action", String(64), nullable=False),  # e.g. deal.move, lead.move, user.create, api_key.revoke
    Column("subject", String(500), nullable=False),  # what it was done to: "deal:12", "user:ann@x.com", ...
    Column("detail", JSON),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_id", "actor", "id"),
    Index("ix_audit_log_action_id", "action", "id"),
    Index("ix_audit_log_subject_id", "subject", "id"),
)
api_keys.append_column(Column("user_id", ForeignKey("users.id"), nullable=True))  # a key that acts as this user

# --- personal data: the leads erased at a person's request ------------------------------------
# The lead row stays, anonymised (the reports still count it); this says when, by whom, and what went.

erasures = Table(
    "erasures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lead_id", ForeignKey("leads.id"), nullable=False, unique=True),
    Column("erased_at", UtcDateTime, nullable=False),
    Column("erased_by", String(320), nullable=False),
    Column("removed", JSON, nullable=False),  # rows removed or stripped, by table
)

# --- predictive scoring: trained models (versioned, stored as skops bytes) and each lead's p_win ---

models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(32), nullable=False),  # "win": the probability a lead is won
    Column("version", Integer, nullable=False),  # 1, 2, ... per kind
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("active", Boolean, nullable=False),  # the one rules and pages use (at most one per kind)
    Column("rows", Integer, nullable=False),  # leads it was trained on
    Column("metrics", JSON, nullable=False),  # out-of-time validation: AUC, PR-AUC, lift, calibration
    Column("artifact", LargeBinary, nullable=False),  # the fitted model in skops format (never a pickle)
    Column("sha256", String(64), nullable=False),  # of the artifact, checked before it is loaded
    UniqueConstraint("kind", "version", name="uq_models_kind_version"),
    Index("uq_models_active_kind", "kind", unique=True,  # one model in use per kind
          sqlite_where=text("active"), postgresql_where=text("active")),
)

lead_scores = Table(  # the latest p_win of each lead, by the model that gave it
    "lead_scores",
    metadata,
    Column("lead_id", ForeignKey("leads.id"), primary_key=True, autoincrement=False),
    Column("model_id", ForeignKey("models.id"), nullable=False, index=True),
    Column("p_win", Float, nullable=False),
    Column("reasons", JSON, nullable=False),  # the top features: [[label, effect on the log-odds], ...]
    Column("scored_at", UtcDateTime, nullable=False),
)
