"""Marketing's feedback loop: the leads sales handed back, newest first, with who, why and the note."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, select

from leadrelay.adapters.tables import deal_activity, deals, leads


def hand_backs(connection: Connection, *, before: int | None = None, limit: int = 50,
               reason: str | None = None) -> list[dict[str, Any]]:
    """Each hand-back (a deal closed as handed back): deal, lead, when, by whom, reason, note,
    and the stage the lead is in now (back in nurture, MQL again, ...)."""
    query = (
        select(deals.c.id.label("deal_id"), deals.c.lead_id, deals.c.closed_at.label("at"),
               deals.c.close_reason.label("reason"), deals.c.team, deals.c.owner, leads.c.email, leads.c.fields,
               leads.c.stage.label("stage_now"), deal_activity.c.by, deal_activity.c.note)
        .join(leads, leads.c.id == deals.c.lead_id)
        .outerjoin(deal_activity, and_(deal_activity.c.deal_id == deals.c.id, deal_activity.c.action == "handed_back"))
        .where(deals.c.outcome == "handed_back")
        .order_by(deals.c.id.desc()).limit(limit)
    )
    if before is not None:
        query = query.where(deals.c.id < before)
    if reason is not None:
        query = query.where(deals.c.close_reason == reason)
    return [dict(row._mapping) for row in connection.execute(query)]
