"""Authentication of requests: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, and scope checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .keys import Principal, scope_allows, verify_key
from .problems import ApiProblem

__all__ = ["require"]

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer twk_<id>.<secret>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key in the X-API-Key header")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="berkane-twin"'}


def require(scope: str) -> Callable[..., Principal]:
    """A dependency: the request's principal, which must hold ``scope`` (401 without a valid key, 403 without
    the scope)."""

    def dependency(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                   header: Annotated[str | None, Depends(_header)]) -> Principal:
        key = bearer.credentials if bearer is not None else header
        if not key:
            raise ApiProblem(401, "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                             headers=_CHALLENGE)
        principal, reason = verify_key(request.app.state.store, key)
        if principal is None:
            raise ApiProblem(401, reason, headers=_CHALLENGE)
        request.state.key_id = principal.key_id
        if not scope_allows(principal.scope, scope):
            raise ApiProblem(403, f"this needs a key of scope {scope!r} (key {principal.key_id} has "
                                  f"{principal.scope!r})")
        return principal

    return dependency
