from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    computed_field,
    field_validator,
)

from app.core.money import Money, MoneyIn
from app.core.timeutil import utcnow
from app.core.types import AwareDatetime, RegionPrefix
from app.subsidies.schemas import Purpose

MAX_CARDS = 100_000
MAX_HOURS = 8760 * 3
MAX_WINDOW = timedelta(days=366)
MAX_ACCELERATORS = 50
MAX_REGION_PREFIXES = 20
# Purposes for which a request may rely on a filed model (policies.md, hz-city-compute-2024).
FILED_MODEL_PURPOSES = frozenset({Purpose.maas, Purpose.agent})


class DomesticPreference(StrEnum):
    required = "required"
    preferred = "preferred"
    any = "any"


class RequestStatus(StrEnum):
    open = "open"
    cancelled = "cancelled"


AcceleratorId = Annotated[
    str, StringConstraints(min_length=1, max_length=64), Field(examples=["huawei-ascend-910b"])
]
FilingNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class ComputeRequestCreate(BaseModel):
    """What an enterprise wants; `enterprise_id` only when the operator posts for one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cards": 64,
                    "hours": 720,
                    "earliest_start": "2026-12-01T00:00:00+08:00",
                    "latest_start": "2026-12-31T00:00:00+08:00",
                    "purpose": "training",
                    "domestic": "any",
                    "accelerator_ids": [],
                    "region_prefixes": ["3301"],
                    "allow_split": False,
                }
            ]
        },
    )

    enterprise_id: str | None = Field(
        None, max_length=40, description="Operator only; an enterprise key posts for itself"
    )
    accelerator_ids: list[AcceleratorId] = Field(
        default_factory=list,
        max_length=MAX_ACCELERATORS,
        description="Acceptable accelerator models; empty: any that meets the other constraints",
    )
    min_memory_gb: StrictInt | None = Field(
        None, ge=0, le=100_000, description="Memory per card at least this; 0 or null: no minimum"
    )
    domestic: DomesticPreference = DomesticPreference.any
    cards: StrictInt = Field(ge=1, le=MAX_CARDS)
    hours: StrictInt = Field(ge=1, le=MAX_HOURS)
    earliest_start: AwareDatetime
    latest_start: AwareDatetime = Field(
        description="At or after earliest_start, at most 366 days later"
    )
    purpose: Purpose
    filed_model: FilingNumber | None = Field(
        None, description="For maas/agent: the filing number of one of the enterprise's models"
    )
    max_net_budget: MoneyIn | None = None
    region_prefixes: list[RegionPrefix] = Field(
        default_factory=list,
        max_length=MAX_REGION_PREFIXES,
        description="GB/T 2260 prefixes (2, 4 or 6 digits) where the hardware may be",
    )
    allow_split: StrictBool = Field(
        False, description="May several offers of the same accelerator model serve it together"
    )

    @field_validator("accelerator_ids")
    @classmethod
    def _unique_accelerators(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("accelerator_ids must not repeat")
        return value

    @field_validator("region_prefixes")
    @classmethod
    def _unique_prefixes(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("region_prefixes must not repeat")
        return value

    @field_validator("latest_start")
    @classmethod
    def _window(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = utcnow()
        if value < now:
            # Nothing can start in the past (domain.md, "Compute requests"): such a
            # request could only ever be matched to time that is gone.
            raise ValueError(
                f"latest_start {value.isoformat()} has passed (now "
                f"{now.isoformat(timespec='seconds')}); a start window must reach the future"
            )
        earliest = info.data.get("earliest_start")
        if earliest is None:
            return value
        if value < earliest:
            raise ValueError("latest_start must not be before earliest_start")
        if value - earliest > MAX_WINDOW:
            raise ValueError(
                "the start window (earliest_start to latest_start) is at most 366 days"
            )
        return value

    @field_validator("filed_model")
    @classmethod
    def _only_for_model_services(cls, value: str | None, info: ValidationInfo) -> str | None:
        purpose = info.data.get("purpose")
        if value is not None and purpose is not None and purpose not in FILED_MODEL_PURPOSES:
            raise ValueError(
                f"filed_model is only for the maas and agent purposes, not {purpose.value}; "
                "leave it out"
            )
        return value


class ComputeRequestOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "req_01a2014889fc69da7c85d34c641c",
                    "enterprise_id": "ent_01a2014889e26d55515199314b89",
                    "accelerator_ids": [],
                    "min_memory_gb": None,
                    "domestic": "any",
                    "cards": 64,
                    "hours": 720,
                    "earliest_start": "2026-11-30T16:00:00Z",
                    "latest_start": "2026-12-30T16:00:00Z",
                    "purpose": "training",
                    "filed_model": None,
                    "max_net_budget": None,
                    "region_prefixes": ["3301"],
                    "allow_split": False,
                    "status": "open",
                    "created_at": "2026-11-22T03:24:20.863598Z",
                    "updated_at": "2026-11-22T03:24:20.863604Z",
                    "relies_on_filed_model": False,
                }
            ]
        },
    )

    id: str
    enterprise_id: str
    accelerator_ids: list[str]
    min_memory_gb: int | None
    domestic: DomesticPreference
    cards: int
    hours: int
    earliest_start: datetime
    latest_start: datetime
    purpose: Purpose
    filed_model: str | None
    max_net_budget: Money | None
    region_prefixes: list[str]
    allow_split: bool
    status: RequestStatus
    created_at: datetime
    updated_at: datetime

    @computed_field(  # type: ignore[prop-decorator]
        description="purpose is maas or agent and the request names one of its filed models"
    )
    @property
    def relies_on_filed_model(self) -> bool:
        return relies_on_filed_model(self.purpose, self.filed_model)


def relies_on_filed_model(purpose: str, filed_model: str | None) -> bool:
    """Whether a request relies on a filed model (the hz-city-compute-2024 30% tier)."""
    return filed_model is not None and purpose in FILED_MODEL_PURPOSES
