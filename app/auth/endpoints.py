from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from app.auth import service
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, Role
from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.etag import IdempotencyKey, set_location
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import OperatorPrincipal
from app.models import ApiKey

router = APIRouter(route_class=ContractRoute, prefix="/v1/api-keys", tags=["api-keys"])


@router.get("", response_model=Page[ApiKeyOut], responses=problems(401, 403, 422))
async def list_api_keys(
    session: SessionDep,
    principal: OperatorPrincipal,
    page: Annotated[PageParams, Depends()],
    role: Annotated[Role | None, Query()] = None,
) -> Page[ApiKeyOut]:
    """List API keys (never their secrets)."""
    stmt = select(ApiKey)
    if role is not None:
        stmt = stmt.where(ApiKey.role == role.value)
    rows, cursor = await paginate(session, stmt, ApiKey.id, page)
    return Page(items=[ApiKeyOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 422),
)
async def create_api_key(
    payload: ApiKeyCreate,
    session: SessionDep,
    principal: OperatorPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ApiKeyCreated:
    """Create an API key for the operator, a provider or an enterprise; the secret is shown once."""
    key, secret = await service.create_key(session, principal, payload)
    set_location(response, f"/v1/api-keys/{key.id}")  # where it is revoked
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "key": secret}
    )


@router.delete("/{key_id}", response_model=ApiKeyOut, responses=problems(401, 403, 404, 409))
async def revoke_api_key(key_id: str, session: SessionDep, principal: OperatorPrincipal) -> ApiKey:
    """Revoke an API key; it is refused (401) from the next request on."""
    return await service.revoke_key(session, principal, key_id)
