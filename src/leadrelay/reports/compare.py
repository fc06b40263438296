"""A period against the one before, in plain sentences: "MQL → SAL acceptance fell from 62 % to
48 %; most rejections: bad timing". Pure functions: figures in, words out.

A change is told only when it matters: a rate that moved by at least 2 percentage points, a count
or an amount by at least 5 % (and at least 1), a duration by at least 10 %. Smaller moves are
noise in a weekly or monthly meeting. A figure missing on either side is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RATE_STEP = 0.02
COUNT_STEP = 0.05
DURATION_STEP = 0.10


def format_value(value: float | None, kind: str) -> str:
    """A figure as people read it: rate 0.62 -> "62 %", count 1234 -> "1,234", seconds ->
    "5.0 hours" or "3.2 days", amount 12000.5 -> "12,000"."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.0f} %"
    if kind == "duration":
        hours = value / 3600
        if hours < 1:
            return f"{value / 60:.0f} minutes"
        return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"
    return f"{value:,.0f}"


@dataclass(frozen=True)
class Figure:
    """One headline figure of a period and of the period before."""

    label: str
    kind: str  # count, rate, amount, duration
    current: float | None
    previous: float | None
    better: str = "up"  # which way is good: up, down (durations), or none

    @property
    def change(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    def matters(self) -> bool:
        change = self.change
        if change is None or change == 0:
            return False
        if self.kind == "rate":
            return abs(change) >= RATE_STEP - 1e-12
        base = abs(self.previous or 0.0)
        step = DURATION_STEP if self.kind == "duration" else COUNT_STEP
        if base == 0:
            return abs(change) >= 1
        return abs(change) / base >= step - 1e-12 and (self.kind == "duration" or abs(change) >= 1)

    @property
    def good(self) -> bool | None:
        """Whether the change is for the better (None: no direction is better, or no change)."""
        change = self.change
        if change is None or change == 0 or self.better == "none":
            return None
        return (change > 0) == (self.better == "up")


def sentence(figure: Figure, detail: str | None = None) -> str | None:
    """"{label} rose from A to B" / "fell from A to B" (with `; {detail}`), or None when the change
    is too small to tell."""
    if not figure.matters():
        return None
    verb = "rose" if (figure.change or 0) > 0 else "fell"
    if figure.kind == "duration":
        verb = "grew" if (figure.change or 0) > 0 else "shortened"
    text = (f"{figure.label} {verb} from {format_value(figure.previous, figure.kind)} "
            f"to {format_value(figure.current, figure.kind)}")
    return text + (f"; {detail}" if detail else "")


def most(counts: Mapping[str, int], what: str) -> str | None:
    """"most rejections: bad timing" (the largest count; ties name both), or None for none."""
    positive = {key: value for key, value in counts.items() if value > 0}
    if not positive:
        return None
    top = max(positive.values())
    names = sorted(key for key, value in positive.items() if value == top)
    return f"most {what}: {' and '.join(names)}"


def sentences(figures: list[Figure], details: Mapping[str, str | None] | None = None) -> list[str]:
    """The sentences of the figures whose change matters, in the order given; `details` adds a
    clause to a figure's sentence, by label."""
    details = details or {}
    found = []
    for figure in figures:
        text = sentence(figure, details.get(figure.label))
        if text is not None:
            found.append(text[0].upper() + text[1:] + ".")
    return found
