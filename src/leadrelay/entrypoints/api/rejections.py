"""/api/v1/tracking/rejections: the tracking messages that were refused, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized

router = APIRouter(prefix="/api/v1/tracking", tags=["tracking"], dependencies=[Depends(authorized)])


@router.get("/rejections", response_model=schemas.RejectionPage)
def rejections(
    app: AppDep,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.RejectionPage:
    """Refused tracking messages, newest first: the reason, and the message as it was received."""
    with app.read_uow() as uow:
        found = uow.rejections.page(before=schemas.cursor_id(cursor), limit=limit)
    return schemas.RejectionPage(
        items=[schemas.RejectionOut(id=r.id, received_at=r.received_at, api_key_id=r.api_key_id,  # type: ignore[arg-type]
                                    message_id=r.message_id, reason=r.reason, message=r.message) for r in found],
        next_cursor=schemas.encode_cursor(found[-1].id) if len(found) == limit else None,
    )
