"""The console's sign-in: a signed, expiring session cookie bound to one API key.

The cookie carries the key's id, a random session id and a fingerprint of the key's
hash, signed with the console's secret (itsdangerous); nothing is stored server-side.
Every request reads the key again, so a revoked key's session dies at its next
request. A sign-in always mints a new session id (no fixation: a cookie planted
before the sign-in is replaced, never promoted). CSRF tokens are HMACs of the session
id (or, on the sign-in form, of a random nonce kept in a cookie of its own), so a
form posted from another site, which can read neither, is refused.
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, cast

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import Principal, Role, hash_key
from app.models import ApiKey

log = logging.getLogger("computematch.console")

SESSION_COOKIE = "cm_console"
LOGIN_COOKIE = "cm_console_login"
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 3600
CONSOLE_ROLES = frozenset({"reviewer", "operator"})
BOOTSTRAP = "bootstrap"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_process_secret = secrets.token_bytes(32)


def console_secret(request: Request) -> bytes:
    """The signing secret: COMPUTEMATCH_CONSOLE_SECRET, or one made per process (sessions
    then last as long as the process and need one worker)."""
    configured = request.app.state.settings.console_secret
    if configured is not None:
        return cast(bytes, configured.get_secret_value().encode())
    return _process_secret


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(console_secret(request), salt="computematch.console.session")


def _mac(request: Request, label: str, value: str) -> str:
    return hmac.new(
        console_secret(request), f"{label}:{value}".encode(), hashlib.sha256
    ).hexdigest()


def _fingerprint(request: Request, key_hash: str) -> str:
    return _mac(request, "key", key_hash)[:32]


@dataclass(frozen=True)
class ConsoleUser:
    """Who is signed in: the key's principal, its name, and the programs it may see."""

    principal: Principal
    key_id: str
    name: str | None
    session_id: str
    # None: every program (the operator); otherwise the reviewer's programs.
    program_ids: frozenset[str] | None

    @property
    def role(self) -> str:
        return self.principal.role

    def may_see(self, program_id: str) -> bool:
        return self.program_ids is None or program_id in self.program_ids


def is_loopback(request: Request) -> bool:
    return (request.url.hostname or "") in LOOPBACK


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=not is_loopback(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=not is_loopback(request),
    )


def _reviewer_programs(key: ApiKey) -> frozenset[str]:
    # A reviewer key names its programs (claims.md "Who"); a key without them sees none.
    value: Any = getattr(key, "program_ids", None) or []
    return frozenset(str(p) for p in value)


async def key_for_secret(
    request: Request, session: AsyncSession, secret: str
) -> tuple[str, str, str | None, str | None] | None:
    """(key id, role, name, key hash) of a live key with this secret, or None."""
    operator_key = request.app.state.settings.operator_key
    if operator_key is not None and hmac.compare_digest(
        secret.encode(), operator_key.get_secret_value().encode()
    ):
        return BOOTSTRAP, "operator", None, hash_key(secret)
    digest = hash_key(secret)
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, digest):
        return None
    return key.id, key.role, key.name, key.key_hash


def start_session(request: Request, response: Response, key_id: str, key_hash: str) -> str:
    """Set a new session cookie for the key (always a new session id); return that id."""
    session_id = secrets.token_urlsafe(24)
    value = _serializer(request).dumps(
        {"k": key_id, "s": session_id, "f": _fingerprint(request, key_hash)}
    )
    _cookie(response, request, SESSION_COOKIE, value, SESSION_SECONDS)
    clear_cookie(response, request, LOGIN_COOKIE)
    return session_id


async def current_user(request: Request, session: AsyncSession) -> ConsoleUser | None:
    """The signed-in user of this request, or None (no cookie, a bad or expired one, or
    a key since revoked, changed to another role or no longer the operator key)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request).loads(raw, max_age=SESSION_SECONDS)
    except BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in "ksf"):
        return None
    key_id, session_id, fingerprint = data["k"], data["s"], data["f"]
    if key_id == BOOTSTRAP:
        operator_key = request.app.state.settings.operator_key
        if operator_key is None:
            return None
        digest = hash_key(operator_key.get_secret_value())
        if not hmac.compare_digest(fingerprint, _fingerprint(request, digest)):
            return None  # the operator key has changed since
        return ConsoleUser(
            Principal(role="operator", key_id=BOOTSTRAP), BOOTSTRAP, None, session_id, None
        )
    key = await session.get(ApiKey, key_id)
    if (
        key is None
        or key.revoked_at is not None
        or key.role not in CONSOLE_ROLES
        or not hmac.compare_digest(fingerprint, _fingerprint(request, key.key_hash))
    ):
        return None
    programs = None if key.role == "operator" else _reviewer_programs(key)
    # The principal carries the reviewer's programs: the claims service scopes by them,
    # so without them a reviewer would see and decide no claim at all.
    principal = Principal(
        role=cast(Role, key.role),
        key_id=key.id,
        program_ids=tuple(sorted(programs or ())),
    )
    return ConsoleUser(principal, key.id, key.name, session_id, programs)


# CSRF -------------------------------------------------------------------------------


def csrf_token(request: Request, user: ConsoleUser) -> str:
    return _mac(request, "csrf", user.session_id)


def csrf_ok(request: Request, user: ConsoleUser, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(str(token), csrf_token(request, user))


def login_token(request: Request, response: Response) -> str:
    """The sign-in form's CSRF token, for a nonce kept in a cookie of its own."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(24)
        _cookie(response, request, LOGIN_COOKIE, nonce, LOGIN_SECONDS)
    return _mac(request, "login", nonce)


def login_token_ok(request: Request, token: str | None) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE)
    return (
        bool(nonce and token)
        and len(nonce or "") <= 64
        and hmac.compare_digest(str(token), _mac(request, "login", str(nonce)))
    )


def same_origin(request: Request) -> bool:
    """A POST whose Origin (when the browser sends one) is this site's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # The host only: behind a proxy that ends TLS the scheme seen here may differ.
    _, _, netloc = origin.partition("://")
    return bool(netloc) and netloc == request.url.netloc
