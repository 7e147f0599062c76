from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


# policies.md worked example 1: 64 cards × 720 h × 12.00 in Binjiang, domestic hardware.
MATCH_EXAMPLE: dict[str, Any] = {
    "offer_id": "off_01a2014889c68546fef9a270338a",
    "provider_id": "prv_01a201488973d54e4c06176fd239",
    "accelerator_id": "huawei-ascend-910b",
    "domestic": True,
    "cards": 64,
    "hours": 720,
    "start": "2026-11-30T16:00:00Z",
    "end": "2026-12-30T16:00:00Z",
    "price_per_card_hour": "12.00",
    "gross_amount": "552960.00",
    "subsidy": {
        "program_id": "binjiang-compute-2025",
        "rate": "0.60",
        "amount": "331776.00",
        "base": "settled_amount",
        "capped_by": None,
    },
    "net_amount": "221184.00",
    "net_price_per_card_hour": "4.80",
    "free_trial_hours": 0,
    "free_migration_support": False,
    "effective_card_hours": "46080.00",
    "net_per_effective_card_hour": "4.80",
    "considered": [
        {
            "program_id": "binjiang-compute-2025",
            "eligible": True,
            "reason": "rate 0.60 (domestic hardware); 0.60 × 552960.00 = 331776.00 rounded "
            "down to the fen, on the settled amount (estimated as the gross amount until "
            "settlement)",
            "rate": "0.60",
            "raw_amount": "331776.00",
            "amount": "331776.00",
            "capped_by": None,
            "base": "settled_amount",
        },
        {
            "program_id": "hz-city-compute-2024",
            "eligible": False,
            "reason": "provider is not on any of: hz-matchmaking-partner, hz-planned-icc",
            "rate": None,
            "raw_amount": "0.00",
            "amount": "0.00",
            "capped_by": None,
            "base": "contract_amount",
        },
    ],
    "parts": None,
}


class MatchOut(BaseModel):
    """One way to serve a request, with the net price after the best voucher."""

    model_config = ConfigDict(json_schema_extra={"examples": [MATCH_EXAMPLE]})

    offer_id: str | None = Field(description="null for a split match (see `parts`)")
    provider_id: str | None = Field(description="null for a split match (see `parts`)")
    bid_id: str | None = Field(
        None, description="The provider's bid this match is priced at; null at list price"
    )
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
    effective_card_hours: str | None = Field(
        None,
        description="cards × hours × the model's perf_index for the request's workload "
        "(A100-equivalent card-hours); null where the catalog has no index",
        examples=["46080.00"],
    )
    net_per_effective_card_hour: Money | None = Field(
        None, description="net_amount ÷ effective_card_hours, to the fen; null without an index"
    )
    considered: list[ConsideredOut] = Field(
        description="Every program considered and why (per part for a split match)"
    )
    parts: list[MatchPart] | None = Field(None, description="Only for a split match")


class MatchList(BaseModel):
    items: list[MatchOut]
    next_cursor: str | None = Field(None, description="Always null: matches are a top-k")
