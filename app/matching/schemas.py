from datetime import datetime

from pydantic import BaseModel, Field

from app.core.money import Money
from app.subsidies.schemas import ConsideredOut, SubsidyOut


class MatchPart(BaseModel):
    """One contract of a split match: its own provider, and so its own best program."""

    offer_id: str
    provider_id: str
    accelerator_id: str
    domestic: bool
    cards: int
    price_per_card_hour: Money
    gross_amount: Money
    subsidy: SubsidyOut
    net_amount: Money
    free_trial_hours: int
    free_migration_support: bool
    considered: list[ConsideredOut]


class MatchOut(BaseModel):
    """One way to serve a request, with the net price after the best voucher."""

    offer_id: str | None = Field(description="null for a split match (see `parts`)")
    provider_id: str | None = Field(description="null for a split match (see `parts`)")
    accelerator_id: str
    domestic: bool
    cards: int
    hours: int
    start: datetime
    end: datetime
    price_per_card_hour: Money | None = Field(description="null for a split match")
    gross_amount: Money
    subsidy: SubsidyOut = Field(
        description="For a split match: the sum of the parts' subsidies, `program_id` null and "
        "`rate` the effective rate"
    )
    net_amount: Money
    net_price_per_card_hour: Money
    free_trial_hours: int
    free_migration_support: bool
    considered: list[ConsideredOut] = Field(
        description="Every program considered and why (per part for a split match)"
    )
    parts: list[MatchPart] | None = Field(None, description="Only for a split match")


class MatchList(BaseModel):
    items: list[MatchOut]
    next_cursor: str | None = Field(None, description="Always null: matches are a top-k")
