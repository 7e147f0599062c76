from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.bids import service
from app.bids.schemas import BidCreate, BidOut, OpenRequestOut
from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.etag import IdempotencyKey, set_location
from app.core.pagination import Page, PageParams, encode_cursor
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.models import Bid, ComputeRequest
from app.requests.schemas import DomesticPreference
from app.subsidies.schemas import Purpose

router = APIRouter(route_class=ContractRoute, tags=["bids"])


@router.get(
    "/v1/open-requests", response_model=Page[OpenRequestOut], responses=problems(401, 403, 422)
)
async def list_open_requests(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    accelerator_id: Annotated[str | None, Query(max_length=64)] = None,
    domestic: Annotated[DomesticPreference | None, Query()] = None,
    purpose: Annotated[Purpose | None, Query()] = None,
) -> Page[OpenRequestOut]:
    """Open compute requests a provider may answer, without the enterprise's identity."""
    stmt = await service.open_requests_statement(
        session,
        principal,
        accelerator_id,
        None if domestic is None else domestic.value,
        None if purpose is None else purpose.value,
    )
    after = page.after()
    if after is not None:
        stmt = stmt.where(ComputeRequest.id > after)
    rows = (await session.execute(stmt.order_by(ComputeRequest.id).limit(page.limit + 1))).all()
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor(rows[-1][0].id)
    items = [
        OpenRequestOut.model_validate(
            {
                **{
                    name: getattr(request, name)
                    for name in OpenRequestOut.model_fields
                    if name != "district"
                },
                "district": region_code[:6],
            }
        )
        for request, region_code in rows
    ]
    return Page(items=items, next_cursor=cursor)


@router.post(
    "/v1/compute-requests/{request_id}/bids",
    response_model=BidOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def place_bid(
    request_id: str,
    payload: BidCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Bid:
    """Bid on an open request with one of your offers; a new bid on that offer replaces
    the last. 409 `reason`: bids_closed, not_accepting_bids, capacity, above_list_price."""
    bid = await service.place_bid(session, principal, request_id, payload)
    set_location(response, f"/v1/bids/{bid.id}")
    return bid


@router.get(
    "/v1/compute-requests/{request_id}/bids",
    response_model=Page[BidOut],
    responses=problems(401, 403, 404, 422),
)
async def list_bids(
    request_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
) -> Page[BidOut]:
    """The request's live bids: all for its enterprise, a provider's own for a provider."""
    stmt = await service.bids_statement(session, principal, request_id)
    after = page.after()
    if after is not None:
        stmt = stmt.where(Bid.id > after)
    rows = list((await session.scalars(stmt.order_by(Bid.id).limit(page.limit + 1))).all())
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor(rows[-1].id)
    return Page(items=[BidOut.model_validate(b) for b in rows], next_cursor=cursor)


@router.get("/v1/bids/{bid_id}", response_model=BidOut, responses=problems(401, 404))
async def get_bid(bid_id: str, session: SessionDep, principal: CurrentPrincipal) -> Bid:
    """Read a bid: its provider's, or one on your enterprise's request."""
    return await service.get_bid_for(session, principal, bid_id)


@router.delete("/v1/bids/{bid_id}", response_model=BidOut, responses=problems(401, 404, 409))
async def withdraw_bid(bid_id: str, session: SessionDep, principal: CurrentPrincipal) -> Bid:
    """Withdraw your bid."""
    return await service.withdraw_bid(session, principal, bid_id)
