"""Money and rates: exact decimals end to end.

Amounts are CNY with two places (fen). They travel in JSON as strings
("1234.50"), are stored as integer fen, and every rounding here says which
way it goes and why.
"""

import re
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
# 10^13 yuan is far beyond any real contract; bounding inputs keeps arithmetic
# and storage (BIGINT fen) safe from absurd numbers.
MAX_AMOUNT = Decimal("9999999999999.99")

# ASCII digits only: Python's \d would also take other scripts' digits, JSON Schema's not.
MONEY_PATTERN = r"^[0-9]{1,13}(\.[0-9]{1,2})?$"
SIGNED_MONEY_PATTERN = r"^-?[0-9]{1,13}\.[0-9]{2}$"
RATE_PATTERN = r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$"


def round_down(value: Decimal) -> Decimal:
    """Subsidies round down to the fen: the state never pays a fraction it does not owe."""
    return value.quantize(FEN, rounding=ROUND_DOWN)


def round_half_up(value: Decimal) -> Decimal:
    """Prices and gross amounts round half up, as an invoice would."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def to_fen(value: Decimal) -> int:
    return int(value.quantize(FEN, rounding=ROUND_HALF_UP) * 100)


def from_fen(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(FEN)


def max_price_per_card_hour(cards: int, hours: int) -> Decimal:
    """The highest price per card-hour whose amount for `cards` × `hours` is at most
    `MAX_AMOUNT`: every amount the service derives (gross, subsidy, net, a split's sum)
    is then within it, and a sum of thousands of them within BIGINT fen."""
    return from_fen(to_fen(MAX_AMOUNT) // (cards * hours))


def format_money(value: Decimal) -> str:
    return f"{value.quantize(FEN, rounding=ROUND_HALF_UP):f}"


def format_rate(value: Decimal) -> str:
    # "0.3" is shown as "0.30": at least two places, more only when the data has them.
    text = f"{value.normalize():f}"
    if "." not in text:
        text += ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _decimal_text(pattern: str, example: str) -> Callable[[Any], Any]:
    """Amounts and rates arrive as strings of the documented pattern (or as Decimals, from
    code). A JSON number cannot carry an exact amount, and forms such as "1e3" or "5." are
    refused rather than read one way or another."""
    form = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str):
            raise ValueError(f'must be a decimal string such as "{example}", not a JSON number')
        if not form.fullmatch(value):
            raise ValueError(f'must be a decimal string such as "{example}"')
        return value

    return check


_money_text = _decimal_text(MONEY_PATTERN, "1234.50")
_rate_text = _decimal_text(RATE_PATTERN, "0.30")


# Input amounts: non-negative, at most two decimals, bounded.
MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_money_text),
    Field(ge=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(format_money, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "examples": ["1234.50"],
            "description": "CNY amount as a decimal string, at most two decimals",
        }
    ),
]

# Input prices must be positive.
PriceIn = Annotated[
    Decimal,
    BeforeValidator(_money_text),
    Field(gt=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(format_money, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "examples": ["12.00"],
            "description": "CNY amount greater than zero, as a decimal string",
        }
    ),
]

# A ratio of two prices (a program's max_price_ratio): positive, two decimals.
RatioIn = Annotated[
    Decimal,
    BeforeValidator(_money_text),
    Field(gt=0, le=100, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(format_money, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "examples": ["1.50"],
            "description": "a ratio greater than zero, as a decimal string of two decimals",
        }
    ),
]

# Output amounts: always two decimals as a string.
Money = Annotated[
    Decimal,
    PlainSerializer(format_money, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SIGNED_MONEY_PATTERN,
            "examples": ["1234.50"],
            "description": "CNY amount, two decimals",
        }
    ),
]

RateIn = Annotated[
    Decimal,
    BeforeValidator(_rate_text),
    Field(ge=0, le=1, decimal_places=4, allow_inf_nan=False),
    PlainSerializer(format_rate, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": RATE_PATTERN,
            "examples": ["0.30"],
            "description": "rate between 0 and 1 as a decimal string",
        }
    ),
]

Rate = Annotated[
    Decimal,
    PlainSerializer(format_rate, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]+\.[0-9]{2,4}$",
            "examples": ["0.30"],
            "description": "rate between 0 and 1 as a decimal string",
        }
    ),
]
