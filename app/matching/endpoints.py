import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.core import metrics
from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.matching import service
from app.matching.schemas import MatchList
from app.requests import service as request_service

router = APIRouter(route_class=ContractRoute, tags=["matching"])


@router.get(
    "/v1/compute-requests/{request_id}/matches",
    response_model=MatchList,
    responses=problems(401, 404, 409, 422),
)
async def list_matches(
    request_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    http: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="How many matches (top-k)")] = 10,
) -> MatchList:
    """The offers that can serve this request, best net price after vouchers first."""
    request = await request_service.get_request_for(session, principal, request_id)
    started = time.perf_counter()
    _, matches = await service.find_matches(session, request, limit)
    metrics.observe_match(http.app, time.perf_counter() - started)
    return MatchList(items=matches)
