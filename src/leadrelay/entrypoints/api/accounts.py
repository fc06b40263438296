"""/api/v1/accounts: the companies leads belong to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from leadrelay.domain.errors import AccountNotFound
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"], dependencies=[Depends(authorized)])


@router.get("", response_model=schemas.AccountPage)
def list_accounts(
    app: AppDep,
    domain: Annotated[schemas.Text | None, Query(description="Only the account of this domain.")] = None,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.AccountPage:
    """Accounts, newest first, each with its number of leads."""
    with app.read_uow() as uow:
        rows = uow.leads.accounts(domain=domain.strip().lower() if domain else None,
                                  before=schemas.cursor_id(cursor), limit=limit)
    return schemas.AccountPage(
        items=[schemas.Account(**row) for row in rows],
        next_cursor=schemas.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
    )


AccountId = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]


@router.get("/{account_id}", response_model=schemas.Account)
def get_account(account_id: AccountId, app: AppDep) -> schemas.Account:
    """One account."""
    with app.read_uow() as uow:
        rows = uow.leads.accounts(account_id=account_id, limit=1)
    if not rows:
        raise AccountNotFound(f"no account with id {account_id}")
    return schemas.Account(**rows[0])


@router.patch("/{account_id}", response_model=schemas.Account)
def change_account(account_id: AccountId, body: schemas.AccountPatch, app: AppDep) -> schemas.Account:
    """Make an account a target (named) account and give it an owner: routing's `account_owner`
    rules then hand its leads to that rep."""
    values = body.model_dump(exclude_unset=True)
    if "owner" in values:
        values["owner"] = (values["owner"] or "").strip().lower() or None
    with app.uow() as uow:
        if not uow.leads.accounts(account_id=account_id, limit=1):
            raise AccountNotFound(f"no account with id {account_id}")
        uow.leads.update_account(account_id, values)
        uow.commit()
    return get_account(account_id, app)
