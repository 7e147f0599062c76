from pydantic import BaseModel, Field

from app.core.money import Money
from app.prices import index
from app.prices.service import IndexItem


class OfferPricesOut(BaseModel):
    count: int = Field(description="active offers of listed providers")
    min: Money | None = Field(description="the lowest list price per card-hour")
    median: Money | None = Field(
        description="the median list price per card-hour (of an even count, the mean of "
        "the middle two, rounded half up to the fen)"
    )
    p90: Money | None = Field(description="the 90th percentile list price (nearest rank)")


class OrderPricesOut(BaseModel):
    count: int = Field(
        description="orders placed on the last `days` days (Asia/Shanghai) and not cancelled; "
        "an order split across offers counts once"
    )
    card_hours: int
    median_price: Money | None = Field(
        description="the card-hour-weighted median price per card-hour paid, gross (before "
        "vouchers): the price at or below which half the card-hours were bought"
    )


class PriceIndexItem(BaseModel):
    accelerator_id: str
    domestic: bool
    offers: OfferPricesOut
    orders: OrderPricesOut


class PriceIndex(BaseModel):
    days: int
    items: list[PriceIndexItem]


def _offers(stats: index.OfferStats) -> OfferPricesOut:
    return OfferPricesOut(count=stats.count, min=stats.min, median=stats.median, p90=stats.p90)


def _orders(stats: index.OrderStats) -> OrderPricesOut:
    return OrderPricesOut(
        count=stats.count, card_hours=stats.card_hours, median_price=stats.median_price
    )


def price_index_out(items: list[IndexItem], days: int) -> PriceIndex:
    return PriceIndex(
        days=days,
        items=[
            PriceIndexItem(
                accelerator_id=item.accelerator_id,
                domestic=item.domestic,
                offers=_offers(item.offers),
                orders=_orders(item.orders),
            )
            for item in items
        ],
    )
