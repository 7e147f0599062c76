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
from app.models.status import OfferStatus as OfferStatus  # answered by this API

MAX_CARDS = 1_000_000


class Workload(StrEnum):
    training = "training"
    inference = "inference"


class Interconnect(StrEnum):
    nvlink = "nvlink"
    hccs = "hccs"
    pcie = "pcie"
    other = "other"


class Network(StrEnum):
    infiniband = "infiniband"
    roce = "roce"
    ethernet = "ethernet"


class SoftwareStack(StrEnum):
    cuda = "cuda"
    cann = "cann"
    bang = "bang"
    dtk = "dtk"
    rocm = "rocm"
    other = "other"


class SoftwareItem(BaseModel):
    """One software stack the offer's nodes run, and its version."""

    model_config = ConfigDict(extra="forbid")

    stack: SoftwareStack
    version: str = Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")


MAX_SOFTWARE = 12


def _unique_software(value: list[SoftwareItem] | None) -> list[SoftwareItem] | None:
    if value is not None and len({(s.stack, s.version) for s in value}) != len(value):
        raise ValueError("software must not repeat a stack and version")
    return value


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
    "cards_per_node": 8,
    "interconnect": "hccs",
    "network": "roce",
    "network_gbps": 200,
    "software": [{"stack": "cann", "version": "8.0.RC3"}],
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
    cards_per_node: StrictInt | None = Field(None, ge=1, le=1024, description="Cards in one node")
    interconnect: Interconnect | None = Field(None, description="How a node's cards are joined")
    network: Network | None = Field(None, description="How nodes are joined")
    network_gbps: StrictInt | None = Field(
        None, ge=1, le=100_000, description="Network bandwidth per node, Gbit/s"
    )
    software: list[SoftwareItem] = Field(default_factory=list, max_length=MAX_SOFTWARE)

    _workloads = field_validator("workloads")(_unique_workloads)
    _software = field_validator("software")(_unique_software)

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
    # Optional facts: an explicit null clears them.
    cards_per_node: StrictInt | None = Field(None, ge=1, le=1024)
    interconnect: Interconnect | None = None
    network: Network | None = None
    network_gbps: StrictInt | None = Field(None, ge=1, le=100_000)
    software: list[SoftwareItem] | None = Field(None, max_length=MAX_SOFTWARE)

    _workloads = field_validator("workloads")(lambda v: None if v is None else _unique_workloads(v))
    _software = field_validator("software")(_unique_software)


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
    cards_per_node: int | None = None
    interconnect: Interconnect | None = None
    network: Network | None = None
    network_gbps: int | None = None
    software: list[SoftwareItem] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class OfferListItem(OfferOut):
    free_cards: int | None = Field(
        None,
        description="With free_from and free_until: the most cards an order could hold over "
        "that whole window now (0 when the offer is not available over all of it)",
    )


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
        json_schema_extra={
            "examples": [
                {"created": 1, "updated": 0, "unchanged": 0, "retired": 0, "reactivated": 0}
            ]
        }
    )

    created: int
    updated: int = Field(description="Offers changed, not counting those reactivated")
    unchanged: int
    retired: int = 0
    reactivated: int = Field(
        0,
        description="Retired offers reopened by a row that states its status (active or "
        "paused); a row that leaves the status out of a retired offer is a 409",
    )


class OfferSort(StrEnum):
    price_per_card_hour = "price_per_card_hour"
    price_per_card_hour_desc = "-price_per_card_hour"
    free_cards = "free_cards"
    free_cards_desc = "-free_cards"
    available_from = "available_from"
    created_at = "created_at"


class OfferSearch(BaseModel):
    # Repeatable filters: any of the values (OR); None or empty filters nothing.
    accelerator_id: list[str] | None = None
    domestic: bool | None = None
    min_cards: int | None = None
    max_price_per_card_hour: Decimal | None = None
    region_prefix: list[str] | None = None
    provider_id: str | None = None
    status: OfferStatus | None = None
    cards_per_node: int | None = None
    interconnect: Interconnect | None = None
    network: Network | None = None
    software_stacks: list[SoftwareStack] = Field(default_factory=list)
    free_from: datetime | None = None
    free_until: datetime | None = None
    min_free_cards: int | None = None
    sort: OfferSort = OfferSort.price_per_card_hour
