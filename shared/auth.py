"""Bearer-token authentication and role checks shared by every service (ARCHITECTURE.md §5).

Tokens are JWTs signed with HS256 under ``CFP_JWT_SECRET``; the claims used are ``sub``
(the actor: a user or a client application), ``roles`` (list of role names) and ``exp``.
Every endpoint declares the roles it admits with :func:`require_roles`; ``admin`` is
admitted everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Final

import jwt
from fastapi import Depends, HTTPException, Request

ROLES: Final = ("intake_client", "agent", "supervisor", "analyst", "auditor", "admin")
ALGORITHM: Final = "HS256"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: ``subject`` (actor id) and its ``roles``."""

    subject: str
    roles: frozenset[str]

    def has_any(self, *roles: str) -> bool:
        """Return True when the caller holds one of ``roles`` (or is ``admin``)."""
        return "admin" in self.roles or bool(self.roles.intersection(roles))


def mint_token(secret: str, *, subject: str, roles: list[str], ttl_seconds: int = 8 * 3600) -> str:
    """Sign a token for ``subject`` with ``roles``, valid for ``ttl_seconds``.

    Raises:
        ValueError: a role outside :data:`ROLES`.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(
            f"unknown role(s): {', '.join(sorted(unknown))}; known: {', '.join(ROLES)}"
        )
    now = int(time.time())
    claims = {"sub": subject, "roles": roles, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Principal:
    """Verify ``token`` and return its principal.

    Raises:
        jwt.InvalidTokenError: bad signature, expired, or malformed.
    """
    claims: dict[str, Any] = jwt.decode(
        token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
    )
    roles = claims.get("roles") or []
    if not isinstance(roles, list):
        raise jwt.InvalidTokenError("roles must be a list")
    return Principal(subject=str(claims["sub"]), roles=frozenset(str(r) for r in roles))


@lru_cache(maxsize=1024)
def _verified(secret: str, token: str) -> tuple[Principal, float]:
    """Verify ``token`` once and return ``(principal, exp)``; ``exp`` in Unix seconds.

    Cached per token string: a client sends the same token for its whole lifetime, so
    the HS256 verification and claim parsing run once per token instead of once per
    request. Failures raise and are not cached.
    """
    principal = decode_token(secret, token)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    return principal, float(exp)


def verify_token_cached(secret: str, token: str) -> Principal:
    """Like :func:`decode_token`, but remembers verified tokens until they expire.

    Raises:
        jwt.InvalidTokenError: bad signature, expired (also once a cached token expires),
            or malformed.
    """
    principal, exp = _verified(secret, token)
    if exp <= time.time():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal:
    """Authenticate the request's bearer token (401 problem when missing or invalid).

    ``async`` so that FastAPI runs it on the event loop, not in its thread pool: the
    work is microseconds once the token is cached, and a thread hop per request costs
    more than that under load.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer token")
    secret = request.app.state.settings.jwt_secret.get_secret_value()
    try:
        principal = verify_token_cached(secret, token.strip())
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        # The decoder's own message can expose internals (codecs, offsets): keep it generic.
        raise _unauthorized("invalid token") from exc
    request.state.principal = principal
    return principal


def require_roles(*roles: str) -> Any:
    """Return a dependency admitting callers with one of ``roles`` (403 problem otherwise)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}")

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(*roles):
            raise HTTPException(
                status_code=403, detail=f"requires one of the roles: {', '.join(roles)}"
            )
        return principal

    dependency.__name__ = "require_" + "_or_".join(roles)
    return Depends(dependency)
