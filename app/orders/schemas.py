from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from app.core.money import Money, MoneyIn
from app.matching.schemas import MATCH_EXAMPLE, MatchOut
from app.models.status import OrderStatus as OrderStatus  # answered by this API
from app.subsidies.schemas import SubsidyOut


class QuotePartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(min_length=1, max_length=40)
    cards: StrictInt = Field(ge=1, le=1_000_000)


class QuoteCreate(BaseModel):
    """Pin one match: a single offer (`offer_id`), a split match's `parts`, or a bid."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "request_id": "req_01a2014889fc69da7c85d34c641c",
                    "offer_id": "off_01a2014889c68546fef9a270338a",
                }
            ]
        },
    )

    request_id: str = Field(min_length=1, max_length=40)
    offer_id: str | None = Field(None, min_length=1, max_length=40)
    parts: list[QuotePartIn] | None = Field(None, min_length=2, max_length=50)
    bid_id: str | None = Field(
        None, min_length=1, max_length=40, description="A live bid on this request"
    )

    @model_validator(mode="after")
    def _one_shape(self) -> "QuoteCreate":
        if sum(x is not None for x in (self.offer_id, self.parts, self.bid_id)) != 1:
            raise ValueError("give one of offer_id, parts (a split match) or bid_id")
        return self


class QuoteOut(MatchOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **MATCH_EXAMPLE,
                    "id": "quo_01a201488a48cd7c18983fda6148",
                    "request_id": "req_01a2014889fc69da7c85d34c641c",
                    "enterprise_id": "ent_01a2014889e26d55515199314b89",
                    "expires_at": "2026-11-22T03:39:20.921474Z",
                    "created_at": "2026-11-22T03:24:20.921474Z",
                }
            ]
        }
    )

    id: str
    request_id: str
    enterprise_id: str
    expires_at: datetime
    created_at: datetime


class OrderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"quote_id": "quo_01a201488a48cd7c18983fda6148"}]},
    )

    quote_id: str = Field(min_length=1, max_length=40)


class OrderComplete(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"executed_amount": "500000.00"}]}
    )

    executed_amount: MoneyIn = Field(description="What was actually executed; at most the gross")


class OrderPartOut(BaseModel):
    id: str
    offer_id: str
    provider_id: str
    cards: int
    start: datetime
    end: datetime
    price_per_card_hour: Money
    gross_amount: Money
    subsidy: SubsidyOut
    net_amount: Money
    executed_amount: Money | None
    settled_subsidy: Money | None


_SUBSIDY_EXAMPLE: dict[str, Any] = {
    "program_id": "binjiang-compute-2025",
    "rate": "0.60",
    "amount": "331776.00",
    "base": "settled_amount",
    "capped_by": None,
}
ORDER_EXAMPLE: dict[str, Any] = {
    "id": "ord_01a201488a7559e5debb883befc7",
    "quote_id": "quo_01a201488a48cd7c18983fda6148",
    "request_id": "req_01a2014889fc69da7c85d34c641c",
    "enterprise_id": "ent_01a2014889e26d55515199314b89",
    "status": "reserved",
    "offer_id": "off_01a2014889c68546fef9a270338a",
    "parts": [
        {
            "id": "opt_01a201488a755b660f93ad785dee",
            "offer_id": "off_01a2014889c68546fef9a270338a",
            "provider_id": "prv_01a201488973d54e4c06176fd239",
            "cards": 64,
            "start": "2026-11-30T16:00:00Z",
            "end": "2026-12-30T16:00:00Z",
            "price_per_card_hour": "12.00",
            "gross_amount": "552960.00",
            "subsidy": _SUBSIDY_EXAMPLE,
            "net_amount": "221184.00",
            "executed_amount": None,
            "settled_subsidy": None,
        }
    ],
    "cards": 64,
    "start": "2026-11-30T16:00:00Z",
    "end": "2026-12-30T16:00:00Z",
    "gross_amount": "552960.00",
    "subsidy": _SUBSIDY_EXAMPLE,
    "net_amount": "221184.00",
    "executed_amount": None,
    "created_at": "2026-11-22T03:24:20.983445Z",
    "completed_at": None,
    "cancelled_at": None,
}


class OrderOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_EXAMPLE]})

    id: str
    quote_id: str
    request_id: str
    enterprise_id: str
    status: OrderStatus
    offer_id: str | None = Field(description="null when the order is split across offers")
    parts: list[OrderPartOut]
    cards: int
    start: datetime
    end: datetime
    gross_amount: Money
    subsidy: SubsidyOut
    net_amount: Money
    executed_amount: Money | None
    created_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
