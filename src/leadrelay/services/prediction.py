"""Predictive scoring: train on leads whose outcome is known, from what was known of them at
their hand-off; validate out of time; store versioned models; score leads; evaluate on any CSV.

Who is a training lead: a lead that was handed off (it has a deal) and whose outcome is known —
won (positive), or its last deal closed lost or disqualified (negative). Its features are those
of the lead at its first hand-off, rebuilt by replaying its events up to that moment; nothing
recorded later (sales' touches, later fields, the outcome itself) reaches the model.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from leadrelay.adapters.models import (
    Fitted,
    ModelError,
    ModelRepository,
    StoredModel,
    fit,
    loads,
    means_of,
    measure,
)
from leadrelay.adapters.tables import deals, events, leads
from leadrelay.domain.model import Engagement, Event, Lead, RuleScore
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.prediction import WinModel, lead_features, replay
from leadrelay.domain.processing import new_lead
from leadrelay.services import audit
from leadrelay.services.unit_of_work import UnitOfWork

Progress = Callable[[int, int], None]
CHUNK = 2000
SCORE_BATCH = 20000  # leads scored together (one sparse matrix)
MAX_WORKERS = 2  # processes sharing a long job (leads are independent): the cores it may take
VALIDATION_SHARE = 0.2  # the newest fifth of the training leads is the out-of-time test
POSITIVE_OUTCOMES = frozenset({"won"})
NEGATIVE_OUTCOMES = frozenset({"lost", "disqualified"})


@dataclass
class Sample:
    lead_id: int
    at: datetime  # the first hand-off: features are as of this moment
    label: int
    features: dict[str, float]


def reading(engine: Engine) -> Connection:
    """A connection for long reads: on SQLite it never takes the write lock, so live writers
    (ingestion, moves) go on while a model trains or a backtest replays."""
    return engine.connect().execution_options(read_only=True)


# --- the training set -------------------------------------------------------------------------

def labels(connection: Connection, since: datetime | None = None) -> dict[int, tuple[datetime, int]]:
    """Lead id -> (first hand-off, 1 won / 0 lost or disqualified), for leads with a known outcome."""
    query = (select(deals.c.lead_id, deals.c.opened_at, deals.c.closed_at, deals.c.outcome)
             .join(leads, leads.c.id == deals.c.lead_id).where(leads.c.merged_into.is_(None))
             .order_by(deals.c.lead_id, deals.c.opened_at, deals.c.id))
    found: dict[int, tuple[datetime, int]] = {}
    first: dict[int, datetime] = {}
    state: dict[int, int | None] = {}
    for lead_id, opened_at, closed_at, outcome in connection.execute(query):
        first.setdefault(lead_id, opened_at)
        if state.get(lead_id) == 1:
            continue
        if outcome in POSITIVE_OUTCOMES:
            state[lead_id] = 1
        elif closed_at is not None and outcome in NEGATIVE_OUTCOMES:
            state[lead_id] = 0
        else:
            state[lead_id] = None  # open, or handed back: not known yet
    for lead_id, label in state.items():
        if label is not None and (since is None or first[lead_id] >= since):
            found[lead_id] = (first[lead_id], label)
    return found


def _chunks(values: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def events_of(connection: Connection, lead_ids: Sequence[int]) -> dict[int, list[Event]]:
    """The leads' events in time order."""
    query = (select(events.c.lead_id, events.c.message_id, events.c.type, events.c.name, events.c.timestamp,
                    events.c.properties, events.c.traits, events.c.touch)
             .where(events.c.lead_id.in_(lead_ids)).order_by(events.c.lead_id, events.c.timestamp, events.c.id))
    found: dict[int, list[Event]] = {lead_id: [] for lead_id in lead_ids}
    for row in connection.execute(query):
        found[row.lead_id].append(Event(message_id=row.message_id, type=row.type, name=row.name,
                                        timestamp=row.timestamp, properties=row.properties or {},
                                        traits=row.traits or {}, touch=row.touch))
    return found


def starts_of(connection: Connection, lead_ids: Sequence[int]) -> dict[int, tuple[str, datetime]]:
    return {row.id: (row.email, row.created_at) for row in connection.execute(
        select(leads.c.id, leads.c.email, leads.c.created_at).where(leads.c.id.in_(lead_ids)))}


def as_of(email: str, created_at: datetime, history: Sequence[Event], playbook: Playbook, at: datetime) -> Lead:
    """The lead as it was at `at`, rebuilt from its events."""
    lead = new_lead(email, playbook, created_at)
    return replay(lead, history, playbook, at)


def replayed(engine: Engine, playbook: Playbook, *, since: datetime | None = None,
             progress: Progress | None = None) -> Iterator[tuple[int, datetime, int, Lead, list[Event]]]:
    """Each lead with a known outcome: (id, first hand-off, label, the lead as it was then, its
    events up to then)."""
    with reading(engine) as connection:
        known = labels(connection, since)
        ids = sorted(known)
        done = 0
        for chunk in _chunks(ids):
            starts = starts_of(connection, chunk)
            histories = events_of(connection, chunk)
            for lead_id in chunk:
                at, label = known[lead_id]
                email, created_at = starts[lead_id]
                before = [event for event in histories[lead_id] if event.timestamp <= at]
                yield lead_id, at, label, as_of(email, created_at, before, playbook, at), before
            done += len(chunk)
            if progress:
                progress(done, len(ids))


def samples(engine: Engine, playbook: Playbook, *, since: datetime | None = None,
            progress: Progress | None = None, workers: int | None = None, chunk: int = CHUNK) -> list[Sample]:
    """Each lead with a known outcome, its features as of its first hand-off, in time order.
    Leads are independent: with many, their replays are shared among processes (one per core,
    or `workers`), each doing exactly what one process would."""
    with reading(engine) as connection:
        known = labels(connection, since)
    ids = sorted(known)
    chunks = [[(lead_id, *known[lead_id]) for lead_id in ids[start:start + chunk]]
              for start in range(0, len(ids), chunk)]
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if len(chunks) >= 4 else 1
    found: list[Sample] = []
    for part in forked(_samples_of, engine, (engine, playbook), chunks, min(workers, len(chunks))):
        found.extend(part)
        if progress:
            progress(len(found), len(ids))
    found.sort(key=lambda sample: (sample.at, sample.lead_id))
    return found


def _samples_of(job: tuple[Engine, Playbook], chunk: Sequence[tuple[int, datetime, int]]) -> list[Sample]:
    engine, playbook = job
    with reading(engine) as connection:
        lead_ids = [lead_id for lead_id, _, _ in chunk]
        starts = starts_of(connection, lead_ids)
        histories = events_of(connection, lead_ids)
    found = []
    for lead_id, at, label in chunk:
        email, created_at = starts[lead_id]
        before = [event for event in histories[lead_id] if event.timestamp <= at]
        found.append(Sample(lead_id, at, label, lead_features(as_of(email, created_at, before, playbook, at),
                                                              playbook, at)))
    return found


_FORKED: tuple[Callable[..., Any], Engine, Any] | None = None  # what forked processes inherit (rules do not pickle)


def _forked_start() -> None:
    assert _FORKED is not None
    _FORKED[1].dispose(close=False)  # the parent's pooled connections are not this process's


def _forked_call(part: Any) -> Any:
    assert _FORKED is not None
    function, _, job = _FORKED
    return function(job, part)


def forked(function: Callable[[Any, Any], Any], engine: Engine, job: Any, parts: Sequence[Any], workers: int,
           *, ordered: bool = False) -> Iterator[Any]:
    """`function(job, part)` for each part: here, or (workers > 1) in that many forked processes,
    each holding the job as this process holds it and opening its own connections to `engine`;
    the results as they come (in the parts' order if `ordered`)."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for part in parts:
            yield function(job, part)
        return
    global _FORKED
    _FORKED = (function, engine, job)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_forked_start) as pool:
            yield from (pool.imap if ordered else pool.imap_unordered)(_forked_call, parts)
    finally:
        _FORKED = None


# --- training ---------------------------------------------------------------------------------

@dataclass
class Trained:
    model: StoredModel
    metrics: dict[str, Any]


def validate(rows: Sequence[Mapping[str, float]], y: Sequence[int], share: float = VALIDATION_SHARE) -> dict[str, Any]:
    """Out of time: fit on the older leads, measure on the newer ones (rows are in time order)."""
    split = int(len(rows) * (1 - share))
    if split < 10 or len(rows) - split < 5:
        raise ModelError(f"{len(rows)} leads with a known outcome are too few to train and validate (need 15 or more)")
    fitted = fit(rows[:split], y[:split])
    return {"split": "time", "train_leads": split, **measure(y[split:], fitted.predict(rows[split:]))}


MIN_AUC_IN_USE = 0.55  # below this out of time, a new model is stored but not put in use by itself


def not_worth_using(metrics: Mapping[str, Any]) -> str | None:
    """Why a new model should not replace the one in use at once (None: it may): its out-of-time
    AUC is barely better than chance, or cannot be measured (the newest leads all ended alike)."""
    auc = metrics.get("auc")
    if auc is None:
        return "its validation leads all had the same outcome, so how well it ranks them cannot be measured"
    if auc < MIN_AUC_IN_USE:
        return f"its out-of-time AUC is {auc:.2f}, no better than chance (at least {MIN_AUC_IN_USE} is needed)"
    return None


def train(engine: Engine, playbook: Playbook, now: datetime, *, by: str, since: datetime | None = None,
          activate: bool = True, progress: Progress | None = None) -> Trained:
    """Train, validate out of time and store a new version; it is put in use when `activate` and
    it ranks the newest leads better than chance (`not_worth_using`)."""
    found = samples(engine, playbook, since=since, progress=progress)
    rows = [sample.features for sample in found]
    y = [sample.label for sample in found]
    metrics = validate(rows, y)
    activate = activate and not_worth_using(metrics) is None
    metrics["validated_from"] = found[int(len(found) * (1 - VALIDATION_SHARE))].at.isoformat()
    fitted = fit(rows, y)
    metrics["features"] = len(fitted.vectorizer.feature_names_)
    metrics["means"] = means_of(rows)
    with UnitOfWork(engine) as uow:
        stored = ModelRepository(uow.connection).add(fitted=fitted, rows=len(rows), metrics=metrics, by=by, now=now,
                                                     activate=activate)
        audit.record(uow, actor=by, action="model.train", subject=f"model:{stored.version}", now=now,
                     detail={"leads": len(rows), "auc": metrics.get("auc"), "in_use": stored.active})
        uow.commit()
    return Trained(stored, metrics)


def load_active(engine: Engine) -> tuple[StoredModel, Fitted] | None:
    with reading(engine) as connection:
        repo = ModelRepository(connection)
        stored = repo.get()
        if stored is None:
            return None
        return stored, loads(*repo.artifact(stored.id))


def win_model(stored: StoredModel, fitted: Fitted) -> WinModel:
    metrics = {k: v for k, v in stored.metrics.items() if k != "means"}
    return fitted.to_domain(stored.version, stored.created_at, metrics, stored.metrics.get("means") or {})


def attach(playbook: Playbook, engine: Engine) -> Playbook:
    """The playbook with the model in use, so its rules can read `p_win` (unchanged without one)."""
    try:
        found = load_active(engine)
    except (ModelError, SQLAlchemyError):  # an unreadable model, or a schema not migrated yet: no p_win
        return playbook
    return playbook if found is None else replace(playbook, win_model=win_model(*found))


def models(engine: Engine) -> list[StoredModel]:
    with reading(engine) as connection:
        return ModelRepository(connection).list()


def activate(engine: Engine, version: int, *, by: str, now: datetime) -> StoredModel:
    """Put a model version in use (recorded in the audit log)."""
    with UnitOfWork(engine) as uow:
        found = ModelRepository(uow.connection).activate(version)
        audit.record(uow, actor=by, action="model.use", subject=f"model:{version}", now=now)
        uow.commit()
    return found


# --- scoring ----------------------------------------------------------------------------------

@dataclass
class Scored:
    leads: int = 0
    model_version: int = 0
    by_band: dict[str, int] = field(default_factory=dict)


def score_all(engine: Engine, playbook: Playbook, now: datetime, *, progress: Progress | None = None,
              store: bool = True, workers: int | None = None, batch: int = SCORE_BATCH) -> Scored:
    """Score every lead (merged ones aside) as of `now` with the model in use; keep each p_win
    and its top reasons in `lead_scores`.

    Leads are scored in batches (one sparse matrix each: every p_win and every lead's reasons
    at once); with many leads, the batches are shared among processes (one per core, or
    `workers`), and this process writes each batch's scores as it comes back."""
    found = load_active(engine)
    if found is None:
        raise ModelError("no model is in use: run `leadrelay model train` first")
    stored, fitted = found
    job = _ScoreJob(engine, playbook, now, fitted, win_model(stored, fitted).means)
    result = Scored(model_version=stored.version)
    with reading(engine) as connection:
        ids = list(connection.scalars(select(leads.c.id).where(leads.c.merged_into.is_(None)).order_by(leads.c.id)))
    ranges = [(ids[start], ids[min(start + batch, len(ids)) - 1]) for start in range(0, len(ids), batch)]
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if len(ids) >= 2 * batch else 1
    for lead_ids, p, reasons in forked(_score_range, engine, job, ranges, min(workers, len(ranges)), ordered=True):
        for value in p:
            band = min(int(value * 10), 9) * 10
            name = f"{band}-{band + 10}%"
            result.by_band[name] = result.by_band.get(name, 0) + 1
        if store:
            values = [round(value, 4) for value in p]
            with engine.begin() as writer:
                ModelRepository(writer).save_scores(stored.id, zip(lead_ids, values, reasons, strict=True), now)
        result.leads += len(lead_ids)
        if progress:
            progress(result.leads, len(ids))
    return result


@dataclass(frozen=True)
class _ScoreJob:
    engine: Engine
    playbook: Playbook
    now: datetime
    fitted: Fitted
    means: Mapping[str, float]


_SCORED_COLUMNS = (leads.c.id, leads.c.email, leads.c.stage, leads.c.created_at, leads.c.fields, leads.c.fit,
                   leads.c.engagement_as_of, leads.c.engagement_rules, leads.c.first_touch)


def _score_range(job: _ScoreJob, bounds: tuple[int, int]) -> tuple[list[int], list[float], list[list[list[Any]]]]:
    """The leads with ids in [first, last] (merged ones aside): read with just what their features
    read, one range query, then scored together."""
    first, last = bounds
    with reading(job.engine) as connection:
        found = connection.execute(select(*_SCORED_COLUMNS).where(leads.c.id >= first, leads.c.id <= last,
                                                                  leads.c.merged_into.is_(None))
                                   .order_by(leads.c.id)).all()
    batch = [Lead(id=row.id, email=row.email, stage=row.stage, highest_stage=row.stage,
                  stage_entered_at=row.created_at, created_at=row.created_at, fields=row.fields or {},
                  fit=row.fit, first_touch=row.first_touch,
                  engagement=Engagement(row.engagement_as_of, {name: RuleScore(*values) for name, values
                                                               in (row.engagement_rules or {}).items()}))
             for row in found]
    if not batch:
        return [], [], []
    p, reasons = job.fitted.predict_with_reasons([lead_features(lead, job.playbook, job.now) for lead in batch],
                                                 job.means)
    return [row.id for row in found], p.tolist(), reasons


@dataclass
class LeadPrediction:
    p_win: float
    reasons: list[tuple[str, float]]
    model_version: int


def predict_lead(playbook: Playbook, lead: Lead, now: datetime) -> LeadPrediction | None:
    """A lead's p_win now, with its top reasons (None when no model is in use)."""
    model: WinModel | None = playbook.win_model
    if model is None:
        return None
    features = lead_features(lead, playbook, now)
    return LeadPrediction(round(model.probability(features), 4),
                          [(reason.label, reason.effect) for reason in model.reasons(features)], model.version)


# --- evaluating on any CSV --------------------------------------------------------------------

class CsvError(ValueError):
    """A CSV that cannot be evaluated, saying what and where."""


@dataclass
class CsvTable:
    columns: list[str]
    rows: list[list[str]]
    delimiter: str


def read_csv(path: Path, delimiter: str | None = None) -> CsvTable:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CsvError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise CsvError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise CsvError(f"{path}: cannot be read ({error.strerror})") from None
    if not text.strip():
        raise CsvError(f"{path}: the file is empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        columns = [name.strip() for name in next(reader)]
        rows = [row for row in reader if row]
    except csv.Error as error:
        raise CsvError(f"{path}:{reader.line_num}: {error}") from None
    for number, row in enumerate(rows, start=2):
        if len(row) != len(columns):
            raise CsvError(f"{path}:{number}: {len(row)} values, but the header has {len(columns)} columns "
                           f"(delimiter {delimiter!r}; give --delimiter if that is wrong)")
    return CsvTable(columns, rows, delimiter)


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def csv_dataset(table: CsvTable, target: str, positive: str, drop: Sequence[str] = ()) -> tuple[list[dict[str, float]], list[int]]:
    """Rows as features: a column whose values are all numbers is a number (plus, with few distinct
    values, each value as its own category); any other column is a category."""
    if target not in table.columns:
        raise CsvError(f"--target: no column {target!r} (columns: {', '.join(table.columns)})")
    unknown = [name for name in drop if name not in table.columns]
    if unknown:
        raise CsvError(f"--drop: no column(s) {', '.join(map(repr, unknown))} (columns: {', '.join(table.columns)})")
    t = table.columns.index(target)
    values = {row[t].strip() for row in table.rows}
    if positive not in values:
        shown = ", ".join(sorted(values)[:10])
        raise CsvError(f"--positive: column {target!r} never holds {positive!r} (it holds: {shown})")
    if len(values) < 2:
        raise CsvError(f"column {target!r} holds only {positive!r}: nothing to tell apart")
    used = [(i, name) for i, name in enumerate(table.columns) if name != target and name not in drop]
    numeric: dict[int, tuple[float, float]] = {}
    for i, _ in used:
        numbers = [_number(row[i]) for row in table.rows]
        if all(n is not None for n in numbers):
            array = np.asarray(numbers, dtype=float)
            numeric[i] = (float(array.mean()), float(array.std()) or 1.0)
    few = {i for i in numeric if len({row[i] for row in table.rows}) <= 20}
    dataset = []
    for row in table.rows:
        features: dict[str, float] = {}
        for i, name in used:
            value = row[i].strip()
            if i in numeric:
                mean, std = numeric[i]
                features[name] = (float(value) - mean) / std
                if i in few:
                    features[f"{name}={value}"] = 1.0
            else:
                features[f"{name}={value}"] = 1.0
        dataset.append(features)
    return dataset, [1 if row[t].strip() == positive else 0 for row in table.rows]


def evaluate_rows(rows: Sequence[Mapping[str, float]], y: Sequence[int], split: str, folds: int = 5) -> dict[str, Any]:
    """`random`: stratified k-fold (shuffled), each lead scored once by a model that did not see it;
    `time`: rows are in time order, fit on the first 80 %, measure on the last 20 %."""
    if split == "time":
        return validate(rows, y)
    from sklearn.model_selection import StratifiedKFold

    y_array = np.asarray(y)
    if min(int(y_array.sum()), len(y_array) - int(y_array.sum())) < folds:
        raise ModelError(f"a {folds}-fold split needs at least {folds} rows of each outcome")
    p = np.zeros(len(rows))
    aucs = []
    for train_index, test_index in StratifiedKFold(folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y_array):
        fitted = fit([rows[i] for i in train_index], y_array[train_index])
        p[test_index] = fitted.predict([rows[i] for i in test_index])
        aucs.append(measure(y_array[test_index], p[test_index])["auc"])
    metrics = {"split": f"random {folds}-fold", **measure(y_array, p)}
    metrics["auc_folds"] = aucs
    metrics["auc_mean"] = round(float(np.mean(aucs)), 4)
    metrics["auc_std"] = round(float(np.std(aucs)), 4)
    return metrics


def evaluate_csv(path: Path, target: str, positive: str, *, drop: Sequence[str] = (), split: str = "random",
                 delimiter: str | None = None) -> dict[str, Any]:
    table = read_csv(path, delimiter)
    rows, y = csv_dataset(table, target, positive, drop)
    metrics = evaluate_rows(rows, y, split)
    metrics["delimiter"] = table.delimiter
    metrics["columns_used"] = [c for c in table.columns if c != target and c not in drop]
    return metrics
