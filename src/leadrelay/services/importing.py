"""Import a file through the one batch path: valid rows stored and scored, each bad row
reported with its line number and reason, never half-written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from leadrelay.adapters.files import Row
from leadrelay.domain.model import Event
from leadrelay.domain.playbook import Playbook
from leadrelay.services.ingest import IngestResult, ingest
from leadrelay.services.unit_of_work import UnitOfWork

BATCH_SIZE = 50_000


@dataclass
class ImportSummary:
    rows: int = 0
    result: IngestResult = field(default_factory=IngestResult)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @property
    def accepted(self) -> int:
        return self.rows - len(self.rejected)


def import_rows(
    uow_factory: Callable[[], UnitOfWork],
    playbook: Playbook,
    rows: Iterable[Row],
    now: datetime,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    batch: list[Event] = []

    def flush() -> None:
        if batch:
            summary.result.add(ingest(uow_factory(), playbook, batch, now))
            if progress:
                progress(len(batch))
            batch.clear()

    for row in rows:
        summary.rows += 1
        if row.event is None:
            summary.rejected.append((row.line, row.error or "refused"))
            continue
        batch.append(row.event)
        if len(batch) >= batch_size:
            flush()
    flush()
    return summary
