"""The price index's arithmetic (app/prices/index.py): pure, over grouped prices."""

from decimal import Decimal

import pytest

from app.prices.index import NO_OFFERS, offer_stats, order_stats, weighted_median


def d(text: str) -> Decimal:
    return Decimal(text)


def expand(pairs: list[tuple[Decimal, int]]) -> list[Decimal]:
    return sorted(price for price, n in pairs for _ in range(n))


def test_no_offers() -> None:
    assert offer_stats([]) == NO_OFFERS
    assert offer_stats([(d("9.00"), 0)]) == NO_OFFERS


def test_odd_count_median_is_the_middle_price() -> None:
    stats = offer_stats([(d("12.00"), 1), (d("8.00"), 1), (d("30.00"), 1)])
    assert (stats.count, stats.min, stats.median, stats.p90) == (
        3,
        d("8.00"),
        d("12.00"),
        d("30.00"),
    )


def test_even_count_median_is_the_mean_of_the_middle_two_rounded_half_up() -> None:
    # 10.01 and 10.02: the mean 10.015 rounds half up to 10.02.
    stats = offer_stats([(d("10.01"), 1), (d("10.02"), 1)])
    assert stats.median == d("10.02")
    assert offer_stats([(d("1"), 1), (d("2"), 1), (d("3"), 1), (d("4"), 1)]).median == d("2.50")


def test_p90_is_the_nearest_rank() -> None:
    # 1..10: the 9th value; 1..11: ceil(9.9) = the 10th.
    assert offer_stats([(Decimal(i), 1) for i in range(1, 11)]).p90 == Decimal(9)
    assert offer_stats([(Decimal(i), 1) for i in range(1, 12)]).p90 == Decimal(10)


@pytest.mark.parametrize(
    "pairs",
    [
        [(d("5.00"), 3), (d("7.00"), 2), (d("9.50"), 4)],
        [(d("11.00"), 7)],
        [(d("3.10"), 1), (d("3.20"), 5), (d("3.10"), 2)],  # one price twice, merged
    ],
)
def test_grouped_prices_read_as_the_prices_they_stand_for(pairs: list[tuple[Decimal, int]]) -> None:
    values = expand(pairs)
    n = len(values)
    stats = offer_stats(pairs)
    middle = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    assert stats.count == n
    assert stats.min == values[0]
    assert stats.median == middle.quantize(d("0.01"))
    assert stats.p90 == values[-(-9 * n // 10) - 1]


def test_weighted_median_is_a_price_paid_by_card_hours() -> None:
    # 10 card-hours at 5, 30 at 9: half the card-hours were bought at 9 or less.
    assert weighted_median([(d("5"), 10), (d("9"), 30)]) == d("9")
    # 20 and 20: the 20th card-hour is at 5.
    assert weighted_median([(d("5"), 20), (d("9"), 20)]) == d("5")
    assert weighted_median([]) is None
    assert weighted_median([(d("5"), 0)]) is None


def test_order_stats() -> None:
    stats = order_stats([(d("8.00"), 100), (d("12.00"), 50)], orders=3)
    assert (stats.count, stats.card_hours, stats.median_price) == (3, 150, d("8.00"))
