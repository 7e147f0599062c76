"""Request and response models of the subsidy programs and the what-if quote.

Input models forbid unknown fields (a 422 names the stray field); amounts and
rates are decimal strings (``app.core.money``). Whether a list id is known is
checked by the service against the database, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from app.core.money import Money, MoneyIn, PriceIn, Rate, RateIn, RatioIn
from app.core.types import real_region_code, region_prefix
from app.models.status import ProgramStatus as ProgramStatus  # answered by this API
from app.models.status import ProviderStatus
from app.subsidies.rules import (
    Consideration,
    Contract,
    EnterpriseFacts,
    Program,
    ProviderFacts,
    SubsidyResult,
)

# --------------------------------------------------------------------------- named types


class Purpose(StrEnum):
    training = "training"
    inference = "inference"
    application = "application"
    maas = "maas"
    agent = "agent"


class ProgramBase(StrEnum):
    contract_amount = "contract_amount"
    executed_amount = "executed_amount"
    settled_amount = "settled_amount"


class VoucherType(StrEnum):
    compute = "compute"
    model = "model"
    corpus = "corpus"
    innovation = "innovation"


class ProgramLevel(StrEnum):
    national = "national"
    province = "province"
    city = "city"
    district = "district"


class ClaimsOpen(StrEnum):
    on_settlement = "on_settlement"
    after_year_end = "after_year_end"


class CappedBy(StrEnum):
    enterprise_cap = "enterprise_cap"
    program_budget = "program_budget"


def _no_number_date(value: Any) -> Any:
    # JSON has no date type; a number would be read as a Unix timestamp, which no one means.
    if isinstance(value, bool | int | float):
        raise ValueError("must be a date string YYYY-MM-DD")
    return value


PolicyDate = Annotated[date, BeforeValidator(_no_number_date)]
ProgramId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$"),
    Field(examples=["hz-city-compute-2024"]),
]
ListId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$"), Field(examples=["hz-planned-icc"])
]
# GB/T 2260 prefixes: province (2 digits), city (4) or county/district (6).
# Both checked against the GB/T 2260 table the service ships (app/core/regions.py).
RegionPrefix = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{2}([0-9]{2}){0,2}$"),
    Field(examples=["3301"]),
    AfterValidator(region_prefix),
]
RegionCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{6}$"),
    Field(examples=["330108"]),
    AfterValidator(real_region_code),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SourceText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]

_INPUT = ConfigDict(extra="forbid")


def _is_none(value: Any) -> bool:
    return value is None


def _unique(values: list[Any] | None, what: str) -> None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError(f"{what}: duplicates are not allowed")


# --------------------------------------------------------------------------- programs


class RateWhen(BaseModel):
    """Conditions of a rate tier; a null (or absent) condition is not tested."""

    model_config = _INPUT

    # Untested conditions are left out of answers, as in the policies.md example.
    domestic: StrictBool | None = Field(default=None, exclude_if=_is_none)
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=5)] | None = Field(
        default=None, exclude_if=_is_none
    )
    relies_on_filed_model: StrictBool | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="after")
    def _check(self) -> RateWhen:
        _unique(self.purposes, "purposes")
        return self


class RateTierIn(BaseModel):
    model_config = _INPUT

    rate: RateIn
    when: RateWhen = Field(default_factory=RateWhen)


class RateTierOut(BaseModel):
    rate: Rate
    when: RateWhen


class RegionSet(BaseModel):
    """Region-code prefixes: the enterprise's region_code must start with an included
    prefix and with no excluded one."""

    model_config = _INPUT

    include: Annotated[list[RegionPrefix], Field(min_length=1, max_length=100)]
    exclude: Annotated[list[RegionPrefix], Field(max_length=100)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> RegionSet:
        _unique(self.include, "include")
        _unique(self.exclude, "exclude")
        return self


class ProgramSource(BaseModel):
    model_config = _INPUT

    document: SourceText
    clause: SourceText


Rates = Annotated[list[RateTierIn], Field(min_length=1, max_length=20)]
ClaimsClose = Annotated[
    str,
    StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
    Field(examples=["06-30"], description="MM-DD: the last day of year Y+1 to claim year Y"),
]
PayerId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$"), Field(examples=["hangzhou-city"])
]


class FundingShareIn(BaseModel):
    model_config = _INPUT

    payer: PayerId
    share: RateIn


class FundingShareOut(BaseModel):
    payer: str
    share: Money


Funding = Annotated[list[FundingShareIn], Field(min_length=1, max_length=10)]


def _check_claim_fields(data: Any) -> None:
    """claims_close a day every year has; funding shares summing to 1.00 with unique
    payers (the rules module says so, in the same words, for stored programs)."""
    from app.subsidies.rules import _claims_close, _funding

    if getattr(data, "claims_close", None) is not None:
        _claims_close(data.claims_close)
    if getattr(data, "funding", None) is not None:
        _funding([f.model_dump(mode="json") for f in data.funding], "program")


Purposes = Annotated[list[Purpose], Field(min_length=1, max_length=5)]
ProviderLists = Annotated[list[ListId], Field(max_length=50)]


def _check_dates(effective_from: date | None, effective_until: date | None) -> None:
    if effective_from is not None and effective_until is not None:
        if effective_from > effective_until:
            raise ValueError("effective_from must not be after effective_until")


class ProgramCreate(BaseModel):
    """A new program, in the policies.md "program as data" format."""

    model_config = _INPUT

    id: ProgramId
    name: Name
    voucher_type: VoucherType
    level: ProgramLevel
    status: ProgramStatus = ProgramStatus.draft
    effective_from: PolicyDate | None = None
    effective_until: PolicyDate | None = None
    enterprise_regions: RegionSet
    provider_lists_any: ProviderLists = Field(
        default_factory=list, description="empty: any listed provider"
    )
    purposes: Purposes
    base: ProgramBase
    rates: Rates
    enterprise_annual_cap: MoneyIn | None = Field(description="null: no cap")
    cap_relaxable_for_foundation_model_enterprises: StrictBool = False
    annual_budget: MoneyIn | None = Field(description="null: no budget limit")
    source: ProgramSource
    claims_open: ClaimsOpen = Field(
        ClaimsOpen.on_settlement,
        description="on_settlement: a settled order is claimable at once; after_year_end: "
        "claims for year Y open on 1 January of Y+1 (Asia/Shanghai)",
    )
    claims_close: ClaimsClose | None = Field(None, description="null: no deadline")
    excludes_related_parties: StrictBool = False
    dual_review_above: PriceIn | None = Field(
        None, description="claims above it need two approvals by two reviewer keys"
    )
    funding: Funding | None = Field(
        None, description="[{payer, share}], shares summing to 1.00; default: the program pays"
    )
    max_price_ratio: RatioIn | None = Field(
        None,
        description="a contract priced above this × the price index's active-offer median "
        "for its accelerator gets nothing from the program; null: no limit",
    )

    @model_validator(mode="after")
    def _check(self) -> ProgramCreate:
        _check_claim_fields(self)
        _check_dates(self.effective_from, self.effective_until)
        if self.status is ProgramStatus.active and self.effective_from is None:
            raise ValueError("an active program needs effective_from")
        _unique(self.purposes, "purposes")
        _unique(self.provider_lists_any, "provider_lists_any")
        return self

    def to_data(self) -> dict[str, Any]:
        """The policies.md JSON format, ready for ``Program.from_data`` or storage."""
        return self.model_dump(mode="json")

    def to_program(self) -> Program:
        return Program.from_data(self.to_data())


# Fields a PATCH may set to null; every other field, when given, must have a value.
_NULLABLE_IN_UPDATE = frozenset(
    {
        "effective_from",
        "effective_until",
        "enterprise_annual_cap",
        "annual_budget",
        "claims_close",
        "dual_review_above",
        "max_price_ratio",
    }
)


def _null_only_where_allowed(schema: dict[str, Any]) -> None:
    """The document says what the validator says: a field left out is unchanged, and only
    the fields in _NULLABLE_IN_UPDATE may be sent as null."""
    for name, prop in schema.get("properties", {}).items():
        branches = prop.get("anyOf")
        if name in _NULLABLE_IN_UPDATE or not branches or {"type": "null"} not in branches:
            continue
        kept = [b for b in branches if b != {"type": "null"}]
        del prop["anyOf"]
        prop.pop("default", None)
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept


class ProgramUpdate(BaseModel):
    """A PATCH: only the given fields change (the id never does). The service checks
    the merged program again (e.g. that an active program has effective_from)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_null_only_where_allowed)

    name: Name | None = None
    voucher_type: VoucherType | None = None
    level: ProgramLevel | None = None
    status: ProgramStatus | None = None
    effective_from: PolicyDate | None = None
    effective_until: PolicyDate | None = None
    enterprise_regions: RegionSet | None = None
    provider_lists_any: ProviderLists | None = None
    purposes: Purposes | None = None
    base: ProgramBase | None = None
    rates: Rates | None = None
    enterprise_annual_cap: MoneyIn | None = None
    cap_relaxable_for_foundation_model_enterprises: StrictBool | None = None
    annual_budget: MoneyIn | None = None
    source: ProgramSource | None = None
    claims_open: ClaimsOpen | None = None
    claims_close: ClaimsClose | None = None
    excludes_related_parties: StrictBool | None = None
    dual_review_above: PriceIn | None = None
    funding: Funding | None = None
    max_price_ratio: RatioIn | None = None

    @model_validator(mode="after")
    def _check(self) -> ProgramUpdate:
        _check_claim_fields(self)
        for name in sorted(self.model_fields_set - _NULLABLE_IN_UPDATE):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        _check_dates(self.effective_from, self.effective_until)
        if (
            self.status is ProgramStatus.active
            and "effective_from" in self.model_fields_set
            and self.effective_from is None
        ):
            raise ValueError("an active program needs effective_from")
        _unique(self.purposes, "purposes")
        _unique(self.provider_lists_any, "provider_lists_any")
        return self

    def apply_to(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The stored program (policies.md JSON format) with this patch applied."""
        merged = dict(data)
        merged.update(self.model_dump(mode="json", include=self.model_fields_set))
        return merged


class ProgramOut(BaseModel):
    id: str
    name: str
    voucher_type: VoucherType
    level: ProgramLevel
    status: ProgramStatus
    effective_from: date | None
    effective_until: date | None
    enterprise_regions: RegionSet
    provider_lists_any: list[str]
    purposes: list[Purpose]
    base: ProgramBase
    rates: list[RateTierOut]
    enterprise_annual_cap: Money | None
    cap_relaxable_for_foundation_model_enterprises: bool
    annual_budget: Money | None
    source: ProgramSource
    claims_open: ClaimsOpen
    claims_close: str | None
    excludes_related_parties: bool
    dual_review_above: Money | None
    funding: list[FundingShareOut]
    max_price_ratio: Money | None = Field(
        description="null: no limit on the contract price relative to the price index"
    )
    budget_used: Money = Field(description="subsidy reserved and settled under it this year")
    budget_remaining: Money | None = Field(description="null when the program has no budget")
    version: int
    updated_at: datetime


def program_out(
    program: Program, *, budget_used: Decimal, version: int, updated_at: datetime
) -> ProgramOut:
    """A stored program as the API shows it, with this year's budget figures."""
    data = program.to_data()
    remaining = (
        None
        if program.annual_budget is None
        else max(Decimal("0.00"), program.annual_budget - budget_used)
    )
    return ProgramOut.model_validate(
        {**data, "budget_used": budget_used, "budget_remaining": remaining}
        | {"version": version, "updated_at": updated_at}
    )


# --------------------------------------------------------------------------- what-if quote


class SubsidyQuoteEnterprise(BaseModel):
    model_config = _INPUT

    region_code: RegionCode
    is_foundation_model_enterprise: StrictBool = False
    relies_on_filed_model: StrictBool = Field(
        default=False, description="the request relies on one of the enterprise's filed models"
    )
    relaxed_caps: Annotated[dict[ProgramId, MoneyIn], Field(max_length=100)] = Field(
        default_factory=dict, description="program id -> operator-granted cap"
    )


class SubsidyQuoteProvider(BaseModel):
    model_config = _INPUT

    lists: Annotated[list[ListId], Field(max_length=50)] = Field(
        default_factory=list, description="the lists the provider is on at the contract date"
    )
    status: ProviderStatus


class SubsidyQuoteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "enterprise": {
                        "region_code": "330108",
                        "is_foundation_model_enterprise": False,
                        "relies_on_filed_model": False,
                        "relaxed_caps": {},
                    },
                    "provider": {"lists": ["binjiang-compute-partner"], "status": "listed"},
                    "domestic": True,
                    "purpose": "training",
                    "gross_amount": "552960.00",
                    "contract_date": "2026-03-01",
                    "already_claimed": {"binjiang-compute-2025": "0.00"},
                }
            ]
        },
    )

    enterprise: SubsidyQuoteEnterprise
    provider: SubsidyQuoteProvider
    domestic: StrictBool
    purpose: Purpose
    gross_amount: MoneyIn
    contract_date: PolicyDate
    already_claimed: Annotated[dict[ProgramId, MoneyIn], Field(max_length=100)] = Field(
        default_factory=dict,
        description="program id -> subsidy this enterprise already reserved or settled that year",
    )
    accelerator_id: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None,
        description="the contract's accelerator: its price index median is what a program's "
        "max_price_ratio compares the price with",
    )
    price_per_card_hour: PriceIn | None = Field(
        None,
        description="the contract's price; a program with a max_price_ratio pays nothing "
        "on a contract whose price is not stated",
    )

    def to_facts(
        self, index_median: Decimal | None = None
    ) -> tuple[EnterpriseFacts, ProviderFacts, Contract]:
        """The rule engine's inputs (usage comes from ``already_claimed`` and the budgets)."""
        enterprise = EnterpriseFacts(
            region_code=self.enterprise.region_code,
            is_foundation_model_enterprise=self.enterprise.is_foundation_model_enterprise,
            relies_on_filed_model=self.enterprise.relies_on_filed_model,
            relaxed_caps=dict(self.enterprise.relaxed_caps),
        )
        provider = ProviderFacts(
            status=self.provider.status.value, lists=frozenset(self.provider.lists)
        )
        contract = Contract(
            domestic=self.domestic,
            purpose=self.purpose.value,
            gross_amount=self.gross_amount,
            contract_date=self.contract_date,
            price_per_card_hour=self.price_per_card_hour,
            index_median=index_median,
        )
        return enterprise, provider, contract


class SubsidyOut(BaseModel):
    program_id: str | None
    rate: Rate
    amount: Money
    base: ProgramBase | None
    capped_by: CappedBy | None


class ConsideredOut(BaseModel):
    program_id: str
    eligible: bool
    reason: str
    rate: Rate | None
    raw_amount: Money
    amount: Money
    capped_by: CappedBy | None
    base: ProgramBase


class SubsidyQuoteResponse(BaseModel):
    subsidy: SubsidyOut
    gross_amount: Money
    net_amount: Money
    considered: list[ConsideredOut]


def subsidy_out(result: SubsidyResult) -> SubsidyOut:
    return SubsidyOut(
        program_id=result.program_id,
        rate=result.rate,
        amount=result.amount,
        base=ProgramBase(result.base) if result.base is not None else None,
        capped_by=CappedBy(result.capped_by) if result.capped_by is not None else None,
    )


def considered_out(considered: Consideration) -> ConsideredOut:
    return ConsideredOut(
        program_id=considered.program_id,
        eligible=considered.eligible,
        reason=considered.reason,
        rate=considered.rate,
        raw_amount=considered.raw_amount,
        amount=considered.amount,
        capped_by=CappedBy(considered.capped_by) if considered.capped_by is not None else None,
        base=ProgramBase(considered.base),
    )


def quote_response(gross_amount: Decimal, result: SubsidyResult) -> SubsidyQuoteResponse:
    """net = gross − subsidy (step 6), with every program considered."""
    return SubsidyQuoteResponse(
        subsidy=subsidy_out(result),
        gross_amount=gross_amount,
        net_amount=gross_amount - result.amount,
        considered=[considered_out(c) for c in result.considered],
    )
