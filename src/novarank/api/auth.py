"""Who may call what: every route names its scope, and `authorize` checks the bearer key.

With auth on (the default) a request needs a key with the route's scope: no or unknown key
is 401, a key without the scope 403. Development mode (`NOVARANK_AUTH=off`, `serve --open`)
opens every scope but `admin`, which still needs the admin token or an admin key.
Health, readiness, metrics and the OpenAPI document stay open: they carry no personal data
and probes and scrapers have no key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from novarank.errors import AuthError, ForbiddenError
from novarank.keys import Keyring, Principal

# registers the scheme in /openapi.json; the check itself is `authorize` (auto_error off, so
# a missing key is our 401 in our shape rather than the framework's 403)
BEARER = HTTPBearer(auto_error=False, description="an API key (`novarank keys issue`) or "
                                                  "the admin token")
SECURITY = [{"HTTPBearer": []}]
AUDITED = frozenset({"admin", "privacy"})  # for routes that read their headers by hand (the feed)


def bearer(keyring: Keyring, header: str) -> Principal | None:
    """The principal of an `Authorization: Bearer <key>` header, or None."""
    scheme, _, key = header.partition(" ")
    return keyring.lookup(key.strip()) if scheme.lower() == "bearer" else None


def authorize(request: Request, scope: str) -> Principal | None:
    """The caller's principal, or None in development mode for a non-admin scope."""
    if scope in AUDITED:
        request.state.audit = scope  # api/audit.py records the answer, refusals included
    state = request.app.state
    keyring: Keyring = state.keyring
    if not state.auth_on and scope != "admin":
        return None
    if not keyring.configured:
        raise ForbiddenError("admin API is disabled: set NOVARANK_ADMIN_TOKEN or issue an "
                             "admin key" if scope == "admin" else
                             "no API keys are configured on this replica")
    header = request.headers.get("authorization")
    if not header:
        raise AuthError(f"this route needs an API key with the '{scope}' scope "
                        "(Authorization: Bearer <key>)")
    principal = bearer(keyring, header)
    if principal is None:
        raise AuthError("unknown, revoked or malformed API key")
    request.state.principal = principal  # the audit names who was refused, too
    if not principal.may(scope):
        raise ForbiddenError(f"key {principal.key_id} lacks the '{scope}' scope "
                             f"(it has {', '.join(sorted(principal.scopes))})")
    return principal


def needs(scope: str) -> Any:
    """A route dependency: `dependencies=[needs("catalog")]`."""

    async def check(request: Request,
                    _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None
                    ) -> None:
        authorize(request, scope)

    return Depends(check)


READ, EVENTS, CATALOG, PRIVACY, ADMIN = (needs(s) for s in
                                         ("read", "events", "catalog", "privacy", "admin"))
