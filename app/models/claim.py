"""Voucher claims (申领), their review, disbursement (兑付) and the event chain."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, MoneyFen, UTCDateTime
from app.core.timeutil import utcnow
from app.models.mixins import Timestamps, Versioned


class Evidence(Base):
    """An uploaded file (contract, invoice, proof of payment, delivery record).

    The bytes live in the database, so that one backup holds the whole state; a
    file is addressed by its SHA-256 per owner: the same bytes uploaded again by
    the same party are the same record.
    """

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("owner_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The party the file belongs to: an enterprise or provider id (the operator: its key).
    owner_id: Mapped[str] = mapped_column(String(40))
    uploaded_by_key_id: Mapped[str | None] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Loaded only when asked for: listing metadata never reads the bytes.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class VoucherClaim(Timestamps, Versioned, Base):
    __tablename__ = "voucher_claims"
    __table_args__ = (
        Index("ix_voucher_claims_program", "program_id", "year", "id"),
        Index("ix_voucher_claims_enterprise", "enterprise_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("subsidy_programs.id"))
    year: Mapped[int] = mapped_column(Integer)
    enterprise_id: Mapped[str] = mapped_column(ForeignKey("enterprises.id"))
    status: Mapped[str] = mapped_column(String(32))
    # Σ settled subsidy of the claimed parts: always the service's, never the client's.
    amount: Mapped[Decimal] = mapped_column(MoneyFen)
    approved_amount: Mapped[Decimal | None] = mapped_column(MoneyFen)
    disbursed_amount: Mapped[Decimal] = mapped_column(MoneyFen, default=Decimal("0.00"))
    order_ids: Mapped[list[str]] = mapped_column(JSON)
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    filed_by_key_id: Mapped[str | None] = mapped_column(String(40))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # How many times it was submitted (1, then +1 per resubmission after a return).
    round: Mapped[int] = mapped_column(Integer, default=1)


class ClaimPart(Base):
    """One order part a claim covers. `live` while the claim is not rejected: a part is
    in at most one live claim, which a partial unique index enforces."""

    __tablename__ = "claim_parts"
    __table_args__ = (
        Index(
            "uq_claim_parts_live_part",
            "part_id",
            unique=True,
            postgresql_where=text("live"),
            sqlite_where=text("live"),
        ),
        Index("ix_claim_parts_claim", "claim_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("voucher_claims.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    part_id: Mapped[str] = mapped_column(ForeignKey("order_parts.id"))
    provider_id: Mapped[str] = mapped_column(String(40))
    settled_subsidy: Mapped[Decimal] = mapped_column(MoneyFen)
    approved_amount: Mapped[Decimal | None] = mapped_column(MoneyFen)
    disbursed_amount: Mapped[Decimal] = mapped_column(MoneyFen, default=Decimal("0.00"))
    live: Mapped[bool] = mapped_column(Boolean, default=True)


class ClaimEvidence(Base):
    """Which evidence a claim cites: its reviewers may read those files."""

    __tablename__ = "claim_evidence"
    __table_args__ = (Index("ix_claim_evidence_evidence", "evidence_id"),)

    claim_id: Mapped[str] = mapped_column(
        ForeignKey("voucher_claims.id", ondelete="CASCADE"), primary_key=True
    )
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"), primary_key=True)


class ClaimReview(Base):
    """One reviewer's decision on one submission of a claim, with who and when."""

    __tablename__ = "claim_reviews"
    __table_args__ = (Index("ix_claim_reviews_claim", "claim_id", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("voucher_claims.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    approved_amount: Mapped[Decimal | None] = mapped_column(MoneyFen)
    reason: Mapped[str | None] = mapped_column(String(2000))
    reviewer_key_id: Mapped[str] = mapped_column(String(40))
    reviewer_role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Disbursement(Base):
    __tablename__ = "claim_disbursements"
    __table_args__ = (Index("ix_claim_disbursements_claim", "claim_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("voucher_claims.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MoneyFen)
    paid_on: Mapped[date] = mapped_column(Date)
    bank_reference: Mapped[str] = mapped_column(String(200))
    # [{payer, share, amount}] as strings: the split by the program's funding.
    splits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    by_key_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClaimEvent(Base):
    """One link of the tamper-evident chain of claim events (append-only: triggers
    refuse UPDATE and DELETE). `at` is kept as the text that was hashed."""

    __tablename__ = "claim_events"
    __table_args__ = (Index("ix_claim_events_claim", "claim_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    claim_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[dict[str, Any]] = mapped_column(JSON)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ClaimChainHead(Base):
    """The chain's last link: one row, locked by each append so appends are serial."""

    __tablename__ = "claim_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
