from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, MoneyFen, UTCDateTime
from app.models.mixins import Timestamps


class ComputeRequest(Timestamps, Base):
    __tablename__ = "compute_requests"
    __table_args__ = (Index("ix_compute_requests_enterprise", "enterprise_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"))
    accelerator_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_memory_gb: Mapped[int | None] = mapped_column(Integer)
    domestic: Mapped[str] = mapped_column(String(16), default="any")
    cards: Mapped[int] = mapped_column(Integer)
    hours: Mapped[int] = mapped_column(Integer)
    earliest_start: Mapped[datetime] = mapped_column(UTCDateTime)
    latest_start: Mapped[datetime] = mapped_column(UTCDateTime)
    purpose: Mapped[str] = mapped_column(String(16))
    filed_model: Mapped[str | None] = mapped_column(String(100))
    max_net_budget: Mapped[Decimal | None] = mapped_column(MoneyFen)
    region_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    allow_split: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Whether providers may bid on it, and until when (default: latest_start).
    accept_bids: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    bids_close_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How matches are ranked: "net_amount" or "net_per_effective_card_hour".
    rank_by: Mapped[str] = mapped_column(
        String(32), default="net_amount", server_default="net_amount"
    )
    # Node, network and software constraints (market.md); null or empty: any.
    min_cards_per_node: Mapped[int | None] = mapped_column(Integer)
    interconnect: Mapped[str | None] = mapped_column(String(16))
    network: Mapped[str | None] = mapped_column(String(16))
    software_stacks: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
