"""How money, rates and instants cross the wire (hand-written; the generated models call it).

The API takes and gives amounts as decimal strings (`"552960.00"`), never JSON numbers, and
instants with an offset. The SDK hands out `Decimal` and aware `datetime`, and refuses a
naive `datetime` before sending: the API would only answer 422 for it.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")


def decimal_to_json(value: Any) -> Any:
    """A `Decimal` as the API writes it: two decimals when it has no more (`12.5` is
    `"12.50"`), otherwise every digit (a rate's four, or an amount the API will refuse
    with 422: the SDK never rounds money). Anything else (None, UNSET) passes through."""
    if not isinstance(value, Decimal):
        return value
    if not value.is_finite():
        raise ValueError(f"{value} is not an amount")
    try:
        cents = value.quantize(CENT)
    except InvalidOperation:  # more digits than the context holds: let the API judge
        return format(value, "f")
    return format(cents if cents == value else value, "f")


def decimal_from_json(value: Any) -> Any:
    """A decimal string as `Decimal`; None and UNSET pass through."""
    return Decimal(value) if isinstance(value, str) else value


def instant_to_json(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{value.isoformat()} is a naive datetime: give it a time zone "
            "(e.g. tzinfo=ZoneInfo('Asia/Shanghai')); the API takes instants only"
        )
    return value.isoformat()
