from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import StringConstraints

from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Forbidden, NotFound, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag, set_location
from app.core.money import PriceIn
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.models import Offer
from app.offers import service
from app.offers.schemas import (
    OfferCreate,
    OfferOut,
    OfferSearch,
    OfferStatus,
    OfferSync,
    OfferUpdate,
    SyncResult,
)

router = APIRouter(route_class=ContractRoute, tags=["offers"])


async def get_offer_or_404(
    offer_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Offer:
    offer = await session.get(Offer, offer_id)
    if offer is None or not service.can_write(principal, offer):
        raise NotFound(f"offer {offer_id} does not exist")
    return offer


OfferDep = Annotated[Offer, Depends(get_offer_or_404)]
# Values a repeatable filter may take at once: enough for any real search, and a bound
# on the size of the statement one request can make.
MAX_REPEATS = 50


@router.get("/v1/offers", response_model=Page[OfferOut], responses=problems(401, 422))
async def list_offers(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    accelerator_id: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]] | None,
        Query(max_length=MAX_REPEATS, description="Repeatable: any of these accelerators"),
    ] = None,
    domestic: Annotated[bool | None, Query()] = None,
    min_cards: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    max_price_per_card_hour: Annotated[PriceIn | None, Query()] = None,
    region_prefix: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[0-9]{2,6}$")]] | None,
        Query(max_length=MAX_REPEATS, description="Repeatable: in any of these regions"),
    ] = None,
    provider_id: Annotated[str | None, Query(max_length=40)] = None,
    status_: Annotated[OfferStatus | None, Query(alias="status")] = None,
) -> Page[OfferOut]:
    """Search offers. Others' offers are visible while active and their provider listed."""
    filters = OfferSearch(
        accelerator_id=accelerator_id,
        domestic=domestic,
        min_cards=min_cards,
        max_price_per_card_hour=max_price_per_card_hour,
        region_prefix=region_prefix,
        provider_id=provider_id,
        status=status_,
    )
    rows, cursor = await paginate(
        session, service.search_statement(principal, filters), Offer.id, page
    )
    return Page(items=[OfferOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/v1/offers",
    response_model=OfferOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
async def create_offer(
    payload: OfferCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Offer:
    """Create an offer for your provider; `domestic` comes from the accelerator catalog."""
    offer = await service.create_offer(session, principal, payload)
    set_etag(response, offer.id, offer.version)
    set_location(response, f"/v1/offers/{offer.id}")
    return offer


@router.get("/v1/offers/{offer_id}", response_model=OfferOut, responses=problems(401, 404))
async def get_offer(offer: OfferDep, response: Response) -> Offer:
    """Read one of your offers."""
    set_etag(response, offer.id, offer.version)
    return offer


@router.patch(
    "/v1/offers/{offer_id}",
    response_model=OfferOut,
    responses=problems(401, 404, 409, 412, 422),
)
async def update_offer(
    payload: OfferUpdate,
    offer: OfferDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> Offer:
    """Change an offer; capacity held by live orders cannot be taken away (409)."""
    await service.lock_offer(session, offer)
    check_if_match(if_match, offer.id, offer.version)
    offer = await service.update_offer(session, principal, offer, payload)
    set_etag(response, offer.id, offer.version)
    return offer


@router.delete("/v1/offers/{offer_id}", response_model=OfferOut, responses=problems(401, 404, 409))
async def retire_offer(
    offer: OfferDep, session: SessionDep, principal: CurrentPrincipal, response: Response
) -> Offer:
    """Retire an offer (409 while live orders hold it)."""
    offer = await service.retire_offer(session, principal, offer)
    set_etag(response, offer.id, offer.version)
    return offer


@router.put(
    "/v1/providers/{provider_id}/offers:sync",
    response_model=SyncResult,
    responses=problems(401, 403, 404, 409, 413, 422),
)
async def sync_offers(
    provider_id: str,
    payload: OfferSync,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> SyncResult:
    """Upsert a provider's offers by `external_id` in one transaction (idempotent)."""
    if not principal.is_operator and principal.provider_id != provider_id:
        if principal.role == "provider":
            raise NotFound(f"provider {provider_id} does not exist")
        raise Forbidden("only the provider itself or the operator syncs offers")
    return await service.sync_offers(
        session, principal, provider_id, payload, settings.max_sync_batch
    )
