"""What the price index reads: prices grouped in SQL, never loaded offer by offer."""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Statements
from app.models import Offer, PricePaidDay, Provider
from app.models.status import OfferStatus, ProviderStatus


class PriceCount(NamedTuple):
    """How many active offers of listed providers ask `price` for `accelerator_id`."""

    accelerator_id: str
    price: Decimal
    offers: int


class PricePaid(NamedTuple):
    """The card-hours bought at `price` on `accelerator_id` in the window."""

    accelerator_id: str
    price: Decimal
    card_hours: int


class OrderCount(NamedTuple):
    accelerator_id: str
    orders: int


# What identifies the offers' state: the newest change of an offer or a provider (an
# offer's price or status, a provider's listing status). Each is the top of an index.
OFFERS_STATE = select(
    select(func.max(Offer.updated_at)).scalar_subquery(),
    select(func.max(Provider.updated_at)).scalar_subquery(),
)


async def offers_state(source: Statements) -> tuple[Any, ...]:
    return tuple((await source.fetch(OFFERS_STATE, {}))[0])


def _region(column: Any, prefixes: Sequence[str]) -> Any:
    return or_(*(column.like(f"{prefix}%") for prefix in prefixes))


def _offer_prices(
    accelerator_ids: Sequence[str], region_prefixes: Sequence[str]
) -> Select[*tuple[Any, ...]]:
    statement: Select[*tuple[Any, ...]] = (
        select(Offer.accelerator_id, Offer.price_per_card_hour, func.count())
        .join(Provider, Provider.id == Offer.provider_id)
        .where(Offer.status == OfferStatus.active, Provider.status == ProviderStatus.listed)
        .group_by(Offer.accelerator_id, Offer.price_per_card_hour)
    )
    if accelerator_ids:
        statement = statement.where(Offer.accelerator_id.in_(accelerator_ids))
    if region_prefixes:
        statement = statement.where(_region(Offer.region_code, region_prefixes))
    return statement


# Every accelerator's, for the cache: built once.
_ALL_OFFER_PRICES = _offer_prices((), ())


async def all_offer_prices(source: Statements) -> list[PriceCount]:
    return [PriceCount(*row) for row in await source.fetch(_ALL_OFFER_PRICES, {})]


async def offer_prices(
    session: AsyncSession, accelerator_ids: Sequence[str], region_prefixes: Sequence[str]
) -> list[PriceCount]:
    result = await session.execute(_offer_prices(accelerator_ids, region_prefixes))
    return [PriceCount(acc, price, n) for acc, price, n in result.all()]


async def prices_paid(
    session: AsyncSession,
    first_day: date,
    accelerator_ids: Sequence[str],
    region_prefixes: Sequence[str],
) -> tuple[list[PricePaid], list[OrderCount]]:
    """The card-hours bought per accelerator and price (gross, the price of the
    contract: a bid's where it was bid) in orders placed on `first_day` (Asia/Shanghai)
    or later, on offers in `region_prefixes` (any region when none), and the orders per
    accelerator: from the day totals the database keeps (`PricePaidDay`), never the
    orders themselves."""
    statement = (
        select(
            PricePaidDay.accelerator_id,
            PricePaidDay.price_per_card_hour,
            func.sum(PricePaidDay.card_hours),
            func.sum(PricePaidDay.orders),
        )
        .where(PricePaidDay.day >= first_day)
        .group_by(PricePaidDay.accelerator_id, PricePaidDay.price_per_card_hour)
    )
    if accelerator_ids:
        statement = statement.where(PricePaidDay.accelerator_id.in_(accelerator_ids))
    if region_prefixes:
        statement = statement.where(_region(PricePaidDay.region_code, region_prefixes))
    paid: list[PricePaid] = []
    orders: dict[str, int] = {}
    for acc, price, card_hours, n in await session.execute(statement):
        paid.append(PricePaid(acc, price, int(card_hours or 0)))
        orders[acc] = orders.get(acc, 0) + int(n or 0)
    return paid, [OrderCount(acc, n) for acc, n in orders.items() if n > 0]
