from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.types import CreditCode, Name, RegionCode


class ProviderKind(StrEnum):
    intelligent_computing_center = "intelligent_computing_center"
    matchmaking_partner = "matchmaking_partner"


class ProviderStatus(StrEnum):
    pending = "pending"
    listed = "listed"
    rejected = "rejected"
    suspended = "suspended"
    delisted = "delisted"


class ProviderCreate(BaseModel):
    """A provider; `status` only when the operator creates it (`pending` or `listed`)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: ProviderKind
    unified_social_credit_code: CreditCode
    region_code: RegionCode
    status: ProviderStatus | None = Field(
        None, description="Operator only: `pending` (default) or `listed`"
    )


class ProviderUpdate(BaseModel):
    """Fields a provider may change about itself; status and listings are the operator's."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: ProviderKind | None = None
    region_code: RegionCode | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ProviderStatus
    reason: str | None = Field(None, max_length=500)


class ListingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    list: str = Field(min_length=1, max_length=64, examples=["binjiang-compute-partner"])
    since: date
    until: date | None = None
    reference: str | None = Field(None, max_length=500, examples=["杭高新〔2025〕9号"])

    @model_validator(mode="after")
    def _ordered(self) -> "ListingCreate":
        if self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class ListingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    list: str = Field(description="The official list id")
    since: date
    until: date | None
    reference: str | None
    created_at: datetime
    ended_at: datetime | None
    active: bool


class ProviderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: ProviderKind
    unified_social_credit_code: str
    region_code: str
    status: ProviderStatus
    listings: list[ListingOut]
    created_at: datetime
    updated_at: datetime


class ProviderCreated(ProviderOut):
    api_key: str | None = Field(
        None, description="For a self-registration: the provider's API key, shown this once"
    )
