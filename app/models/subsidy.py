from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, MoneyFen
from app.models.mixins import Timestamps, Versioned


class SubsidyProgram(Timestamps, Versioned, Base):
    """A voucher program as data (policies.md, "A program as data")."""

    __tablename__ = "subsidy_programs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    voucher_type: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_until: Mapped[date | None] = mapped_column(Date)
    enterprise_regions: Mapped[dict[str, Any]] = mapped_column(JSON)
    provider_lists_any: Mapped[list[str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    base: Mapped[str] = mapped_column(String(32))
    # [{rate: "0.60", when: {...}}]; rates kept as strings so no float ever touches them.
    rates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    enterprise_annual_cap: Mapped[Decimal | None] = mapped_column(MoneyFen)
    cap_relaxable_for_foundation_model_enterprises: Mapped[bool] = mapped_column(
        Boolean, default=False
    )
    annual_budget: Mapped[Decimal | None] = mapped_column(MoneyFen)
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Claims (claims.md "Programs gain").
    claims_open: Mapped[str] = mapped_column(String(16), default="on_settlement")
    claims_close: Mapped[str | None] = mapped_column(String(5))
    excludes_related_parties: Mapped[bool] = mapped_column(Boolean, default=False)
    dual_review_above: Mapped[Decimal | None] = mapped_column(MoneyFen)
    # [{payer, share}] with shares as strings; empty: the program pays it all.
    funding: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # market.md: "1.50" (a string, like the rates: no float ever touches it); null: none.
    max_price_ratio: Mapped[str | None] = mapped_column(String(12))
