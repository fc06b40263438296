"""What every route needs: the wired application, the writer, and the caller's API key."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadrelay.adapters.api_keys import ApiKey
from leadrelay.bootstrap import App
from leadrelay.services.api_keys import authenticate
from leadrelay.services.tracking import BatchWriter

bearer = HTTPBearer(auto_error=False, description="An admin API key: `Authorization: Bearer KEY`.")


def application(request: Request) -> App:
    return request.app.state.leadrelay  # type: ignore[no-any-return]


def writer(request: Request) -> BatchWriter:
    return request.app.state.writer  # type: ignore[no-any-return]


def key_from_header(authorization: str | None) -> str | None:
    """The key in `Authorization`: `Bearer KEY`, or HTTP Basic with the key as user name."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def admin_key(
    request: Request,
    app: Annotated[App, Depends(application)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ApiKey:
    """The REST API needs an admin key."""
    return authenticate(app.read_uow(), key_from_header(request.headers.get("authorization")), scope="admin")


AppDep = Annotated[App, Depends(application)]
AdminKey = Annotated[ApiKey, Depends(admin_key)]
