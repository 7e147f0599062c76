from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problems
from app.core.etag import IdempotencyKey, set_location
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.models import ComputeRequest
from app.requests import service
from app.requests.schemas import ComputeRequestCreate, ComputeRequestOut, RequestStatus

router = APIRouter(route_class=ContractRoute, tags=["compute-requests"])


async def get_request_or_404(
    request_id: str, session: SessionDep, principal: CurrentPrincipal
) -> ComputeRequest:
    return await service.get_request_for(session, principal, request_id)


RequestDep = Annotated[ComputeRequest, Depends(get_request_or_404)]


@router.post(
    "/v1/compute-requests",
    response_model=ComputeRequestOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
async def create_compute_request(
    payload: ComputeRequestCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ComputeRequest:
    """Post what your enterprise wants; the operator names `enterprise_id`."""
    created = await service.create_request(
        session, principal, payload, settings.max_open_requests_per_enterprise
    )
    set_location(response, f"/v1/compute-requests/{created.id}")
    return created


@router.get(
    "/v1/compute-requests",
    response_model=Page[ComputeRequestOut],
    responses=problems(401, 403, 422),
)
async def list_compute_requests(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    enterprise_id: Annotated[str | None, Query(max_length=40)] = None,
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
) -> Page[ComputeRequestOut]:
    """List compute requests: your enterprise's own, or all for the operator."""
    stmt = service.list_statement(principal, enterprise_id, status_)
    rows, cursor = await paginate(session, stmt, ComputeRequest.id, page)
    return Page(items=[ComputeRequestOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/v1/compute-requests/{request_id}",
    response_model=ComputeRequestOut,
    responses=problems(401, 404),
)
async def get_compute_request(request: RequestDep) -> ComputeRequest:
    """Read one of your enterprise's compute requests."""
    return request


@router.delete(
    "/v1/compute-requests/{request_id}",
    response_model=ComputeRequestOut,
    responses=problems(401, 404, 409),
)
async def cancel_compute_request(
    request: RequestDep, session: SessionDep, principal: CurrentPrincipal
) -> ComputeRequest:
    """Cancel a compute request (cancelling one already cancelled: 409)."""
    return await service.cancel_request(session, principal, request)
