from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, MoneyFen, UTCDateTime
from app.models.mixins import Timestamps, Versioned


class Offer(Timestamps, Versioned, Base):
    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("provider_id", "external_id"),
        # Matching walks active offers of one model cheapest first.
        Index("ix_offers_match", "status", "accelerator_id", "price_per_card_hour", "id"),
        Index("ix_offers_price", "status", "price_per_card_hour", "id"),
        # Or walks the active offers of one hardware origin cheapest first, skipping
        # the models a request does not accept inside the index.
        Index(
            "ix_offers_origin_price",
            "status",
            "domestic",
            "price_per_card_hour",
            "id",
            "accelerator_id",
        ),
        # The price index's cache checks the newest change before each use.
        Index("ix_offers_updated_at", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    accelerator_id: Mapped[str] = mapped_column(ForeignKey("accelerators.id"))
    # Copied from the catalog, never from the provider's word; kept here for filtering.
    domestic: Mapped[bool] = mapped_column(Boolean)
    cards_total: Mapped[int] = mapped_column(Integer)
    price_per_card_hour: Mapped[Decimal] = mapped_column(MoneyFen)
    available_from: Mapped[datetime] = mapped_column(UTCDateTime)
    available_until: Mapped[datetime] = mapped_column(UTCDateTime)
    min_hours: Mapped[int] = mapped_column(Integer, default=1)
    region_code: Mapped[str] = mapped_column(String(6))
    supports_training: Mapped[bool] = mapped_column(Boolean, default=True)
    supports_inference: Mapped[bool] = mapped_column(Boolean, default=True)
    free_trial_hours: Mapped[int] = mapped_column(Integer, default=0)
    free_migration_support: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    # What a node is made of and how nodes are joined (market.md); null: not stated.
    cards_per_node: Mapped[int | None] = mapped_column(Integer)
    interconnect: Mapped[str | None] = mapped_column(String(16))
    network: Mapped[str | None] = mapped_column(String(16))
    network_gbps: Mapped[int | None] = mapped_column(Integer)
    # [{"stack": "cann", "version": "8.0"}, ...] as stated.
    software: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # The stacks of `software`, sorted, as ",cann,cuda," ("" for none): a filter on
    # "any of these stacks" is then a LIKE on one column on every database, where a
    # JSON containment test would differ between SQLite and PostgreSQL.
    software_stacks: Mapped[str] = mapped_column(String(100), default="", server_default=text("''"))

    @property
    def workloads(self) -> list[str]:
        return [
            name
            for name, flag in (
                ("training", self.supports_training),
                ("inference", self.supports_inference),
            )
            if flag
        ]
