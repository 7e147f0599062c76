"""Validated scalar types shared by the domains' schemas."""

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from app.core.regions import (
    is_real_region_code,
    is_real_region_prefix,
    unknown_code_message,
    unknown_prefix_message,
)
from app.core.validators import PROVINCE_CODES, is_valid_credit_code, is_valid_region_code


def _credit_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 18:
        raise ValueError("a unified social credit code has 18 characters")
    if not is_valid_credit_code(code):
        raise ValueError(
            "not a valid unified social credit code (GB 32100-2015): "
            "wrong characters or check character"
        )
    return code


def _region_code(value: str) -> str:
    if not is_valid_region_code(value):
        raise ValueError("region_code must be a six-digit GB/T 2260 code such as 330108")
    return real_region_code(value)


def real_region_code(value: str) -> str:
    """A region code must be a row of the table, not only six digits of a province."""
    if not is_real_region_code(value):
        raise ValueError(unknown_code_message("region_code", value))
    return value


def region_prefix(value: str) -> str:
    """A region prefix must begin at least one real code, or it could match nothing."""
    if not is_real_region_prefix(value):
        raise ValueError(unknown_prefix_message(value))
    return value


def _not_a_number(value: Any) -> Any:
    # JSON has no date type; a number would be read as a Unix timestamp, which no one means.
    if isinstance(value, bool | int | float):
        raise ValueError("must be an ISO 8601 string, e.g. 2026-03-01T00:00:00+08:00")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("instants need a UTC offset, e.g. 2026-03-01T00:00:00+08:00")
    if not 2000 <= value.year <= 2100:
        raise ValueError("instants must fall between the years 2000 and 2100")
    return value


def _strip_str(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


CreditCode = Annotated[
    str,
    AfterValidator(_credit_code),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 18,
            "maxLength": 18,
            "pattern": "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$",
            "examples": ["91330108MA2H2XWL36"],
            "description": "统一社会信用代码, GB 32100-2015 with a valid check character",
        }
    ),
]
# The pattern says what _region_code checks: six digits, the first two a province.
REGION_CODE_PATTERN = "^(" + "|".join(sorted(PROVINCE_CODES)) + ")[0-9]{4}$"
RegionCode = Annotated[
    str,
    AfterValidator(_region_code),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": REGION_CODE_PATTERN,
            "examples": ["330108"],
            "description": "GB/T 2260 county-level administrative division code (the "
            "table the service ships: app/core/data/gbt2260.csv)",
        }
    ),
]
RegionPrefix = Annotated[
    str,
    Field(pattern=r"^[0-9]{2}([0-9]{2}){0,2}$", examples=["3301"]),
    AfterValidator(region_prefix),
]
AwareDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_aware)]
# A calendar date, YYYY-MM-DD.
Day = Annotated[date, BeforeValidator(_not_a_number)]
Name = Annotated[str, BeforeValidator(_strip_str), Field(min_length=1, max_length=200)]


def _unique_codes(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("a credit code appears twice")
    return value


# Related parties (关联方, claims.md): at most 50 unified social credit codes, no repeats.
RelatedParties = Annotated[list[CreditCode], Field(max_length=50), AfterValidator(_unique_codes)]
