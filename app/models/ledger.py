from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, MoneyFen, UTCDateTime
from app.core.timeutil import utcnow


class LedgerEntry(Base):
    """The voucher ledger: append-only; balances are sums of entries.

    reserve: subsidy held for an order; settle: the part of a reservation paid
    out at settlement; release: the part of a reservation given back (cancel,
    or a settlement below the reservation). Used = reserve − release.

    Claims (claim_id set): approve and disburse record what the voucher office
    approved and paid; a release with a claim_id gives back settled subsidy the
    office did not approve (a rejection, a partial approval).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_enterprise", "enterprise_id", "program_id", "year"),
        Index("ix_ledger_program", "program_id", "year"),
        # Covering indexes for the balances (sums by program and kind): no table reads.
        Index("ix_ledger_year_program", "year", "program_id", "kind", "amount"),
        Index("ix_ledger_enterprise_year", "enterprise_id", "year", "program_id", "kind", "amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(ForeignKey("enterprises.id"))
    program_id: Mapped[str] = mapped_column(ForeignKey("subsidy_programs.id"))
    year: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    part_id: Mapped[str] = mapped_column(String(40))
    claim_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MoneyFen)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BudgetUsage(Base):
    """What each program's budget has used in a year: Σ reserve − Σ release over every
    enterprise's ledger entries, moved by the database in the transaction that writes
    them (a trigger on `ledger_entries`, migration 0006; on PostgreSQL at the commit).

    Pricing checks the budget against this one row, instead of summing a ledger that
    grows all year; the trigger refuses a reservation that would take it past the
    budget (`app.ledger.service.BUDGET_CHECK`); `check-invariants` proves it equal to
    the sums.
    """

    __tablename__ = "budget_usage"

    program_id: Mapped[str] = mapped_column(ForeignKey("subsidy_programs.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[Decimal] = mapped_column(MoneyFen)
