"""Voucher claims as the API reads and answers them (claims.md "A claim")."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.money import Money, MoneyIn, PriceIn
from app.subsidies.schemas import PolicyDate, ProgramId

_INPUT = ConfigDict(extra="forbid")
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Year = Annotated[int, Field(ge=2000, le=2100, examples=[2026])]


class ClaimStatus(StrEnum):
    submitted = "submitted"
    awaiting_second_review = "awaiting_second_review"
    approved = "approved"
    paid = "paid"
    rejected = "rejected"
    returned = "returned"


class DocumentKind(StrEnum):
    contract = "contract"
    invoice = "invoice"
    payment = "payment"
    delivery = "delivery"


# What each kind of document must carry, beyond its order and evidence.
REQUIRED = {
    DocumentKind.contract: ("number",),
    DocumentKind.invoice: ("number", "amount", "issued_on"),
    DocumentKind.payment: ("reference", "amount", "paid_on"),
    DocumentKind.delivery: ("number",),
}


class DocumentIn(BaseModel):
    """A contract, an invoice (发票), a proof of payment or the provider's delivery
    record (交付凭证) for one order, with the evidence file that shows it."""

    model_config = _INPUT

    kind: DocumentKind
    order_id: Id
    number: Ref | None = None
    reference: Ref | None = None
    amount: MoneyIn | None = None
    issued_on: PolicyDate | None = None
    paid_on: PolicyDate | None = None
    evidence_id: Id

    @model_validator(mode="after")
    def _check(self) -> DocumentIn:
        missing = [name for name in REQUIRED[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind.value} document needs {', '.join(missing)}")
        return self

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


Documents = Annotated[list[DocumentIn], Field(max_length=2000)]


class ClaimCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "program_id": "hz-city-compute-2024",
                    "year": 2026,
                    "order_ids": ["ord_019ae5b2c4d1a1b2c3d4e5f6a7b8"],
                    "documents": [
                        {
                            "kind": "contract",
                            "order_id": "ord_019ae5b2c4d1a1b2c3d4e5f6a7b8",
                            "number": "HT-2026-001",
                            "evidence_id": "evd_019ae5b2c4d1a1b2c3d4e5f6a7b8",
                        },
                        {
                            "kind": "invoice",
                            "order_id": "ord_019ae5b2c4d1a1b2c3d4e5f6a7b8",
                            "number": "24332000000012345678",
                            "amount": "100000.00",
                            "issued_on": "2026-05-02",
                            "evidence_id": "evd_019ae5b2c4d1a1b2c3d4e5f6a7c9",
                        },
                        {
                            "kind": "payment",
                            "order_id": "ord_019ae5b2c4d1a1b2c3d4e5f6a7b8",
                            "reference": "BANK-REF-1",
                            "amount": "100000.00",
                            "paid_on": "2026-05-03",
                            "evidence_id": "evd_019ae5b2c4d1a1b2c3d4e5f6a7d0",
                        },
                    ],
                }
            ]
        },
    )

    program_id: ProgramId
    year: Year
    order_ids: Annotated[list[Id], Field(min_length=1, max_length=500)]
    documents: Documents = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ClaimCreate:
        if len(set(self.order_ids)) != len(self.order_ids):
            raise ValueError("order_ids: duplicates are not allowed")
        return self


class DocumentsUpdate(BaseModel):
    """A returned claim's documents, replaced whole before it is submitted again."""

    model_config = _INPUT

    documents: Documents


class ReviewDecision(StrEnum):
    approve = "approve"
    reject = "reject"
    # "return" is a Python keyword: the member is named return_.
    return_ = "return"


class ReviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"decision": "approve"},
                {"decision": "approve", "approved_amount": "90000.00", "reason": "one invoice"},
                {"decision": "return", "reason": "the payment proof is unreadable"},
            ]
        },
    )

    decision: ReviewDecision
    approved_amount: MoneyIn | None = Field(
        None, description="approve only: at most the claimed amount (default: all of it)"
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = (
        Field(None, description="required to reject or return")
    )

    @model_validator(mode="after")
    def _check(self) -> ReviewIn:
        if self.decision is not ReviewDecision.approve:
            if not self.reason:
                raise ValueError(f"a decision to {self.decision.value} needs a reason")
            if self.approved_amount is not None:
                raise ValueError("approved_amount goes with an approval only")
        return self


class DisbursementIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": "30000.00", "paid_on": "2027-02-10", "bank_reference": "TRX-889"}
            ]
        },
    )

    amount: PriceIn
    paid_on: PolicyDate
    bank_reference: Ref


class Check(BaseModel):
    check: str = Field(examples=["invoices_cover"])
    passed: bool
    detail: str


class ClaimPartOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_id: str
    part_id: str
    provider_id: str
    settled_subsidy: Money
    approved_amount: Money | None
    disbursed_amount: Money


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    round: int
    decision: str
    approved_amount: Money | None
    reason: str | None
    reviewer_key_id: str
    reviewer_role: str
    at: datetime


class Split(BaseModel):
    payer: str
    share: str
    amount: Money


class DisbursementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    claim_id: str
    amount: Money
    paid_on: date
    bank_reference: str
    splits: list[Split]
    by_key_id: str
    at: datetime


class ClaimOut(BaseModel):
    id: str
    program_id: str
    year: int
    enterprise_id: str
    status: ClaimStatus
    amount: Money = Field(description="Σ settled subsidy of the claimed parts (the service's)")
    approved_amount: Money | None
    disbursed_amount: Money
    order_ids: list[str]
    parts: list[ClaimPartOut]
    documents: list[dict[str, Any]]
    checks: list[Check]
    reviews: list[ReviewOut]
    disbursements: list[DisbursementOut]
    round: int = Field(description="1, and one more for each resubmission after a return")
    filed_by_key_id: str | None
    submitted_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


class Actor(BaseModel):
    key_id: str | None
    role: str


class ClaimEventOut(BaseModel):
    seq: int
    claim_id: str
    kind: str = Field(examples=["submitted"])
    at: str = Field(description="UTC instant, the text that was hashed")
    actor: Actor
    data: dict[str, Any]
    prev_hash: str
    hash: str = Field(
        description="hex SHA-256 of prev_hash + the canonical JSON of every other field"
    )


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


class Figures(BaseModel):
    claimed: Money
    approved: Money
    paid: Money


class DistrictFigures(Figures):
    region_code: str


class OriginFigures(Figures):
    origin: str = Field(examples=["domestic"], description="domestic or non_domestic")


class PayerFigures(BaseModel):
    payer: str
    paid: Money


class EnterpriseFigures(Figures):
    enterprise_id: str
    name: str


class ProgramReport(BaseModel):
    program_id: str
    year: int
    claims: int
    budget: Money | None
    reserved: Money = Field(description="Held for orders not yet settled")
    settled: Money = Field(description="Settled, less what reviews did not approve")
    claimed: Money = Field(description="Σ amount of claims not rejected")
    approved: Money
    paid: Money
    remaining: Money | None = Field(description="budget − reserved − settled (null: none)")
    by_district: list[DistrictFigures]
    by_origin: list[OriginFigures]
    by_payer: list[PayerFigures]
    top_enterprises: list[EnterpriseFigures]
