"""The price index's arithmetic (market.md, "The price index"): pure, over named values.

Prices arrive grouped, as (price, weight) pairs: the number of active offers at a
list price, or the card-hours bought at a price. Grouping in SQL keeps what crosses
the wire small however many offers or orders there are.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from app.core.money import round_half_up


@dataclass(frozen=True)
class OfferStats:
    """The list prices per card-hour of one accelerator's active offers."""

    count: int
    min: Decimal | None
    median: Decimal | None
    p90: Decimal | None


@dataclass(frozen=True)
class OrderStats:
    """One accelerator's orders placed in the index's window (gross, before vouchers)."""

    count: int
    card_hours: int
    median_price: Decimal | None


NO_OFFERS = OfferStats(count=0, min=None, median=None, p90=None)
NO_ORDERS = OrderStats(count=0, card_hours=0, median_price=None)


def _ordered(pairs: Iterable[tuple[Decimal, int]]) -> list[tuple[Decimal, int]]:
    merged: dict[Decimal, int] = {}
    for price, weight in pairs:
        if weight > 0:
            merged[price] = merged.get(price, 0) + weight
    return sorted(merged.items())


def _at_rank(ordered: list[tuple[Decimal, int]], rank: int) -> Decimal:
    """The `rank`-th value (1-based) of the values the pairs stand for."""
    seen = 0
    for price, count in ordered:
        seen += count
        if seen >= rank:
            return price
    raise ValueError(f"rank {rank} is beyond {seen} values")


def offer_stats(pairs: Iterable[tuple[Decimal, int]]) -> OfferStats:
    """count, min, median and p90 of the prices (price, how many offers ask it).

    The median of an even count is the mean of the middle two, rounded half up to
    the fen; p90 is the nearest rank (the smallest price at least 90% of offers ask
    no more than), so it is always a price some offer asks.
    """
    ordered = _ordered(pairs)
    n = sum(count for _, count in ordered)
    if not n:
        return NO_OFFERS
    low, high = _at_rank(ordered, (n + 1) // 2), _at_rank(ordered, n // 2 + 1)
    median = low if n % 2 else round_half_up((low + high) / 2)
    p90 = _at_rank(ordered, -(-9 * n // 10))  # ceil(0.9 n) in integers
    return OfferStats(count=n, min=ordered[0][0], median=median, p90=p90)


def weighted_median(pairs: Iterable[tuple[Decimal, int]]) -> Decimal | None:
    """The price at or below which half the weight (card-hours) was bought: the
    card-hour-weighted median, always a price actually paid (None: no weight)."""
    ordered = _ordered(pairs)
    total = sum(weight for _, weight in ordered)
    if not total:
        return None
    return _at_rank(ordered, -(-total // 2))  # the ceil(total / 2)-th card-hour


def order_stats(pairs: Iterable[tuple[Decimal, int]], orders: int) -> OrderStats:
    """`orders` orders whose card-hours were bought at the (price, card-hours) pairs: the
    definition that `store.prices_paid` computes in SQL (tests/prices/test_store.py
    holds the two equal)."""
    ordered = _ordered(pairs)
    return OrderStats(
        count=orders,
        card_hours=sum(weight for _, weight in ordered),
        median_price=weighted_median(ordered),
    )
