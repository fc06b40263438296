"""Attribution: how the credit for an outcome (a lead, an MQL, an SQL, a won deal) is shared among
the touchpoints of the lead's journey. Pure functions, no database.

A journey is the lead's touchpoints up to the outcome, oldest first: its visits that came from a
campaign or another site, or, when none came before the outcome, the lead's own `source` field.
Models:

- **first touch**: all the credit to the first touchpoint;
- **last touch**: all of it to the last touchpoint before the outcome;
- **linear**: an equal share to each touchpoint;
- **W-shaped**: 30 % to the first touch, 30 % to the lead-creation touch (the last touchpoint at
  or before the lead was created), 30 % to the opportunity-creation touch (the last touchpoint at
  or before the lead became an opportunity, when it did so before the outcome), and the other
  10 % shared equally by the remaining touchpoints. Where these positions fall on the same
  touchpoint their shares add up; a share with nowhere to go (no opportunity yet, or no other
  touchpoints) is spread over the rest in proportion, so the shares always add up to 1.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

MODELS = ("first_touch", "last_touch", "linear", "w_shaped")
W_KEY_SHARE = 0.3  # each of first touch, lead creation and opportunity creation
W_REST_SHARE = 0.1  # shared by the touchpoints in between


def shares(model: str, count: int, *, lead_index: int = 0, opportunity_index: int | None = None) -> list[float]:
    """The share of each of `count` touchpoints (oldest first) under `model`; they add up to 1.
    `lead_index`, `opportunity_index`: the positions of the lead- and opportunity-creation touches
    (W-shaped only)."""
    if count <= 0:
        return []
    if model == "first_touch":
        return [1.0] + [0.0] * (count - 1)
    if model == "last_touch":
        return [0.0] * (count - 1) + [1.0]
    if model == "linear":
        return [1.0 / count] * count
    if model != "w_shaped":
        raise ValueError(f"unknown attribution model {model!r} (models: {', '.join(MODELS)})")
    for name, index in (("lead_index", lead_index), ("opportunity_index", opportunity_index)):
        if index is not None and not 0 <= index < count:
            raise ValueError(f"{name} {index} is outside the {count} touchpoints")
    weights = [0.0] * count
    keys = [0, lead_index] + ([opportunity_index] if opportunity_index is not None else [])
    for index in keys:
        weights[index] += W_KEY_SHARE
    others = [index for index in range(count) if index not in keys]
    for index in others:
        weights[index] += W_REST_SHARE / len(others)
    total = sum(weights)
    return [weight / total for weight in weights]


@dataclass(frozen=True, slots=True)
class Touchpoint:
    at: datetime
    source: str | None
    medium: str | None = None
    campaign: str | None = None

    @property
    def channel(self) -> tuple[str | None, str | None, str | None]:
        return self.source, self.medium, self.campaign


@dataclass(frozen=True, slots=True)
class Credit:
    """One outcome's credit to one channel (source, medium, campaign), under each model."""

    channel: tuple[str | None, str | None, str | None]
    first_touch: float
    last_touch: float
    linear: float
    w_shaped: float


def credit(touchpoints: Sequence[Touchpoint], fallback: Touchpoint, outcome_at: datetime, *,
           created_at: datetime, opportunity_at: datetime | None) -> list[Credit]:
    """Share one outcome (at `outcome_at`) among the journey's channels, under every model.
    `touchpoints` are oldest first; `fallback` (the lead's source field) is the journey when no
    touchpoint came at or before the outcome. Channels met twice get the sum of their shares."""
    times = [touch.at for touch in touchpoints]
    journey = list(touchpoints[:bisect_right(times, outcome_at)]) or [fallback]
    count = len(journey)
    journey_times = [touch.at for touch in journey]
    lead_index = max(bisect_right(journey_times, created_at) - 1, 0)
    opportunity_index = None
    if opportunity_at is not None and opportunity_at <= outcome_at:
        opportunity_index = max(bisect_right(journey_times, opportunity_at) - 1, 0)
    by_model = {model: shares(model, count, lead_index=lead_index, opportunity_index=opportunity_index)
                for model in MODELS}
    found: dict[tuple[str | None, str | None, str | None], list[float]] = {}
    for position, touch in enumerate(journey):
        sums = found.setdefault(touch.channel, [0.0, 0.0, 0.0, 0.0])
        for slot, model in enumerate(MODELS):
            sums[slot] += by_model[model][position]
    return [Credit(channel, *sums) for channel, sums in found.items()]
