"""The SLA sweep: clocks come to their warning and their due time whether or not anyone touches
the deal. The worker runs `sweep` every round; it reads only running clocks that are due (two
index reads), locks their deals (several workers never fire a clock twice), and lets the hand-off
service fire the automations and escalations in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadrelay.domain import sla
from leadrelay.domain.playbook import Playbook
from leadrelay.services.handoff import after_clocks
from leadrelay.services.unit_of_work import UnitOfWork


def sweep(uow_factory: Callable[[], UnitOfWork], playbook: Playbook, now: datetime, *, limit: int = 500) -> int:
    """Warn and breach the clocks due at `now`, up to `limit` deals' worth; how many clocks fired."""
    if not playbook.sla.commitments:
        return 0
    with uow_factory() as uow:
        deal_ids = uow.deals.due_clock_deals(now, limit=limit)
        if not deal_ids:
            return 0
        deals = uow.deals.by_ids(deal_ids, lock=True)
        running = uow.deals.running_clocks(deals)  # read again, now that the deals are ours
        fired = [(clock, what) for clocks in running.values() for clock in clocks
                 if (what := sla.due(clock, now)) is not None]
        after_clocks(uow, playbook, fired, now, running=running.values())
        uow.leads.save([deal.lead for deal in deals.values() if deal.lead.dirty], now)
        uow.commit()
    return len(fired)
