from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from app.core.money import Money, MoneyIn
from app.core.timeutil import today_shanghai
from app.core.types import CreditCode, Name, RegionCode, RelatedParties

MAX_FILED_MODELS = 200
FOUNDATION_FLAG_IS_OPERATORS = (
    "is_foundation_model_enterprise is set only by the operator; leave it out"
)

FilingNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(examples=["Zhejiang-HangzhouModel-202405010001"]),
]


def _no_number_date(value: Any) -> Any:
    # JSON has no date type; a number would be read as a Unix timestamp, which no one means.
    if isinstance(value, bool | int | float):
        raise ValueError("must be a date string YYYY-MM-DD")
    return value


FilingDate = Annotated[date, BeforeValidator(_no_number_date)]


class FiledModel(BaseModel):
    """A generative AI model the enterprise filed with the Cyberspace Administration (经备案)."""

    model_config = ConfigDict(extra="forbid")

    filing_number: FilingNumber
    name: Name
    filed_on: FilingDate

    @field_validator("filed_on")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > today_shanghai():
            raise ValueError("filed_on cannot be in the future")
        return value


def _unique_filings(value: list[FiledModel] | None) -> list[FiledModel] | None:
    if value is None:
        return None
    seen: set[str] = set()
    for model in value:
        if model.filing_number in seen:
            raise ValueError(f"filing_number {model.filing_number!r} appears twice")
        seen.add(model.filing_number)
    return value


class EnterpriseCreate(BaseModel):
    """An enterprise; `is_foundation_model_enterprise` only when the operator creates it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "杭州模型工场科技有限公司",
                    "unified_social_credit_code": "91330108MA2H2XWL36",
                    "region_code": "330108",
                    "filed_models": [
                        {
                            "filing_number": "Zhejiang-HangzhouModel-202405010001",
                            "name": "西湖大模型",
                            "filed_on": "2024-05-01",
                        }
                    ],
                }
            ]
        },
    )

    name: Name
    unified_social_credit_code: CreditCode
    region_code: RegionCode
    is_foundation_model_enterprise: StrictBool | None = Field(
        None, description="Operator only (生成式多模态基础大模型企业); default false"
    )
    filed_models: list[FiledModel] = Field(default_factory=list, max_length=MAX_FILED_MODELS)
    related_parties: RelatedParties | None = Field(
        None,
        description="Unified social credit codes of related parties (关联方): companies that "
        "control it, it controls, or share a controller with it",
    )

    _filings = field_validator("filed_models")(_unique_filings)


class EnterpriseUpdate(BaseModel):
    """Fields an enterprise may change about itself; the foundation-model flag is the operator's.

    `filed_models`, when sent, replaces the whole list.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    region_code: RegionCode | None = None
    filed_models: list[FiledModel] | None = Field(None, max_length=MAX_FILED_MODELS)
    is_foundation_model_enterprise: StrictBool | None = Field(None, description="Operator only")
    related_parties: RelatedParties | None = Field(
        None,
        description="Unified social credit codes of related parties (关联方): companies that "
        "control it, it controls, or share a controller with it; replaces the list, and "
        "only the operator removes a code",
    )

    _filings = field_validator("filed_models")(_unique_filings)


class FiledModelOut(BaseModel):
    filing_number: str
    name: str
    filed_on: date


class EnterpriseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    unified_social_credit_code: str
    region_code: str
    is_foundation_model_enterprise: bool
    filed_models: list[FiledModelOut]
    related_parties: list[str]
    relaxed_caps: dict[str, Money] = Field(
        description="program id -> operator-granted annual cap (foundation-model enterprises)",
        examples=[{"hz-city-compute-2024": "20000000.00"}],
    )
    created_at: datetime
    updated_at: datetime


class EnterpriseCreated(EnterpriseOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "ent_01a2014889e26d55515199314b89",
                    "name": "杭州模型工场科技有限公司",
                    "unified_social_credit_code": "91330108MA2H2XWL36",
                    "region_code": "330108",
                    "is_foundation_model_enterprise": False,
                    "filed_models": [],
                    "related_parties": [],
                    "relaxed_caps": {},
                    "created_at": "2026-11-22T03:24:20.836919Z",
                    "updated_at": "2026-11-22T03:24:20.836926Z",
                    "api_key": "cm_jeFqjt41YhHlj_ddxkTLoIiGZmlqmZRAKFzj5Ju0Cec",
                }
            ]
        }
    )

    api_key: str | None = Field(
        None, description="For a self-registration: the enterprise's API key, shown this once"
    )


class CapRelaxationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    annual_cap: MoneyIn = Field(
        description="The enterprise's annual cap under the program; above the program's own cap"
    )
    reference: str | None = Field(None, max_length=500, examples=["杭数资〔2025〕3号"])


class CapRelaxationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    enterprise_id: str
    program_id: str
    annual_cap: Money
    reference: str | None
    granted_at: datetime
