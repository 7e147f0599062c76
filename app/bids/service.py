"""Bids: providers' own prices for open compute requests (a reverse auction)."""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.bids.schemas import BidCreate, BidStatus
from app.core import audit
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.money import format_money
from app.core.security import Principal
from app.core.timeutil import utcnow
from app.matching import service as matching
from app.models import Bid, ComputeRequest, Enterprise, Offer, Provider
from app.requests import service as request_service


async def _listed_provider(session: AsyncSession, principal: Principal) -> str | None:
    """The provider id of a listed provider's key; None for the operator; else 403."""
    if principal.is_operator:
        return None
    if principal.role != "provider" or principal.provider_id is None:
        raise Forbidden("open requests and bids are for listed providers and the operator")
    status = await session.scalar(
        select(Provider.status).where(Provider.id == principal.provider_id)
    )
    if status != "listed":
        raise Forbidden(f"provider {principal.provider_id} is {status}: only listed ones bid")
    return principal.provider_id


async def open_requests_statement(
    session: AsyncSession,
    principal: Principal,
    accelerator_id: str | None,
    domestic: str | None,
    purpose: str | None,
) -> Select[ComputeRequest, str]:
    """Open, unexpired requests with their enterprise's district, never its identity."""
    await _listed_provider(session, principal)
    stmt = (
        select(ComputeRequest, Enterprise.region_code)
        .join(Enterprise, Enterprise.id == ComputeRequest.enterprise_id)
        .where(ComputeRequest.status == "open", ComputeRequest.latest_start >= utcnow())
    )
    if accelerator_id:
        # Requests naming no model accept any; the ids are slugs, so a quoted id found
        # in the JSON text is one of its items (the same on both databases).
        ids = cast(ComputeRequest.accelerator_ids, String)
        stmt = stmt.where(or_(ids == "[]", ids.contains(f'"{accelerator_id}"')))
    if domestic:
        stmt = stmt.where(ComputeRequest.domestic == domestic)
    if purpose:
        stmt = stmt.where(ComputeRequest.purpose == purpose)
    return stmt


def _live(now: datetime) -> Any:
    return (Bid.status == BidStatus.live.value) & (Bid.valid_until > now)


async def _request_for_bidding(session: AsyncSession, request_id: str) -> ComputeRequest:
    request = await session.get(ComputeRequest, request_id)
    if request is None:
        raise NotFound(f"compute request {request_id} does not exist")
    return request


async def place_bid(
    session: AsyncSession, principal: Principal, request_id: str, payload: BidCreate
) -> Bid:
    if principal.role == "enterprise":
        raise Forbidden("enterprises do not bid; providers answer their requests")
    if principal.is_operator:
        raise Forbidden("bids are placed by a provider's own key")
    provider_id = await _listed_provider(session, principal)
    request = await _request_for_bidding(session, request_id)
    now = utcnow()
    if payload.valid_until <= now:
        raise Unprocessable.field(["body", "valid_until"], "valid_until must be in the future")
    # The offer locked: bids on it (and orders) take turns, so one live bid per offer
    # and request holds without a lost update.
    offer = await session.scalar(
        select(Offer).where(Offer.id == payload.offer_id).with_for_update()
    )
    if offer is None or offer.provider_id != provider_id:
        raise NotFound(f"offer {payload.offer_id} does not exist")
    if not request.accept_bids:
        raise Conflict(
            f"compute request {request.id} does not accept bids", reason="not_accepting_bids"
        )
    closes = request.bids_close_at or request.latest_start
    if request.status != "open" or closes <= now:
        raise Conflict(
            f"bidding on compute request {request.id} closed at {closes.isoformat()}"
            if request.status == "open"
            else f"compute request {request.id} is {request.status}",
            reason="bids_closed",
        )
    if payload.price_per_card_hour > offer.price_per_card_hour:
        raise Conflict(
            f"a bid is at most the offer's list price {format_money(offer.price_per_card_hour)}",
            reason="above_list_price",
        )
    try:
        await matching.match_for_offers(session, request, [(offer.id, request.cards)])
    except Conflict as exc:
        raise Conflict(
            f"offer {offer.id} cannot serve this request now: {exc.detail}", reason="capacity"
        ) from None
    replaced = await session.execute(
        update(Bid)
        .where(
            Bid.request_id == request.id,
            Bid.offer_id == offer.id,
            Bid.status == BidStatus.live.value,
        )
        .values(status=BidStatus.replaced.value, ended_at=now)
        .returning(Bid.id)
    )
    replaced_ids = list(replaced.scalars())
    bid = Bid(
        id=new_id("bid"),
        request_id=request.id,
        offer_id=offer.id,
        provider_id=offer.provider_id,
        price_per_card_hour=payload.price_per_card_hour,
        valid_until=payload.valid_until,
        status=BidStatus.live.value,
        created_at=now,
    )
    session.add(bid)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("another bid on this offer was placed at the same moment") from None
    await audit.record(
        session,
        principal,
        "bid.placed",
        "bid",
        bid.id,
        after={
            "request_id": request.id,
            "offer_id": offer.id,
            "price_per_card_hour": format_money(bid.price_per_card_hour),
            "valid_until": bid.valid_until.isoformat(),
            "replaces": replaced_ids,
        },
    )
    return bid


async def bids_statement(
    session: AsyncSession, principal: Principal, request_id: str
) -> Select[Bid]:
    """The request's live bids: all for its enterprise and the operator, a provider's own."""
    request = await _request_for_bidding(session, request_id)
    stmt = select(Bid).where(Bid.request_id == request.id, _live(utcnow()))
    if principal.role == "provider":
        await _listed_provider(session, principal)
        return stmt.where(Bid.provider_id == principal.provider_id)
    if not request_service.can_see(principal, request):
        raise NotFound(f"compute request {request_id} does not exist")
    return stmt


async def get_bid_for(session: AsyncSession, principal: Principal, bid_id: str) -> Bid:
    """A bid its provider, its request's enterprise or the operator may read; else 404."""
    bid = await session.get(Bid, bid_id)
    if bid is not None and (principal.is_operator or principal.provider_id == bid.provider_id):
        return bid
    if bid is not None and principal.enterprise_id is not None:
        request = await session.get(ComputeRequest, bid.request_id)
        if request is not None and request.enterprise_id == principal.enterprise_id:
            return bid
    raise NotFound(f"bid {bid_id} does not exist")


async def withdraw_bid(session: AsyncSession, principal: Principal, bid_id: str) -> Bid:
    bid = await session.scalar(select(Bid).where(Bid.id == bid_id).with_for_update())
    if bid is None or not (principal.is_operator or principal.provider_id == bid.provider_id):
        raise NotFound(f"bid {bid_id} does not exist")
    if bid.status != BidStatus.live.value:
        raise Conflict(f"bid {bid_id} is {bid.status}")
    bid.status = BidStatus.withdrawn.value
    bid.ended_at = utcnow()
    await session.flush()
    await audit.record(
        session, principal, "bid.withdrawn", "bid", bid.id, after={"status": bid.status}
    )
    return bid


async def live_bid(session: AsyncSession, request_id: str, bid_id: str) -> Bid:
    """A live bid on this request, for a quote; 409 bid_unavailable otherwise."""
    bid = await session.get(Bid, bid_id)
    if bid is None or bid.request_id != request_id:
        raise NotFound(f"bid {bid_id} does not exist on compute request {request_id}")
    if bid.status != BidStatus.live.value or bid.valid_until <= utcnow():
        raise Conflict(
            f"bid {bid_id} is no longer live ({bid.status}, valid until "
            f"{bid.valid_until.isoformat()})",
            reason="bid_unavailable",
        )
    return bid
