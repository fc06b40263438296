"""A hand-built closed loop for the predictive-scoring tests: leads that looked at pricing and
attended a webinar before their hand-off were won; the others were disqualified, and they looked
at pricing only after their hand-off (which no model may see)."""

from __future__ import annotations

from datetime import timedelta

from .report_histories import History, at

PAIRS = 12  # a winner and a loser each time


def closed_loop(history: History) -> History:
    h = history
    start = at("2026-06-01 10:00")
    for i in range(PAIRS):
        day = start + timedelta(days=3 * i)
        good, bad = f"good{i}@buyer{i}.example", f"bad{i}@browser{i}.example"
        h.lead(good, day, company_size=120)
        h.visit(good, day + timedelta(hours=1), path="/pricing")
        h.did(good, day + timedelta(hours=2), "webinar_attended", webinar="product-tour")
        h.hand_off(good, day + timedelta(days=1))
        h.act(good, "accept", day + timedelta(days=2))
        h.act(good, "move", day + timedelta(days=3), to="sql")
        h.act(good, "move", day + timedelta(days=4), to="opportunity")
        h.act(good, "win", day + timedelta(days=10), value=5000)

        h.lead(bad, day + timedelta(hours=3), company_size=120)
        h.visit(bad, day + timedelta(hours=4), path="/blog/post")
        h.hand_off(bad, day + timedelta(days=1, hours=1))
        for k in range(3):  # after the hand-off: known only later, never a feature
            h.visit(bad, day + timedelta(days=1, hours=2 + k), path="/pricing")
        h.act(bad, "disqualify", day + timedelta(days=5), reason="not a fit")
    h.lead("open@new.example", start + timedelta(days=40), company_size=120)  # never handed off
    h.visit("open@new.example", start + timedelta(days=40, hours=1), path="/pricing")
    h.did("open@new.example", start + timedelta(days=40, hours=2), "webinar_attended", webinar="product-tour")
    return h
