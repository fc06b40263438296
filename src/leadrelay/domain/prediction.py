"""The predictive score: how likely a lead is to be won (`p_win`), from what is known of it at
the moment it is scored, and the few facts that weigh most in that number.

Features come from the lead as the domain holds it at `at` (its fields, fit, engagement and
each engagement rule's points, its age and recency, where it came from) — never from anything
recorded after that moment. Training replays each lead's events up to its hand-off with the
same functions (`replay`), so the model learns from exactly what it will see when scoring.

The model itself is linear (a weight per feature) with a calibration curve on top, so scoring
one lead is a few dictionary look-ups and a lead's reasons are the weights it carries.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from leadrelay.domain.model import Event, Lead, company_domain
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.scoring import (
    award,
    compute_fit,
    engagement_at,
    engagement_breakdown,
)

SECONDS_PER_DAY = 86400.0
IDENTIFYING_FIELDS = frozenset({"name", "phone", "company", "email"})  # who, not what kind of lead
MAX_TEXT = 60  # a longer value is cut: it names a category, not a story


def _log(value: float) -> float:
    return math.copysign(math.log1p(abs(value)), value)


def lead_features(lead: Lead, playbook: Playbook, at: datetime) -> dict[str, float]:
    """What the model reads of a lead at `at`: names of the form `field=value` for text fields
    (one-hot), plain names for numbers (on a log scale where they span orders of magnitude)."""
    features: dict[str, float] = {}
    for name, spec in playbook.fields.items():
        value = lead.fields.get(name)
        if value is None or value == "" or name in IDENTIFYING_FIELDS or spec.type == "date":
            continue
        if spec.type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            features[f"field:{name}"] = _log(float(value))
        elif name == "title":
            for word in str(value).lower().replace(",", " ").split()[:6]:
                features[f"title~{word[:MAX_TEXT]}"] = 1.0
        else:
            features[f"{name}={str(value).strip().lower()[:MAX_TEXT]}"] = 1.0
    source = lead.source
    if source and "source" not in lead.fields:
        features[f"source={str(source).lower()[:MAX_TEXT]}"] = 1.0
    if lead.first_touch and lead.first_touch.get("medium"):
        features[f"medium={lead.first_touch['medium'].lower()[:MAX_TEXT]}"] = 1.0
    if company_domain(lead.email) is None:
        features["free_mail"] = 1.0
    features["fit"] = lead.fit / 100.0
    engagement = engagement_at(lead.engagement, playbook.scoring, max(at, lead.engagement.as_of or at))
    features["engagement"] = engagement / 100.0
    for rule, value in engagement_breakdown(lead.engagement, playbook.scoring, at).items():
        features[f"now:{rule}"] = _log(value)
    for rule, score in lead.engagement.rules.items():
        if score.awarded:
            features[f"ever:{rule}"] = _log(score.awarded)
    features["age_days"] = _log(max((at - lead.created_at).total_seconds(), 0.0) / SECONDS_PER_DAY)
    if lead.engagement.as_of is not None:
        features["quiet_days"] = _log(max((at - lead.engagement.as_of).total_seconds(), 0.0) / SECONDS_PER_DAY)
    return features


@lru_cache(maxsize=4096)
def describe(feature: str) -> str:
    """A feature's name as people read it."""
    if feature.startswith("ever:"):
        return f"points from '{feature[5:]}' (all time)"
    if feature.startswith("now:"):
        return f"points from '{feature[4:]}' (recent)"
    if feature.startswith("field:"):
        return feature[6:].replace("_", " ")
    if feature.startswith("title~"):
        return f"title mentions '{feature[6:]}'"
    if "=" in feature:
        name, _, value = feature.partition("=")
        return f"{name.replace('_', ' ')} is {value}"
    return {"fit": "fit score", "engagement": "engagement score", "age_days": "days since the lead arrived",
            "quiet_days": "days since its last scored action", "free_mail": "free-mail address"}.get(feature, feature)


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    label: str
    effect: float  # on the log-odds: positive raises p_win, negative lowers it


@dataclass(frozen=True, slots=True)
class WinModel:
    """A trained model in plain numbers: weights, the average of each feature over the training
    leads (the baseline a reason is measured from), and the calibration curve from the linear
    score to a probability (increasing steps, interpolated between)."""

    version: int
    weights: Mapping[str, float]
    intercept: float
    means: Mapping[str, float]
    curve_x: tuple[float, ...]
    curve_y: tuple[float, ...]
    trained_at: datetime | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def raw(self, features: Mapping[str, float]) -> float:
        weights = self.weights
        return self.intercept + sum(weights.get(name, 0.0) * value for name, value in features.items())

    def calibrate(self, raw: float) -> float:
        xs, ys = self.curve_x, self.curve_y
        if not xs:
            return 1.0 / (1.0 + math.exp(-max(min(raw, 40.0), -40.0)))
        if raw <= xs[0]:
            return ys[0]
        if raw >= xs[-1]:
            return ys[-1]
        i = bisect_right(xs, raw)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    def probability(self, features: Mapping[str, float]) -> float:
        return self.calibrate(self.raw(features))

    def reasons(self, features: Mapping[str, float], limit: int = 3) -> list[Reason]:
        """The features of this lead that move its score most from the average lead's."""
        weights, means = self.weights, self.means
        effects = []
        for name, value in features.items():
            weight = weights.get(name)
            if weight:
                effect = weight * (value - means.get(name, 0.0))
                if abs(effect) > 1e-6:
                    effects.append((abs(effect), name, effect))
        top = sorted(effects, reverse=True)[:limit] if len(effects) > limit else sorted(effects, reverse=True)
        return [Reason(name, describe(name), round(effect, 3)) for _, name, effect in top]


def p_win(lead: Lead, playbook: Playbook, at: datetime) -> float:
    """The lead's probability of being won as of `at`; KeyError when no model is in use (a rule
    that reads `p_win` then does not fire, like any rule that cannot be decided)."""
    model = playbook.win_model
    if model is None:
        raise KeyError("p_win")
    return round(model.probability(lead_features(lead, playbook, at)), 4)


def replay(lead: Lead, events: Iterable[Event], playbook: Playbook, until: datetime) -> Lead:
    """Bring a fresh `lead` to what was known of it at `until`: the fields its events carried and
    the points they earned, in time order (no stage moves: features never read the stage)."""
    for event in events:
        if event.timestamp > until:
            break
        if event.traits:
            changed = False
            for name, value in event.traits.items():
                if value is not None and value != "" and lead.fields.get(name) != value:
                    lead.fields[name] = value
                    changed = True
            if changed:
                compute_fit(lead, playbook.scoring, {"lead": lead.context()})
        award(lead.engagement, playbook.scoring, event, _EventContext(lead, event))
        if event.touch:
            lead.record_touch(event.touch, event.timestamp)
    return lead


class _EventContext(dict[str, Any]):
    """What engagement rules read (event, properties, lead), built only when asked."""

    __slots__ = ("event", "lead")

    def __init__(self, lead: Lead, event: Event) -> None:
        super().__init__()
        self.lead, self.event = lead, event

    def __missing__(self, key: str) -> Any:
        if key == "event":
            value: Any = {"name": self.event.name, "type": self.event.type}
        elif key == "properties":
            value = self.event.properties
        elif key == "lead":
            value = self.lead.context()
        else:
            raise KeyError(key)
        self[key] = value
        return value
