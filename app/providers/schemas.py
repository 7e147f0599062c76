from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.types import CreditCode, Day, Name, RegionCode, RelatedParties


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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "滨江智算中心",
                    "kind": "intelligent_computing_center",
                    "unified_social_credit_code": "91330108MA2H2XWL36",
                    "region_code": "330108",
                    "status": "listed",
                }
            ]
        },
    )

    name: Name
    kind: ProviderKind
    unified_social_credit_code: CreditCode
    region_code: RegionCode
    status: ProviderStatus | None = Field(
        None, description="Operator only: `pending` (default) or `listed`"
    )
    related_parties: RelatedParties | None = Field(
        None,
        description="Unified social credit codes of related parties (关联方): companies that "
        "control it, it controls, or share a controller with it",
    )


class ProviderUpdate(BaseModel):
    """Fields a provider may change about itself; status and listings are the operator's."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: ProviderKind | None = None
    region_code: RegionCode | None = None
    related_parties: RelatedParties | None = Field(
        None,
        description="Unified social credit codes of related parties (关联方): companies that "
        "control it, it controls, or share a controller with it; replaces the list, and "
        "only the operator removes a code",
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "listed", "reason": "documents checked"}]},
    )

    status: ProviderStatus
    reason: str | None = Field(None, max_length=500)


class ListingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "list": "binjiang-compute-partner",
                    "since": "2025-07-01",
                    "until": None,
                    "reference": "杭高新〔2025〕9号",
                }
            ]
        },
    )

    list: str = Field(min_length=1, max_length=64, examples=["binjiang-compute-partner"])
    since: Day
    until: Day | None = None
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
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "prv_01a201488973d54e4c06176fd239",
                    "name": "滨江智算中心",
                    "kind": "intelligent_computing_center",
                    "unified_social_credit_code": "91330108MA2H2XWL36",
                    "region_code": "330108",
                    "status": "listed",
                    "related_parties": [],
                    "listings": [
                        {
                            "id": "lst_01a20148899fc01072d0d01219d7",
                            "list": "binjiang-compute-partner",
                            "since": "2025-07-01",
                            "until": None,
                            "reference": "杭高新〔2025〕9号",
                            "created_at": "2026-11-22T03:24:20.770230Z",
                            "ended_at": None,
                            "active": True,
                        }
                    ],
                    "created_at": "2026-11-22T03:24:20.726357Z",
                    "updated_at": "2026-11-22T03:24:20.770230Z",
                }
            ]
        },
    )

    id: str
    name: str
    kind: ProviderKind
    unified_social_credit_code: str
    region_code: str
    status: ProviderStatus
    related_parties: list[str]
    listings: list[ListingOut]
    created_at: datetime
    updated_at: datetime


class ProviderCreated(ProviderOut):
    api_key: str | None = Field(
        None, description="For a self-registration: the provider's API key, shown this once"
    )
