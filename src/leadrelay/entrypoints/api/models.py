"""/api/v1/models and /api/v1/leads/{id}/prediction: the predictive score's versions with their
validation figures, and one lead's p_win now with its top reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import NotFound
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized
from leadrelay.services import leads as lead_service
from leadrelay.services import prediction

router = APIRouter(prefix="/api/v1", tags=["predictive scoring"], dependencies=[Depends(authorized)])


class ModelOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    active: bool
    rows: int
    metrics: dict[str, Any]  # out-of-time validation: auc, pr_auc, top_decile_lift, calibration, ...


class Reason(BaseModel):
    label: str
    effect: float  # on the log-odds: positive raises p_win


class PredictionOut(BaseModel):
    lead_id: int
    p_win: float
    model_version: int
    reasons: list[Reason]


@router.get("/models", response_model=list[ModelOut])
def list_models(app: AppDep) -> list[ModelOut]:
    """Every trained version of the predictive score, newest first, with its validation figures."""
    return [ModelOut(version=m.version, created_at=m.created_at, created_by=m.created_by, active=m.active,
                     rows=m.rows, metrics={k: v for k, v in m.metrics.items() if k != "means"})
            for m in prediction.models(app.engine)]


@router.get("/leads/{lead_id}/prediction", response_model=PredictionOut)
def lead_prediction(lead_id: Annotated[int, Path(ge=1, le=schemas.MAX_ID)], app: AppDep) -> PredictionOut:
    """The lead's p_win as of now (the model in use), with the features that move it most."""
    now = utc_now()
    lead = lead_service.view_lead(app.read_uow(), app.playbook, lead_id, now).lead
    found = prediction.predict_lead(app.playbook, lead, now)
    if found is None:
        raise NotFound("no predictive model is in use: train one with `leadrelay model train`")
    return PredictionOut(lead_id=lead.id or lead_id, p_win=found.p_win, model_version=found.model_version,
                         reasons=[Reason(label=label, effect=effect) for label, effect in found.reasons])
