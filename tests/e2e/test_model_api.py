"""The predictive score over HTTP (SQLite and PostgreSQL): a server started after a model was
trained lists its versions and gives a lead's p_win with its reasons; admins only."""

from __future__ import annotations

import httpx
from integration.prediction_history import PAIRS, closed_loop
from integration.report_histories import NOW, History
from sqlalchemy import Engine, select

from leadrelay.adapters import tables
from leadrelay.domain.playbook import Playbook
from leadrelay.services import prediction

from .server import running_server


def test_models_and_a_leads_p_win_over_the_api(engine: Engine, playbook: Playbook) -> None:
    closed_loop(History(engine, playbook))
    prediction.train(engine, playbook, NOW, by="test")
    with engine.connect() as connection:
        lead_id = connection.scalar(select(tables.leads.c.id).where(tables.leads.c.email == "open@new.example"))
    with running_server(engine, playbook) as server, server.admin() as api:
        models = api.get("/api/v1/models")
        assert models.status_code == 200, models.text
        [model] = models.json()
        assert (model["version"], model["active"], model["rows"]) == (1, True, 2 * PAIRS)
        assert model["metrics"]["split"] == "time" and "calibration" in model["metrics"]

        found = api.get(f"/api/v1/leads/{lead_id}/prediction")
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["lead_id"] == lead_id and body["model_version"] == 1 and 0 <= body["p_win"] <= 1
        assert body["reasons"] and all(set(reason) == {"label", "effect"} for reason in body["reasons"])

        missing = api.get("/api/v1/leads/999999/prediction")
        assert missing.status_code == 404 and missing.json()["code"] == "lead_not_found"
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            assert anonymous.get("/api/v1/models").status_code == 401
