from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from app.core.db import on_session
from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.core.timeutil import utcnow
from app.prices import service
from app.prices.schemas import PriceIndex, price_index_out

router = APIRouter(route_class=ContractRoute, tags=["prices"])

# As many values as a repeatable offer filter takes (app.offers.endpoints).
MAX_REPEATS = 50


@router.get("/v1/price-index", response_model=PriceIndex, responses=problems(401, 422))
async def get_price_index(
    session: SessionDep,
    principal: CurrentPrincipal,
    accelerator_id: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]] | None,
        Query(max_length=MAX_REPEATS, description="Repeatable: these accelerators only"),
    ] = None,
    region_prefix: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[0-9]{2,6}$")]] | None,
        Query(
            max_length=MAX_REPEATS,
            description="Repeatable: offers (and orders of offers) in any of these regions",
        ),
    ] = None,
    days: Annotated[
        int,
        Query(
            ge=1,
            le=366,
            description="Orders placed on the last this many days (Asia/Shanghai calendar "
            "days, today included)",
        ),
    ] = 30,
) -> PriceIndex:
    """What compute costs, per accelerator, asked and paid.

    For each accelerator: the list prices of active offers of listed providers (count,
    min, median, p90) and the orders placed in the last `days` (count, card-hours, and
    the card-hour-weighted median price paid, gross before vouchers)."""
    query = service.IndexQuery(
        accelerator_ids=await service.known_accelerators(session, accelerator_id or []),
        region_prefixes=region_prefix or [],
        days=days,
    )
    items = await service.price_index(session, on_session(session), query, utcnow())
    return price_index_out(items, days)
