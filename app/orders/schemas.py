from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.money import Money, MoneyIn
from app.matching.schemas import MatchOut
from app.subsidies.schemas import SubsidyOut


class QuotePartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(min_length=1, max_length=40)
    cards: int = Field(ge=1, le=1_000_000)


class QuoteCreate(BaseModel):
    """Pin one match: a single offer (`offer_id`) or a split match's `parts`."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=40)
    offer_id: str | None = Field(None, min_length=1, max_length=40)
    parts: list[QuotePartIn] | None = Field(None, min_length=2, max_length=50)

    @model_validator(mode="after")
    def _one_shape(self) -> "QuoteCreate":
        if (self.offer_id is None) == (self.parts is None):
            raise ValueError("give either offer_id or parts (a split match), not both")
        return self


class QuoteOut(MatchOut):
    id: str
    request_id: str
    enterprise_id: str
    expires_at: datetime
    created_at: datetime


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote_id: str = Field(min_length=1, max_length=40)


class OrderComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    executed_amount: MoneyIn = Field(description="What was actually executed; at most the gross")


class OrderStatus(StrEnum):
    reserved = "reserved"
    completed = "completed"
    cancelled = "cancelled"


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


class OrderOut(BaseModel):
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
