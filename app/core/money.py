"""Money and rates: exact decimals end to end.

Amounts are CNY with two places (fen). They travel in JSON as strings
("1234.50"), are stored as integer fen, and every rounding here says which
way it goes and why.
"""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
# 10^13 yuan is far beyond any real contract; bounding inputs keeps arithmetic
# and storage (BIGINT fen) safe from absurd numbers.
MAX_AMOUNT = Decimal("9999999999999.99")

MONEY_PATTERN = r"^\d{1,13}(\.\d{1,2})?$"
SIGNED_MONEY_PATTERN = r"^-?\d{1,13}\.\d{2}$"
RATE_PATTERN = r"^(0(\.\d{1,4})?|1(\.0{1,4})?)$"


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


def format_money(value: Decimal) -> str:
    return f"{value.quantize(FEN, rounding=ROUND_HALF_UP):f}"


def format_rate(value: Decimal) -> str:
    # "0.3" is shown as "0.30": at least two places, more only when the data has them.
    text = f"{value.normalize():f}"
    if "." not in text:
        text += ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _no_float(value: Any) -> Any:
    # A JSON float cannot carry an exact amount; insist on strings (or integers).
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError('must be a decimal string such as "1234.50", not a JSON number')
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError('must be a decimal string such as "1234.50"')
    return value


# Input amounts: non-negative, at most two decimals, bounded.
MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_no_float),
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
    BeforeValidator(_no_float),
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
    BeforeValidator(_no_float),
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
            "pattern": r"^\d+\.\d{2,4}$",
            "examples": ["0.30"],
            "description": "rate between 0 and 1 as a decimal string",
        }
    ),
]
