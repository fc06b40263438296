"""The one place where LeadRelay is wired together: settings, database, playbook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, load_playbook, parse_playbook
from leadrelay.config import Settings, get_settings
from leadrelay.domain.playbook import Playbook
from leadrelay.services.unit_of_work import UnitOfWork


@dataclass
class App:
    settings: Settings
    engine: Engine
    playbook: Playbook
    playbook_path: Path | None = field(default=None)
    # called after a commit that queued outbox items: the in-process worker sets it to wake up
    outbox_written: Callable[[], None] | None = field(default=None)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, outbox_written=self._outbox_written)

    def _outbox_written(self) -> None:
        if self.outbox_written is not None:
            self.outbox_written()

    def read_uow(self) -> UnitOfWork:
        """A unit of work that only reads (never waits for a writer on SQLite)."""
        return UnitOfWork(self.engine, read_only=True)


def active_playbook(settings: Settings) -> tuple[Playbook, Path | None]:
    """The playbook in force: LEADRELAY_PLAYBOOK, else ./playbook.yaml, else the built-in one."""
    path = settings.playbook_path()
    if path is None:
        return parse_playbook(default_playbook_text(), "<built-in playbook>"), None
    return load_playbook(path), path


def bootstrap(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    playbook: Playbook | None = None,
    create_schema: bool = True,
) -> App:
    settings = settings or get_settings()
    path = None
    if playbook is None:
        playbook, path = active_playbook(settings)
    engine = engine or make_engine(settings.database_url)
    if create_schema:
        migrate(engine)
    if playbook.win_model is None:  # the predictive model in use, for rules that read p_win
        from leadrelay.services.prediction import attach

        playbook = attach(playbook, engine)
    return App(settings=settings, engine=engine, playbook=playbook, playbook_path=path)
