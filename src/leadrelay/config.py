"""One settings object, read from LEADRELAY_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_path
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLAYBOOK_FILE = "playbook.yaml"


def default_database_url() -> str:
    return f"sqlite:///{user_data_path('leadrelay', appauthor=False) / 'leadrelay.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADRELAY_", extra="ignore")

    database_url: str = ""
    # The playbook file; when unset, ./playbook.yaml if there is one, else the built-in default.
    playbook: Path | None = None
    # The server: where it listens, and how many tracking batches may wait to be stored
    # before new ones are answered 429 (Retry-After).
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_pending_batches: int = Field(200, ge=1, le=100_000)
    # The worker: delivers webhooks and emails from the outbox. It runs inside `serve` unless
    # `worker_in_server` is false (then run `leadrelay worker` processes).
    worker_in_server: bool = True
    worker_poll_seconds: float = Field(1.0, gt=0, le=3600)
    outbox_max_attempts: int = Field(8, ge=1, le=100)
    # how long a claimed item is a worker's: if that worker dies, it is delivered again after this
    outbox_lease_seconds: float = Field(120.0, gt=0, le=86_400)
    webhook_timeout: float = Field(10.0, gt=0, le=300)
    # Email (SMTP): unset host means emails wait in the outbox until it is set.
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "LeadRelay <leadrelay@localhost>"
    smtp_connections: int = Field(4, ge=1, le=32)  # connections at once when many emails are due
    # Nurture emails. `public_url` is where their links (open pixel, tracked links, unsubscribe)
    # point: this server's address as leads' mail programs reach it, https in production (one-click
    # unsubscribe needs it); unset, http://HOST:PORT. Links are signed with `email_link_secret`;
    # unset, a random secret is made once and kept in the database.
    public_url: str = ""
    email_link_secret: str | None = Field(None, min_length=16)
    nurture_sender: str = ""  # the From of nurture emails; unset, smtp_sender
    nurture_per_minute: int = Field(600, ge=0, le=10_000_000)  # nurture emails a minute in all (0: no limit)
    nurture_per_domain_per_minute: int = Field(60, ge=0, le=10_000_000)  # ... to one recipient domain
    nurture_quiet_hours: str = "21:00-08:00"  # in the lead's time zone (its `timezone` field, else the playbook's)
    nurture_batch: int = Field(500, ge=1, le=100_000)  # enrollments the worker takes a round
    # The web app: a login session ends after this long unused, and after session_max_hours in
    # any case; past login_max_failures failed logins for one email within login_window_minutes,
    # that email's logins are refused until the window has passed.
    session_idle_minutes: int = Field(720, ge=1, le=43_200)
    session_max_hours: int = Field(168, ge=1, le=8_760)
    login_max_failures: int = Field(5, ge=1, le=1_000)
    login_window_minutes: int = Field(15, ge=1, le=1_440)
    # Access: calls a minute each API key (or web session) may make to the REST API, and each key
    # to the tracking API (0: no limit; tracking is also held back by max_pending_batches). Past
    # the limit the answer is 429 with Retry-After. Counted in each server process.
    api_rate_per_minute: int = Field(3000, ge=0, le=10_000_000)
    tracking_rate_per_minute: int = Field(0, ge=0, le=10_000_000)
    # Outbound webhooks never go to this server itself nor to link-local/metadata addresses; with
    # webhook_private_addresses false they may not go to private or loopback addresses either.
    webhook_private_addresses: bool = True
    # Personal data: raw events older than this many days are deleted by the worker, a batch at
    # a time (0: kept forever). Scores, stages and the reports' tables stay as they were.
    event_retention_days: int = Field(0, ge=0, le=36_500)

    @field_validator("database_url")
    @classmethod
    def _default_database(cls, value: str) -> str:
        value = value.strip() or default_database_url()
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]  # the driver LeadRelay ships with
        return value

    @field_validator("nurture_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        from leadrelay.domain.nurture import QuietHours

        QuietHours.parse(value)  # ValueError says what is wrong
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// on a development machine)")
        return value

    def link_base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def playbook_path(self) -> Path | None:
        if self.playbook is not None:
            return self.playbook
        local = Path.cwd() / PLAYBOOK_FILE
        return local if local.is_file() else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
