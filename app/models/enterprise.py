from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, MoneyFen, UTCDateTime
from app.core.timeutil import utcnow
from app.models.mixins import Timestamps, Versioned


class Enterprise(Timestamps, Versioned, Base):
    __tablename__ = "enterprises"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unified_social_credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    region_code: Mapped[str] = mapped_column(String(6))
    # Unified social credit codes of related parties (关联方), declared or added by the
    # operator (claims.md "Related parties").
    related_parties: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_foundation_model_enterprise: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{filing_number, name, filed_on}] of generative AI models filed with the CAC.
    filed_models: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    cap_relaxations: Mapped[list["CapRelaxation"]] = relationship(
        lazy="raise", order_by="CapRelaxation.program_id"
    )


class CapRelaxation(Base):
    """An operator-granted annual cap for a foundation-model enterprise under one program."""

    __tablename__ = "cap_relaxations"

    enterprise_id: Mapped[str] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), primary_key=True
    )
    program_id: Mapped[str] = mapped_column(ForeignKey("subsidy_programs.id"), primary_key=True)
    annual_cap: Mapped[Decimal] = mapped_column(MoneyFen)
    reference: Mapped[str | None] = mapped_column(String(500))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
