"""Scoring suggestions from closed-loop data: which events, pages, content and field values go
with a higher (or lower) win rate among handed-off leads whose outcome is known, with counts and
95 % confidence intervals, proposed as playbook rules with points.

Only what happened before a lead's hand-off counts (the same replay the model trains on). A
candidate is proposed only when enough leads had it and its interval lies clear of the base
rate: a small sample is shown as what it is, never oversold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from leadrelay.domain.playbook import Playbook
from leadrelay.domain.prediction import IDENTIFYING_FIELDS
from leadrelay.services.prediction import replayed

Progress = Callable[[int, int], None]
CONTENT_KEYS = ("asset", "webinar", "form", "campaign", "content", "title")
MAX_POINTS = 30
Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (sound for small samples and rates near 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Suggestion:
    kind: str  # "fit" or "engagement"
    name: str
    when: str | None  # the CEL condition
    event: str | None  # engagement rules: the event name
    leads: int  # leads that had it
    won: int
    rate: float
    low: float
    high: float
    lift: float
    points: int


@dataclass
class Suggestions:
    leads: int
    won: int
    base_rate: float
    rules: list[Suggestion]
    weak: list[Suggestion]  # enough leads but an interval that includes the base rate


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _points(lift: float) -> int:
    """About 10 points per doubling of the win rate, in steps of 5, within ±MAX_POINTS."""
    raw = 10 * math.log2(max(lift, 1e-3))
    return int(max(-MAX_POINTS, min(MAX_POINTS, 5 * round(raw / 5))))


def _candidates(lead_fields: dict[str, object], history: list, playbook: Playbook) -> set[tuple[str, str, str | None, str | None]]:
    """(kind, name, event, when) of everything this lead had before its hand-off."""
    found: set[tuple[str, str, str | None, str | None]] = set()
    for name, spec in playbook.fields.items():
        value = lead_fields.get(name)
        if value in (None, "") or name in IDENTIFYING_FIELDS or name == "title" or spec.type in ("number", "date"):
            continue
        literal = ("true" if value else "false") if isinstance(value, bool) else _quote(str(value))
        found.add(("fit", f"{name} is {value}", None, f"lead.{name} == {literal}"))
    for event in history:
        if event.name in ("identify", "alias", "group"):
            continue
        found.add(("engagement", event.name.replace("_", " "), event.name, None))
        path = event.properties.get("path") if event.name == "page_view" else None
        if isinstance(path, str) and path.startswith("/"):
            first = "/" + path.strip("/").split("/")[0] if path.strip("/") else "/"
            if first != "/":
                found.add(("engagement", f"{first} pages", event.name, f"properties.path.startsWith({_quote(first)})"))
            if path.rstrip("/") != first:
                found.add(("engagement", f"page {path}", event.name, f"properties.path == {_quote(path)}"))
        for key in CONTENT_KEYS:
            value = event.properties.get(key)
            if isinstance(value, str) and value and len(value) <= 200:
                found.add(("engagement", f"{event.name.replace('_', ' ')}: {value}", event.name,
                           f"properties.{key} == {_quote(value)}"))
    return found


def suggest(engine: Engine, playbook: Playbook, *, since: datetime | None = None, min_leads: int = 30,
            limit: int = 20, progress: Progress | None = None) -> Suggestions:
    counts: dict[tuple[str, str, str | None, str | None], list[int]] = {}
    leads = won = 0
    for _, _, label, lead, history in replayed(engine, playbook, since=since, progress=progress):
        leads += 1
        won += label
        for candidate in _candidates(lead.fields, history, playbook):
            tally = counts.setdefault(candidate, [0, 0])
            tally[0] += 1
            tally[1] += label
    base = won / leads if leads else 0.0
    rules: list[Suggestion] = []
    weak: list[Suggestion] = []
    for (kind, name, event, when), (n, w) in counts.items():
        if n < min_leads or n == leads or not base:
            continue
        rate = w / n
        low, high = wilson(w, n)
        lift = rate / base
        suggestion = Suggestion(kind, name, when, event, n, w, round(rate, 4), round(low, 4), round(high, 4),
                                round(lift, 3), _points(lift))
        if (low > base or high < base) and suggestion.points:
            rules.append(suggestion)
        else:
            weak.append(suggestion)
    # strongest evidence first: the distance of the log-lift from 0, weighed by the sample
    rules.sort(key=lambda s: -abs(math.log(max(s.lift, 1e-3))) * math.sqrt(s.leads))
    weak.sort(key=lambda s: -s.leads)
    return Suggestions(leads, won, round(base, 4), rules[:limit], weak[:10])


def _yaml_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def as_yaml(found: Suggestions) -> str:
    """The suggestions as playbook rules, ready to paste under `scoring:` (each with its evidence)."""
    lines = [
        (f"# Suggested scoring rules from {found.leads:,} handed-off leads with a known outcome "
        f"({found.won:,} won, base win rate {found.base_rate:.1%})."),
        "# Each shows the win rate of the leads that had it, its 95 % interval, how many leads, and the lift",
        "# over the base rate. Points: about 10 per doubling of the win rate. Paste the ones you agree with.",
        "scoring:",
    ]
    for kind in ("fit", "engagement"):
        chosen = [s for s in found.rules if s.kind == kind]
        lines.append(f"  {kind}:")
        lines.append("    rules:" if chosen else "    rules: []")
        for s in chosen:
            lines.append(f"      # win rate {s.rate:.1%} ({s.low:.1%}–{s.high:.1%}) over {s.leads:,} leads; "
                         f"{s.lift:.2f}x the base rate")
            lines.append(f"      - name: {_yaml_string(s.name)}")
            if s.event:
                lines.append(f"        event: {s.event}")
            if s.when:
                lines.append(f"        when: {_yaml_string(s.when)}")
            lines.append(f"        points: {s.points}")
    if found.weak:
        lines.append("# Not proposed (the interval includes the base rate, so the data cannot tell):")
        for s in found.weak:
            lines.append(f"#   {s.name}: {s.rate:.1%} ({s.low:.1%}–{s.high:.1%}) over {s.leads:,} leads")
    return "\n".join(lines) + "\n"
