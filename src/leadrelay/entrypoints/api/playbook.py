"""/api/v1/playbook: the agreement in force, and checking a candidate before adopting it."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from leadrelay.adapters.playbook_file import PlaybookError, parse_playbook
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized

router = APIRouter(prefix="/api/v1/playbook", tags=["playbook"], dependencies=[Depends(authorized)])

@router.get("", response_model=schemas.PlaybookOut)
def current_playbook(app: AppDep) -> schemas.PlaybookOut:
    """The playbook in force: its stages and moves, fields, MQL rule, and the YAML itself."""
    playbook = app.playbook
    return schemas.PlaybookOut(
        name=playbook.name, version=playbook.version, timezone=playbook.timezone, mql_rule=playbook.mql_rule.source,
        stages=[{"id": s.id, "name": s.name, "team": s.team, "moves": list(s.moves), "funnel": s.rank is not None,
                 "outcome": s.outcome, "reasons": list(playbook.reasons_for(s.id))} for s in playbook.stages.values()],
        fields=[{"name": f.name, "type": f.type, "label": f.label, "values": list(f.values), "aliases": list(f.aliases)}
                for f in playbook.fields.values()],
        yaml=playbook.source,
    )


@router.post("/validate", response_model=schemas.PlaybookCheck)
def validate_playbook(body: schemas.PlaybookIn) -> schemas.PlaybookCheck:
    """Check a candidate playbook: every problem with its line and column (nothing is changed)."""
    try:
        candidate = parse_playbook(body.yaml, "playbook.yaml")
    except PlaybookError as error:
        return schemas.PlaybookCheck(valid=False, problems=[
            schemas.PlaybookProblem(line=p.line, column=p.column, message=p.message) for p in error.problems])
    return schemas.PlaybookCheck(valid=True, problems=[], summary=f"{candidate.name!r} version {candidate.version}: "
                                 f"{len(candidate.stages)} stages, {len(candidate.fields)} fields")
