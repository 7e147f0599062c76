"""What the price index reads: prices grouped in SQL, never loaded offer by offer."""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, func, or_, select, type_coerce

from app.core.db import MoneyFen, Statements
from app.models import Offer, PricePaidDay, Provider
from app.models.status import OfferStatus, ProviderStatus


class PriceCount(NamedTuple):
    """How many active offers of listed providers ask `price` for `accelerator_id`."""

    accelerator_id: str
    price: Decimal
    offers: int


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


def _offer_prices(region_prefixes: Sequence[str]) -> Select[*tuple[Any, ...]]:
    statement: Select[*tuple[Any, ...]] = (
        select(Offer.accelerator_id, Offer.price_per_card_hour, func.count())
        .join(Provider, Provider.id == Offer.provider_id)
        .where(Offer.status == OfferStatus.active, Provider.status == ProviderStatus.listed)
        .group_by(Offer.accelerator_id, Offer.price_per_card_hour)
    )
    if region_prefixes:
        statement = statement.where(_region(Offer.region_code, region_prefixes))
    return statement


# Every region's, the one matching and programs read: built once.
_ALL_OFFER_PRICES = _offer_prices(())


async def offer_prices(source: Statements, region_prefixes: Sequence[str]) -> list[PriceCount]:
    """How many active offers of listed providers ask each price, per accelerator, in
    `region_prefixes` (every region when none)."""
    statement = _offer_prices(region_prefixes) if region_prefixes else _ALL_OFFER_PRICES
    return [PriceCount(*row) for row in await source.fetch(statement, {})]


class PaidStats(NamedTuple):
    """What was bought on one accelerator in the window (`index.OrderStats`' figures)."""

    accelerator_id: str
    orders: int
    card_hours: int
    median_price: Decimal | None


async def prices_paid(
    source: Statements,
    first_day: date,
    accelerator_ids: Sequence[str],
    region_prefixes: Sequence[str],
) -> list[PaidStats]:
    """Per accelerator, the orders placed on `first_day` (Asia/Shanghai) or later on
    offers in `region_prefixes` (any region when none), their card-hours and the
    card-hour-weighted median price paid (gross, the contract's: a bid's where it was
    bid), as `index.weighted_median` has it: the lowest price at which the running
    card-hours reach half the total.

    Read from the day totals the database keeps (`PricePaidDay`), never the orders;
    the median is found in SQL, so one row per accelerator crosses the wire.
    """
    day = PricePaidDay
    grouped_rows = (
        select(
            day.accelerator_id.label("acc"),
            day.price_per_card_hour.label("price"),
            func.sum(day.card_hours).label("ch"),
            func.sum(day.orders).label("n"),
        )
        .where(day.day >= first_day)
        .group_by(day.accelerator_id, day.price_per_card_hour)
    )
    if accelerator_ids:
        grouped_rows = grouped_rows.where(day.accelerator_id.in_(accelerator_ids))
    if region_prefixes:
        grouped_rows = grouped_rows.where(_region(day.region_code, region_prefixes))
    grouped = grouped_rows.subquery()
    running = select(
        grouped,
        func.sum(grouped.c.ch)
        .over(partition_by=grouped.c.acc, order_by=grouped.c.price)
        .label("cum"),
        func.sum(grouped.c.ch).over(partition_by=grouped.c.acc).label("total"),
    ).subquery()
    statement = select(
        running.c.acc,
        func.sum(running.c.n),
        func.max(running.c.total),
        type_coerce(
            func.min(running.c.price).filter(
                and_(running.c.ch > 0, running.c.cum * 2 >= running.c.total)
            ),
            MoneyFen,
        ),
    ).group_by(running.c.acc)
    return [
        PaidStats(acc, int(n or 0), int(total or 0), median)
        for acc, n, total, median in await source.fetch(statement, {})
    ]
