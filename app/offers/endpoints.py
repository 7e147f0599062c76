from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import StringConstraints

from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Forbidden, NotFound, Unprocessable, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag, set_location
from app.core.money import PriceIn
from app.core.pagination import Page, PageParams
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.models import Offer
from app.offers import service
from app.offers.schemas import (
    Interconnect,
    Network,
    OfferCreate,
    OfferListItem,
    OfferOut,
    OfferSearch,
    OfferSort,
    OfferStatus,
    OfferSync,
    OfferUpdate,
    SoftwareStack,
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


@router.get("/v1/offers", response_model=Page[OfferListItem], responses=problems(401, 422))
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
    cards_per_node: Annotated[
        int | None, Query(ge=1, le=1024, description="At least this many cards per node")
    ] = None,
    interconnect: Annotated[Interconnect | None, Query()] = None,
    network: Annotated[Network | None, Query()] = None,
    software_stack: Annotated[
        list[SoftwareStack] | None,
        Query(max_length=len(SoftwareStack), description="Any of these stacks (repeatable)"),
    ] = None,
    free_from: Annotated[
        datetime | None, Query(description="Start of the window free_cards is counted over")
    ] = None,
    free_until: Annotated[datetime | None, Query(description="End of that window")] = None,
    min_free_cards: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="At least this many cards free over the window"),
    ] = None,
    sort: Annotated[
        OfferSort, Query(description="Order of the items; a leading - descends")
    ] = OfferSort.price_per_card_hour,
) -> Page[OfferListItem]:
    """Search offers. Others' offers are visible while active and their provider listed.

    With `free_from` and `free_until`, each item carries `free_cards`: the most cards an
    order could hold over that whole window now.
    """
    filters = OfferSearch(
        accelerator_id=accelerator_id,
        domestic=domestic,
        min_cards=min_cards,
        max_price_per_card_hour=max_price_per_card_hour,
        region_prefix=region_prefix,
        provider_id=provider_id,
        status=status_,
        cards_per_node=cards_per_node,
        interconnect=interconnect,
        network=network,
        software_stacks=software_stack or [],
        free_from=free_from,
        free_until=free_until,
        min_free_cards=min_free_cards,
        sort=sort,
    )
    check_free_window(filters)
    rows, cursor = await service.search(session, principal, filters, page.limit, page.cursor)
    items = [
        OfferListItem.model_validate(offer).model_copy(update={"free_cards": free})
        for offer, free in rows
    ]
    return Page(items=items, next_cursor=cursor)


def check_free_window(filters: OfferSearch) -> None:
    """free_from and free_until come together, with offsets, in order; min_free_cards
    needs them."""
    given = [n for n in ("free_from", "free_until") if getattr(filters, n) is not None]
    for name in given:
        value = getattr(filters, name)
        if value.tzinfo is None or value.utcoffset() is None:
            raise Unprocessable.field(["query", name], f"{name} must carry an offset")
    if len(given) == 1:
        missing = "free_until" if given == ["free_from"] else "free_from"
        raise Unprocessable.field(["query", missing], f"{given[0]} needs {missing} too")
    if filters.free_from is not None and filters.free_until is not None:
        if filters.free_from >= filters.free_until:
            raise Unprocessable.field(["query", "free_until"], "free_until must be after free_from")
    elif filters.min_free_cards is not None:
        raise Unprocessable.field(
            ["query", "min_free_cards"], "min_free_cards needs free_from and free_until"
        )


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
