"""The playbook's life: its version history, previewing a candidate, applying it.

Each text the agreement ran with is kept, with who applied it and when: the server records the
playbook it starts with when its text differs from the latest version, and applying a candidate
(from the web page) writes the playbook file and records who did it."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from leadrelay.adapters.playbook_file import PlaybookError, Problem, parse_playbook
from leadrelay.adapters.playbook_versions import PlaybookVersion
from leadrelay.domain.errors import NotFound
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.sla import Commitment
from leadrelay.services import audit
from leadrelay.services.unit_of_work import UnitOfWork


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record(uow: UnitOfWork, playbook: Playbook, *, by: str, now: datetime, note: str | None = None) -> bool:
    """Keep this playbook as a new version unless it is the latest already; True if it was new."""
    with uow:
        uow.playbook_versions.take_turn()  # several processes starting at once record it once
        latest = uow.playbook_versions.page(limit=1)
        if latest and latest[0].sha256 == _sha(playbook.source):
            return False
        uow.playbook_versions.add(sha256=_sha(playbook.source), name=playbook.name, version=playbook.version,
                                  text=playbook.source, applied_by=by, note=note, now=now)
        audit.record(uow, actor=by, action="playbook.change", subject=f"playbook:{playbook.name}", now=now,
                     detail={"version": playbook.version, "sha256": _sha(playbook.source), "note": note,
                             "previous_sha256": latest[0].sha256 if latest else None})
        uow.commit()
    return True


def versions(uow: UnitOfWork, *, before: int | None = None, limit: int = 50) -> list[PlaybookVersion]:
    with uow:
        return uow.playbook_versions.page(before=before, limit=limit)


@dataclass
class VersionChange:
    version: PlaybookVersion
    previous: PlaybookVersion | None
    diff: list[str]


def version_change(uow: UnitOfWork, version_id: int) -> VersionChange:
    """One version and what changed from the one before it, as a unified diff."""
    with uow:
        version = uow.playbook_versions.get(version_id)
        if version is None:
            raise NotFound(f"no playbook version {version_id}")
        previous = uow.playbook_versions.before(version_id)
    return VersionChange(version, previous, diff(previous.text if previous else "", version.text))


def diff(old: str, new: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), "in force", "candidate", lineterm="", n=2))


@dataclass
class Preview:
    problems: list[Problem] = field(default_factory=list)
    candidate: Playbook | None = None
    diff: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.candidate is not None


def preview(current: Playbook, text: str) -> Preview:
    """Check a candidate playbook and say, in plain words, what it would change."""
    try:
        candidate = parse_playbook(text, "candidate")
    except PlaybookError as error:
        return Preview(problems=error.problems)
    return Preview(candidate=candidate, diff=diff(current.source, text), changes=changes(current, candidate))


def changes(old: Playbook, new: Playbook) -> list[str]:
    """What a new playbook changes, one sentence each: stages, MQL rule, scoring, fast-track,
    reasons, SLA commitments."""
    said: list[str] = []

    def compare(what: str, before: dict[str, str], after: dict[str, str]) -> None:
        for name in after.keys() - before.keys():
            said.append(f"New {what} {name!r}: {after[name]}.")
        for name in before.keys() - after.keys():
            said.append(f"{what.capitalize()} {name!r} removed.")
        for name in sorted(before.keys() & after.keys()):
            if before[name] != after[name]:
                said.append(f"{what.capitalize()} {name!r}: {before[name]} → {after[name]}.")

    if old.mql_rule.source != new.mql_rule.source:
        said.append(f"MQL rule: {old.mql_rule.source} → {new.mql_rule.source}.")
    compare("stage", {s.id: f"{s.team}, moves to {', '.join(s.moves) or 'nothing'}" for s in old.stages.values()},
            {s.id: f"{s.team}, moves to {', '.join(s.moves) or 'nothing'}" for s in new.stages.values()})
    compare("fit rule", {r.name: f"{r.points:+g} when {r.when.source}" for r in old.scoring.fit_rules},  # type: ignore[attr-defined]
            {r.name: f"{r.points:+g} when {r.when.source}" for r in new.scoring.fit_rules})  # type: ignore[attr-defined]
    compare("engagement rule", {r.name: f"{r.points:+g} for {', '.join(sorted(r.events))}"
                                for r in old.scoring.engagement_rules},
            {r.name: f"{r.points:+g} for {', '.join(sorted(r.events))}" for r in new.scoring.engagement_rules})
    compare("fast-track rule", {f.name: f"to {f.to} when {f.when.source}" for f in old.fast_track},  # type: ignore[attr-defined]
            {f.name: f"to {f.to} when {f.when.source}" for f in new.fast_track})  # type: ignore[attr-defined]
    compare("SLA commitment", {c.name: _within(c) for c in old.sla.commitments},
            {c.name: _within(c) for c in new.sla.commitments})
    for kind in ("hand_back_reasons", "disqualify_reasons", "lost_reasons"):
        before, after = getattr(old, kind), getattr(new, kind)
        if before != after:
            said.append(f"{kind.replace('_', ' ').capitalize()}: {', '.join(after) or 'none'} "
                        f"(was {', '.join(before) or 'none'}).")
    return said


def _within(commitment: Commitment) -> str:
    hours = commitment.within.total_seconds() / 3600
    return f"{commitment.measure} within {hours:g} {'business hours' if commitment.business else 'hours'}"


def apply(uow: UnitOfWork, text: str, path: Path, *, by: str, note: str | None, now: datetime) -> Playbook:
    """Put a candidate in force: check it, write it to the playbook file, record the version.
    Refused (PlaybookError) with every problem when it is not valid; then nothing changes."""
    candidate = parse_playbook(text, str(path))
    path.write_text(text, encoding="utf-8")
    record(uow, candidate, by=by, now=now, note=note)
    return candidate
