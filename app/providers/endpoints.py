from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.core.deps import SessionDep
from app.core.errors import NotFound, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag, set_location
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import (
    KEY_OPTIONAL,
    CurrentPrincipal,
    OperatorPrincipal,
    OptionalPrincipal,
)
from app.core.timeutil import today_shanghai
from app.models import Listing, Provider
from app.providers import service
from app.providers.schemas import (
    ListingCreate,
    ListingOut,
    ProviderCreate,
    ProviderCreated,
    ProviderKind,
    ProviderOut,
    ProviderStatus,
    ProviderUpdate,
    StatusChange,
)

router = APIRouter(route_class=ContractRoute, prefix="/v1/providers", tags=["providers"])


async def get_provider_or_404(
    provider_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Provider:
    # A provider that is not yours is as good as absent: 404, never 403, on reads.
    provider = await service.load_provider(session, provider_id)
    if provider is None or not service.can_see(principal, provider_id):
        raise NotFound(f"provider {provider_id} does not exist")
    return provider


ProviderDep = Annotated[Provider, Depends(get_provider_or_404)]


def provider_out(provider: Provider) -> ProviderOut:
    today = today_shanghai()
    return ProviderOut.model_validate(
        {
            **{
                c: getattr(provider, c)
                for c in (
                    "id",
                    "name",
                    "kind",
                    "unified_social_credit_code",
                    "region_code",
                    "status",
                    "related_parties",
                    "created_at",
                    "updated_at",
                )
            },
            "listings": [listing_out(lst, today) for lst in provider.listings],
        }
    )


def listing_out(listing: Listing, today: object = None) -> ListingOut:
    day = today or today_shanghai()
    return ListingOut(
        id=listing.id,
        list=listing.list_id,
        since=listing.since,
        until=listing.until,
        reference=listing.reference,
        created_at=listing.created_at,
        ended_at=listing.ended_at,
        active=listing.active_on(day),  # type: ignore[arg-type]
    )


@router.get("", response_model=Page[ProviderOut], responses=problems(401, 422))
async def list_providers(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    status_: Annotated[ProviderStatus | None, Query(alias="status")] = None,
    kind: Annotated[ProviderKind | None, Query()] = None,
    region_prefix: Annotated[str | None, Query(pattern=r"^[0-9]{2,6}$")] = None,
) -> Page[ProviderOut]:
    """List providers: all for the operator, only itself for a provider key."""
    stmt = select(Provider).options(selectinload(Provider.listings))
    if not principal.is_operator:
        stmt = stmt.where(Provider.id == (principal.provider_id or ""))
    if status_ is not None:
        stmt = stmt.where(Provider.status == status_.value)
    if kind is not None:
        stmt = stmt.where(Provider.kind == kind.value)
    if region_prefix:
        stmt = stmt.where(Provider.region_code.startswith(region_prefix, autoescape=True))
    rows, cursor = await paginate(session, stmt, Provider.id, page)
    return Page(items=[provider_out(r) for r in rows], next_cursor=cursor)


@router.post(
    "",
    response_model=ProviderCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    openapi_extra=KEY_OPTIONAL,
)
async def create_provider(
    payload: ProviderCreate,
    session: SessionDep,
    principal: OptionalPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ProviderCreated:
    """Create a provider (operator), or self-register without a key (`pending`, key shown once)."""
    provider, secret = await service.create_provider(session, principal, payload)
    set_etag(response, provider.id, provider.version)
    set_location(response, f"/v1/providers/{provider.id}")
    return ProviderCreated(**provider_out(provider).model_dump(), api_key=secret)


@router.get("/{provider_id}", response_model=ProviderOut, responses=problems(401, 404))
async def get_provider(provider: ProviderDep, response: Response) -> ProviderOut:
    """Read a provider with its listings."""
    set_etag(response, provider.id, provider.version)
    return provider_out(provider)


@router.patch(
    "/{provider_id}", response_model=ProviderOut, responses=problems(401, 403, 404, 412, 422)
)
async def update_provider(
    payload: ProviderUpdate,
    provider: ProviderDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> ProviderOut:
    """Change a provider's name, kind or region (never its status or listings)."""
    await service.lock_provider(session, provider)
    check_if_match(if_match, provider.id, provider.version)
    provider = await service.update_provider(session, principal, provider, payload)
    set_etag(response, provider.id, provider.version)
    return provider_out(provider)


@router.post(
    "/{provider_id}/status", response_model=ProviderOut, responses=problems(401, 403, 404, 409, 422)
)
async def change_provider_status(
    payload: StatusChange,
    # The operator check comes first: other keys get 403 whatever the id (never a 404 probe).
    principal: OperatorPrincipal,
    provider: ProviderDep,
    session: SessionDep,
    response: Response,
) -> ProviderOut:
    """Move a provider through its status machine (illegal transitions: 409)."""
    provider = await service.change_status(
        session, principal, provider, payload.status, payload.reason
    )
    set_etag(response, provider.id, provider.version)
    return provider_out(provider)


@router.get(
    "/{provider_id}/listings", response_model=Page[ListingOut], responses=problems(401, 404, 422)
)
async def list_listings(
    provider: ProviderDep, page: Annotated[PageParams, Depends()], session: SessionDep
) -> Page[ListingOut]:
    """A provider's listings on the official lists, past and present."""
    stmt = select(Listing).where(Listing.provider_id == provider.id)
    rows, cursor = await paginate(session, stmt, Listing.id, page)
    return Page(items=[listing_out(r) for r in rows], next_cursor=cursor)


@router.post(
    "/{provider_id}/listings",
    response_model=ListingOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def grant_listing(
    payload: ListingCreate,
    # The operator check comes first: other keys get 403 whatever the id (never a 404 probe).
    principal: OperatorPrincipal,
    provider: ProviderDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ListingOut:
    """Put a provider on an official list (operator only)."""
    listing = await service.grant_listing(session, principal, provider, payload)
    # The listing is addressed by its list (DELETE ends it there).
    set_location(response, f"/v1/providers/{provider.id}/listings/{listing.list_id}")
    return listing_out(listing)


@router.delete(
    "/{provider_id}/listings/{list_id}",
    response_model=ListingOut,
    responses=problems(401, 403, 404),
)
async def end_listing(
    list_id: str,
    # The operator check comes first: other keys get 403 whatever the id (never a 404 probe).
    principal: OperatorPrincipal,
    provider: ProviderDep,
    session: SessionDep,
) -> ListingOut:
    """End a provider's current listing on a list, as of today (operator only)."""
    return listing_out(await service.end_listing(session, principal, provider, list_id))
