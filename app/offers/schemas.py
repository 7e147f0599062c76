from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from app.core.money import Money, PriceIn
from app.core.types import AwareDatetime, RegionCode

MAX_CARDS = 1_000_000


class Workload(StrEnum):
    training = "training"
    inference = "inference"


class OfferStatus(StrEnum):
    active = "active"
    paused = "paused"
    retired = "retired"


def _unique_workloads(value: list[Workload]) -> list[Workload]:
    if len(set(value)) != len(value):
        raise ValueError("workloads must not repeat")
    return value


OFFER_EXAMPLE: dict[str, Any] = {
    "external_id": "bj-910b-pool-1",
    "accelerator_id": "huawei-ascend-910b",
    "cards_total": 64,
    "price_per_card_hour": "12.00",
    "available_from": "2026-12-01T00:00:00+08:00",
    "available_until": "2027-12-01T00:00:00+08:00",
    "min_hours": 24,
    "region_code": "330108",
    "workloads": ["training", "inference"],
    "free_trial_hours": 0,
    "free_migration_support": False,
}


class OfferFields(BaseModel):
    """What a provider states about an offer (shared by create and sync)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [OFFER_EXAMPLE]})

    external_id: str = Field(min_length=1, max_length=200, description="The provider's own id")
    accelerator_id: str = Field(min_length=1, max_length=64, examples=["huawei-ascend-910b"])
    domestic: StrictBool | None = Field(
        None,
        description="Optional; must agree with the accelerator catalog, which decides it",
    )
    cards_total: StrictInt = Field(ge=1, le=MAX_CARDS)
    price_per_card_hour: PriceIn
    available_from: AwareDatetime
    available_until: AwareDatetime
    min_hours: StrictInt = Field(1, ge=1, le=100_000)
    region_code: RegionCode
    workloads: list[Workload] = Field(
        default_factory=lambda: [Workload.training, Workload.inference], min_length=1
    )
    free_trial_hours: StrictInt = Field(0, ge=0, le=100_000)
    free_migration_support: StrictBool = False
    status: OfferStatus = OfferStatus.active

    _workloads = field_validator("workloads")(_unique_workloads)

    @model_validator(mode="after")
    def _window(self) -> "OfferFields":
        if self.available_from >= self.available_until:
            raise ValueError("available_from must be before available_until")
        if self.status == OfferStatus.retired:
            raise ValueError("a new or synced offer is active or paused; DELETE retires")
        return self


class OfferCreate(OfferFields):
    provider_id: str | None = Field(
        None, max_length=40, description="Operator only; a provider key creates its own offers"
    )


class OfferUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accelerator_id: str | None = Field(None, min_length=1, max_length=64)
    domestic: StrictBool | None = None
    cards_total: StrictInt | None = Field(None, ge=1, le=MAX_CARDS)
    price_per_card_hour: PriceIn | None = None
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    min_hours: StrictInt | None = Field(None, ge=1, le=100_000)
    region_code: RegionCode | None = None
    workloads: list[Workload] | None = Field(None, min_length=1)
    free_trial_hours: StrictInt | None = Field(None, ge=0, le=100_000)
    free_migration_support: StrictBool | None = None
    status: OfferStatus | None = None

    _workloads = field_validator("workloads")(lambda v: None if v is None else _unique_workloads(v))


class OfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    provider_id: str
    external_id: str
    accelerator_id: str
    domestic: bool
    cards_total: int
    price_per_card_hour: Money
    available_from: datetime
    available_until: datetime
    min_hours: int
    region_code: str
    workloads: list[Workload]
    free_trial_hours: int
    free_migration_support: bool
    status: OfferStatus
    created_at: datetime
    updated_at: datetime


class OfferSync(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"offers": [OFFER_EXAMPLE], "retire_missing": False}]},
    )

    offers: list[OfferFields] = Field(max_length=10_000)
    retire_missing: StrictBool = Field(
        False,
        description="Retire this provider's offers whose external_id is not in the body "
        "(a full inventory sync)",
    )


class SyncResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"created": 1, "updated": 0, "unchanged": 0, "retired": 0}]}
    )

    created: int
    updated: int
    unchanged: int
    retired: int = 0


class OfferSearch(BaseModel):
    # Repeatable filters: any of the values (OR); None or empty filters nothing.
    accelerator_id: list[str] | None = None
    domestic: bool | None = None
    min_cards: int | None = None
    max_price_per_card_hour: Decimal | None = None
    region_prefix: list[str] | None = None
    provider_id: str | None = None
    status: OfferStatus | None = None
