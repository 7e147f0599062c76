from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import Money, PriceIn
from app.core.types import AwareDatetime
from app.offers.schemas import Interconnect, Network, SoftwareStack
from app.requests.schemas import DomesticPreference
from app.subsidies.schemas import Purpose


class BidStatus(StrEnum):
    live = "live"
    replaced = "replaced"
    withdrawn = "withdrawn"


class BidCreate(BaseModel):
    """A price for this request on one of your active offers, at most its list price."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "offer_id": "off_01a2014889c68546fef9a270338a",
                    "price_per_card_hour": "10.50",
                    "valid_until": "2026-12-10T00:00:00+08:00",
                }
            ]
        },
    )

    offer_id: str = Field(min_length=1, max_length=40)
    price_per_card_hour: PriceIn
    valid_until: AwareDatetime = Field(description="The bid is live until then")


class BidOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    request_id: str
    offer_id: str
    provider_id: str
    price_per_card_hour: Money
    valid_until: datetime
    status: BidStatus
    created_at: datetime
    ended_at: datetime | None = None


class OpenRequestOut(BaseModel):
    """An open compute request as providers see it: what is wanted, never who wants it."""

    id: str
    district: str = Field(description="The enterprise's region_code (6 digits): never its name")
    purpose: Purpose
    cards: int
    hours: int
    earliest_start: datetime
    latest_start: datetime
    accelerator_ids: list[str]
    min_memory_gb: int | None
    domestic: DomesticPreference
    min_cards_per_node: int | None
    interconnect: Interconnect | None
    network: Network | None
    software_stacks: list[SoftwareStack]
    region_prefixes: list[str]
    allow_split: bool
    accept_bids: bool
    bids_close_at: datetime | None
