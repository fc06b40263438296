"""Predictive models: fitting with scikit-learn, measuring, storing in the skops format.

A stored model is the fitted scikit-learn objects (a DictVectorizer, a LogisticRegression and an
IsotonicRegression calibrator) in skops' format, never a pickle: loading it checks every type in
the file against a short list of scikit-learn and NumPy types and refuses anything else, and the
bytes' SHA-256 is checked against the one recorded when the model was trained.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, delete, func, insert, select, update

from leadrelay.adapters.tables import lead_scores, models
from leadrelay.domain.prediction import WinModel, describe

if TYPE_CHECKING:  # scikit-learn and skops are imported when a model is fitted or loaded, not before
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

KIND = "win"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.")


class ModelError(ValueError):
    """A model that cannot be trained, loaded or used, with the reason."""


# --- fitting ----------------------------------------------------------------------------------

@dataclass
class Fitted:
    vectorizer: DictVectorizer
    classifier: LogisticRegression
    calibrator: IsotonicRegression

    def raw(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        return self.classifier.decision_function(_int32(self.vectorizer.transform(rows)))

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.clip(self.calibrator.predict(self.raw(rows)), 0.0, 1.0)

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> Any:
        """What `vectorizer.transform` gives for rows of numbers (features unknown to the model
        left out), built straight from its vocabulary."""
        from scipy.sparse import csr_matrix

        vocabulary = self.vectorizer.vocabulary_
        indices: list[int] = []
        data: list[float] = []
        indptr = [0]
        for row in rows:
            for name, value in row.items():
                j = vocabulary.get(name)
                if j is not None:
                    indices.append(j)
                    data.append(value)
            indptr.append(len(indices))
        matrix = csr_matrix((np.asarray(data, dtype=float), np.asarray(indices, dtype=np.int32),
                             np.asarray(indptr, dtype=np.int32)), shape=(len(rows), len(vocabulary)))
        matrix.sort_indices()  # as the vectorizer's: the same sums, added in the same order
        return matrix

    def predict_with_reasons(self, rows: Sequence[Mapping[str, float]], means: Mapping[str, float],
                             limit: int = 3) -> tuple[np.ndarray, list[list[list[Any]]]]:
        """p_win for many leads at once, with each lead's top reasons — the same numbers, in the
        same order, as `WinModel.probability` and `WinModel.reasons` give one lead at a time
        (effect = weight × (value − training mean), largest first, ties by feature name), from
        one sparse matrix instead of a loop over every feature of every lead."""
        x = self._matrix(rows)
        p = np.clip(self.calibrator.predict(self.classifier.decision_function(x)), 0.0, 1.0)
        names = self.vectorizer.feature_names_
        coef = np.asarray(self.classifier.coef_[0], dtype=float)
        mean = np.array([means.get(name, 0.0) for name in names], dtype=float)
        row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        column = x.indices.astype(np.int64)
        effect = coef[column] * (x.data - mean[column])
        keep = (coef[column] != 0) & (np.abs(effect) > 1e-6)
        row, column, effect = row[keep], column[keep], effect[keep]
        # names are sorted (DictVectorizer), so the column index orders ties as the names do
        order = np.lexsort((-column, -np.abs(effect), row))
        row, column, effect = row[order], column[order], effect[order]
        first = np.searchsorted(row, row, side="left")
        top = (np.arange(len(row)) - first) < limit
        reasons: list[list[list[Any]]] = [[] for _ in range(x.shape[0])]
        labels = [describe(name) for name in names]
        for r, c, e in zip(row[top].tolist(), column[top].tolist(), effect[top].tolist(), strict=True):
            reasons[r].append([labels[c], round(e, 3)])
        return p, reasons

    def to_domain(self, version: int, trained_at: datetime | None, metrics: Mapping[str, Any],
                  means: Mapping[str, float]) -> WinModel:
        names = self.vectorizer.feature_names_
        coef = self.classifier.coef_[0]
        return WinModel(
            version=version,
            weights={name: float(w) for name, w in zip(names, coef, strict=True) if w},
            intercept=float(self.classifier.intercept_[0]),
            means=dict(means),
            curve_x=tuple(float(x) for x in self.calibrator.X_thresholds_),
            curve_y=tuple(float(y) for y in self.calibrator.y_thresholds_),
            trained_at=trained_at,
            metrics=metrics,
        )


NEWTON_MAX_FEATURES = 2000  # Newton's method builds a features × features matrix: beyond this, L-BFGS


def _classifier(features: int) -> LogisticRegression:
    """A logistic regression (L2, C=0.5). Newton-Cholesky reaches the same optimum as L-BFGS in a
    handful of steps where there are many more leads than features (the usual case)."""
    from sklearn.linear_model import LogisticRegression

    solver = "newton-cholesky" if features <= NEWTON_MAX_FEATURES else "lbfgs"
    return LogisticRegression(C=0.5, max_iter=500, solver=solver)


def _int32(x: Any) -> Any:
    """The sparse matrix with 32-bit indices, as Newton-Cholesky requires."""
    x = x.tocsr()
    if x.nnz < 2**31 and x.shape[1] < 2**31:
        x.indices = x.indices.astype(np.int32, copy=False)
        x.indptr = x.indptr.astype(np.int32, copy=False)
    return x


def fit(rows: Sequence[Mapping[str, float]], labels: Sequence[int]) -> Fitted:
    """A weighted sum of the features, calibrated: the calibration curve is fitted on scores the
    classifier gave to leads it had not seen (3-fold), so p_win means what it says."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(labels, dtype=np.int8)
    _check_labels(y)
    vectorizer = DictVectorizer(sparse=True)
    x = _int32(vectorizer.fit_transform(rows))
    folds = min(3, int(min(y.sum(), len(y) - y.sum())))
    classifier = _classifier(x.shape[1])
    if folds >= 2:
        raw = cross_val_predict(classifier, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                                method="decision_function")
    else:  # too few of one class for folds: calibrate on the training scores
        raw = classifier.fit(x, y).decision_function(x)
    classifier = _classifier(x.shape[1]).fit(x, y)
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return Fitted(vectorizer, classifier, calibrator)


def _check_labels(y: np.ndarray) -> None:
    positives = int(y.sum())
    if len(y) < 10 or positives == 0 or positives == len(y):
        raise ModelError(f"training needs leads of both outcomes: {len(y)} lead(s), {positives} won "
                         "(at least 10 leads, some won and some not)")


def means_of(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in rows:
        for name, value in row.items():
            totals[name] = totals.get(name, 0.0) + value
    count = max(len(rows), 1)
    return {name: total / count for name, total in totals.items()}


# --- measuring --------------------------------------------------------------------------------

def measure(y_true: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10) -> dict[str, Any]:
    """AUC, PR-AUC, lift in the top decile, and a calibration table (predicted vs observed by
    decile of p)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p, dtype=float)
    base = float(y.mean()) if len(y) else 0.0
    both = 0 < y.sum() < len(y)
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, math.ceil(len(y) / 10))]
    table = []
    for chunk in np.array_split(np.argsort(p, kind="stable"), min(bins, len(y)) or 1):
        if len(chunk):
            table.append({"leads": len(chunk), "predicted": round(float(p[chunk].mean()), 4),
                          "observed": round(float(y[chunk].mean()), 4)})
    return {
        "leads": len(y),
        "positives": int(y.sum()),
        "base_rate": round(base, 4),
        "auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "pr_auc": round(float(average_precision_score(y, p)), 4) if both else None,
        "top_decile_lift": round(float(y[top].mean()) / base, 3) if base else None,
        "calibration": table,
    }


# --- storing ----------------------------------------------------------------------------------

def dumps(fitted: Fitted) -> bytes:
    from skops import io as skops_io

    return skops_io.dumps({"vectorizer": fitted.vectorizer, "classifier": fitted.classifier,
                           "calibrator": fitted.calibrator})


def loads(data: bytes, sha256: str | None = None) -> Fitted:
    """Read a stored model; refuse one whose bytes changed or that names an unexpected type."""
    from skops import io as skops_io

    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError("the stored model does not match its recorded SHA-256: it was changed; train again")
    try:
        untrusted = skops_io.get_untrusted_types(data=data)
    except Exception as error:  # noqa: BLE001 - any malformed file
        raise ModelError(f"the stored model cannot be read: {error}") from None
    unexpected = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
    if unexpected:
        raise ModelError(f"the stored model names types LeadRelay does not load: {', '.join(unexpected)}")
    parts = skops_io.loads(data, trusted=untrusted)
    if not isinstance(parts, dict) or set(parts) != {"vectorizer", "classifier", "calibrator"}:
        raise ModelError("the stored model is not a LeadRelay win model")
    return Fitted(parts["vectorizer"], parts["classifier"], parts["calibrator"])


@dataclass
class StoredModel:
    id: int
    kind: str
    version: int
    created_at: datetime
    created_by: str
    active: bool
    rows: int
    metrics: dict[str, Any]
    sha256: str


_SUMMARY = (models.c.id, models.c.kind, models.c.version, models.c.created_at, models.c.created_by,
            models.c.active, models.c.rows, models.c.metrics, models.c.sha256)


def _bind(column: Any, dialect: Any) -> Any:
    """The conversion SQLAlchemy applies to a value bound to `column` on this database."""
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda value: value)


class ModelRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, *, fitted: Fitted, rows: int, metrics: Mapping[str, Any], by: str, now: datetime,
            activate: bool = True) -> StoredModel:
        data = dumps(fitted)
        version = (self.connection.execute(
            select(func.max(models.c.version)).where(models.c.kind == KIND)).scalar() or 0) + 1
        if activate:
            self.connection.execute(update(models).where(models.c.kind == KIND, models.c.active).values(active=False))
        model_id = self.connection.execute(insert(models).values(
            kind=KIND, version=version, created_at=now, created_by=by, active=activate, rows=rows,
            metrics=dict(metrics), artifact=data, sha256=hashlib.sha256(data).hexdigest(),
        ).returning(models.c.id)).scalar_one()
        found = self.get(version=version)
        assert found is not None and found.id == model_id
        return found

    def list(self) -> list[StoredModel]:
        rows = self.connection.execute(select(*_SUMMARY).where(models.c.kind == KIND)
                                       .order_by(models.c.version.desc())).all()
        return [StoredModel(**row._mapping) for row in rows]

    def get(self, *, version: int | None = None) -> StoredModel | None:
        """A version, or (no version) the model in use."""
        query = select(*_SUMMARY).where(models.c.kind == KIND)
        query = query.where(models.c.active) if version is None else query.where(models.c.version == version)
        row = self.connection.execute(query).first()
        return None if row is None else StoredModel(**row._mapping)

    def artifact(self, model_id: int) -> tuple[bytes, str]:
        row = self.connection.execute(select(models.c.artifact, models.c.sha256).where(models.c.id == model_id)).one()
        return bytes(row.artifact), row.sha256

    def activate(self, version: int) -> StoredModel:
        found = self.get(version=version)
        if found is None:
            raise ModelError(f"there is no model version {version}")
        self.connection.execute(update(models).where(models.c.kind == KIND, models.c.active).values(active=False))
        self.connection.execute(update(models).where(models.c.id == found.id).values(active=True))
        found.active = True
        return found

    def save_scores(self, model_id: int, scores: Iterable[tuple[int, float, list[list[Any]]]], now: datetime) -> int:
        """Replace the stored p_win of these leads."""
        dialect = self.connection.dialect
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if mark is None:  # a driver with another parameter style: the general path
            rows = [{"lead_id": lead_id, "model_id": model_id, "p_win": p, "reasons": reasons, "scored_at": now}
                    for lead_id, p, reasons in scores]
            for start in range(0, len(rows), 5000):
                chunk = rows[start:start + 5000]
                self.connection.execute(delete(lead_scores).where(
                    lead_scores.c.lead_id.in_([r["lead_id"] for r in chunk])))
                self.connection.execute(insert(lead_scores), chunk)
            return len(rows)
        # the columns' own conversions (JSON, UTC timestamps), then one driver-level executemany
        to_json = _bind(lead_scores.c.reasons, dialect)
        at = _bind(lead_scores.c.scored_at, dialect)(now)
        values = [(lead_id, model_id, p, to_json(reasons), at) for lead_id, p, reasons in scores]
        statement = (f"INSERT INTO {lead_scores.name} (lead_id, model_id, p_win, reasons, scored_at) "
                     f"VALUES ({', '.join([mark] * 5)})")
        for start in range(0, len(values), 5000):
            chunk = values[start:start + 5000]
            self.connection.execute(delete(lead_scores).where(lead_scores.c.lead_id.in_([v[0] for v in chunk])))
            self.connection.exec_driver_sql(statement, chunk)
        return len(values)

    def score_of(self, lead_id: int) -> dict[str, Any] | None:
        row = self.connection.execute(
            select(lead_scores.c.p_win, lead_scores.c.reasons, lead_scores.c.scored_at, models.c.version)
            .join(models, models.c.id == lead_scores.c.model_id).where(lead_scores.c.lead_id == lead_id)).first()
        return None if row is None else dict(row._mapping)
