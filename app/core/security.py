"""API keys and the principal a request acts as.

Keys are 256-bit random secrets shown once; only their SHA-256 is stored. A
fast hash is right here: the secret has full entropy, so there is nothing to
brute-force, and every request can look its key up by hash in one indexed read.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from app.core.deps import get_db
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.models import ApiKey

Role = Literal["operator", "provider", "enterprise", "reviewer"]
KEY_PREFIX = "cm_"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    role: Role
    key_id: str | None
    provider_id: str | None = None
    enterprise_id: str | None = None
    # A reviewer's programs: the claims it sees and decides (claims.md "Who").
    program_ids: tuple[str, ...] = ()

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_reviewer(self) -> bool:
        return self.role == "reviewer"

    def reviews(self, program_id: str) -> bool:
        """Whether this key may review the claims of `program_id` (the operator may)."""
        return self.is_operator or (self.is_reviewer and program_id in self.program_ids)

    @property
    def subject_id(self) -> str | None:
        return self.provider_id or self.enterprise_id or self.key_id


# scope["state"][LIVE_KEY]: (the key's hash, its Principal), set by the rate limiter
# where its count found the key live (`app.core.ratelimit`).
LIVE_KEY = "live_key"


def _verified_by_rate_limiter(request: Request, digest: str) -> Principal | None:
    """The principal of a key the rate limiter found live in this request, if any.

    The limiter's count finds the key by its hash, unrevoked, in the statement that
    counts the request, and returns its owner with the count (`app.core.ratelimit`):
    that is the liveness check and the lookup, so the key is not read again.
    """
    live = getattr(request.state, LIVE_KEY, None)
    if live is None or not hmac.compare_digest(live[0], digest):
        return None
    principal: Principal = live[1]
    # The count returns no program ids: a reviewer's key is read whole.
    return None if principal.is_reviewer else principal


bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`", headers=CHALLENGE)
    secret = credentials.credentials
    operator_key = request.app.state.settings.operator_key
    if operator_key is not None and hmac.compare_digest(
        secret.encode(), operator_key.get_secret_value().encode()
    ):
        principal = Principal(role="operator", key_id="bootstrap")
    else:
        principal = await _key_principal(request, hash_key(secret))
    request.state.principal = principal
    if principal.is_reviewer:
        _reviewer_route_or_refuse(request)
    return principal


async def _key_principal(request: Request, digest: str) -> Principal:
    known = _verified_by_rate_limiter(request, digest)
    if known is not None:
        return known
    # Not counted (no rate limit, or its counter unavailable): looked up in a read of
    # its own, so that a route need not open a session for its key alone.
    async with get_db(request).read_sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    # The index finds the row; the final comparison is still constant-time.
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, digest):
        raise Unauthorized("the API key is unknown or revoked", headers=CHALLENGE)
    return Principal(
        role=key.role,  # type: ignore[arg-type]
        key_id=key.id,
        provider_id=key.provider_id,
        enterprise_id=key.enterprise_id,
        program_ids=tuple(key.program_ids or ()),
    )


# What a reviewer key may call (claims.md "Who": its programs' claims, the orders and
# evidence those claims cover, and the programs and catalog everyone reads); every
# other route refuses it here, before the route looks at anything. Each route below
# still checks the reviewer's programs on the object itself.
REVIEWER_ROUTES = frozenset(
    {
        ("GET", "/v1/voucher-claims"),
        ("GET", "/v1/voucher-claims/export"),
        ("GET", "/v1/voucher-claims/{claim_id}"),
        ("GET", "/v1/voucher-claims/{claim_id}/events"),
        ("POST", "/v1/voucher-claims/{claim_id}/review"),
        ("POST", "/v1/voucher-claims/{claim_id}/disbursements"),
        ("GET", "/v1/voucher-claims/{claim_id}/disbursements/{disbursement_id}"),
        ("GET", "/v1/evidence/{evidence_id}"),
        ("GET", "/v1/evidence/{evidence_id}/content"),
        ("GET", "/v1/orders/{order_id}"),
        ("GET", "/v1/subsidy-programs"),
        ("GET", "/v1/subsidy-programs/{program_id}"),
        ("GET", "/v1/subsidy-programs/{program_id}/report"),
        ("GET", "/v1/accelerators"),
        ("GET", "/v1/accelerators/{accelerator_id}"),
    }
)


def _reviewer_route_or_refuse(request: Request) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path_format", None)
    if (request.method, template) in REVIEWER_ROUTES or _operator_only(route):
        return  # an operator-only route refuses every other key (403) itself
    # A read of an object answers as if it did not exist (API1); anything else is a 403.
    if request.method == "GET" and template is not None and "{" in template:
        raise NotFound("not found")
    raise Forbidden("a reviewer key acts on the claims of its programs only")


async def get_optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return await get_principal(request, credentials)


async def require_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_operator:
        raise Forbidden("only the marketplace operator may do this")
    return principal


def _operator_only(route: Any) -> bool:
    def needs(dependant: Any) -> bool:
        return any(d.call is require_operator or needs(d) for d in dependant.dependencies)

    dependant = getattr(route, "dependant", None)
    return dependant is not None and needs(dependant)


# `openapi_extra=` of a route taking OptionalPrincipal: the bearer key may be left out.
KEY_OPTIONAL: dict[str, Any] = {"security": [{}]}

CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]
OperatorPrincipal = Annotated[Principal, Depends(require_operator)]
