"""Keeping every process on the playbook in force: a playbook applied in one server is recorded in
the database (`playbook_versions`); the other servers and the workers read the latest version at
most every few seconds and take it up when it is not the one they run."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

from leadrelay.adapters.playbook_file import PlaybookError, parse_playbook
from leadrelay.bootstrap import App
from leadrelay.domain.playbook import Playbook

log = logging.getLogger("leadrelay.playbook")
CHECK_SECONDS = 3.0


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()  # as services.playbook records it


class PlaybookFollower:
    """A thread that checks the latest recorded playbook version every `every` seconds and, when
    it differs from the one this process runs, puts it in force here (`on_change` is told too)."""

    def __init__(self, app: App, *, every: float = CHECK_SECONDS,
                 on_change: Callable[[Playbook], None] | None = None) -> None:
        self.app, self.every, self.on_change = app, every, on_change
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadrelay-playbook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self) -> bool:
        """Take up the latest recorded version if it is not the one in force; True if it changed."""
        with self.app.read_uow() as uow:
            latest = uow.playbook_versions.page(limit=1)
        if not latest or latest[0].sha256 == _sha(self.app.playbook.source):
            return False
        version = latest[0]
        try:
            playbook = parse_playbook(version.text, f"<playbook version {version.id}>")
        except PlaybookError as error:  # recorded versions were checked when applied: not expected
            log.error("playbook version %s cannot be used here: %s", version.id, error)
            return False
        try:
            from leadrelay.services.prediction import (
                attach,  # the predictive model in use, when there is one
            )

            playbook = attach(playbook, self.app.engine)
        except ImportError:  # pragma: no cover - a version without predictive scoring
            pass
        self.app.playbook = playbook
        if self.on_change is not None:
            self.on_change(playbook)
        log.warning("now running playbook %r version %s (applied by %s at %s)", playbook.name, playbook.version,
                    version.applied_by, version.applied_at.isoformat())
        return True

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            try:
                self.check()
            except Exception:
                log.exception("checking for a new playbook version failed; trying again in %s s", self.every)
