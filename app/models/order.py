from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, MoneyFen, UTCDateTime
from app.core.timeutil import utcnow
from app.models.mixins import Timestamps, Versioned


class Quote(Base):
    """A match pinned for an enterprise until it expires."""

    __tablename__ = "quotes"
    __table_args__ = (Index("ix_quotes_enterprise", "enterprise_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(ForeignKey("compute_requests.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The pinned match, as answered to the client (money as strings).
    match: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Program id -> version the subsidy was computed with.
    program_versions: Mapped[dict[str, int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Timestamps, Versioned, Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_enterprise", "enterprise_id", "id"),
        # The price index and the console read orders by when they were placed.
        Index("ix_orders_created_at", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id"), unique=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("compute_requests.id"))
    enterprise_id: Mapped[str] = mapped_column(ForeignKey("enterprises.id"))
    status: Mapped[str] = mapped_column(String(16))
    offer_id: Mapped[str | None] = mapped_column(String(40))
    cards: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    gross_amount: Mapped[Decimal] = mapped_column(MoneyFen)
    subsidy_amount: Mapped[Decimal] = mapped_column(MoneyFen)
    net_amount: Mapped[Decimal] = mapped_column(MoneyFen)
    executed_amount: Mapped[Decimal | None] = mapped_column(MoneyFen)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    parts: Mapped[list["OrderPart"]] = relationship(
        back_populates="order", lazy="raise", order_by="OrderPart.id"
    )


class OrderPart(Base):
    """One contract of an order: cards of one offer over [start, end), its own subsidy."""

    __tablename__ = "order_parts"
    __table_args__ = (
        # Capacity look-ups: the live holds of an offer that overlap a window, read
        # from the index alone.
        Index("ix_order_parts_holds", "offer_id", "holding", "end", "start", "cards"),
        Index("ix_order_parts_provider", "provider_id", "order_id"),
        # An order's parts (the foreign key gives no index on PostgreSQL).
        Index("ix_order_parts_order", "order_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    cards: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    # True while the part holds capacity (reserved or completed; false once cancelled).
    holding: Mapped[bool] = mapped_column(Boolean, default=True)
    price_per_card_hour: Mapped[Decimal] = mapped_column(MoneyFen)
    gross_amount: Mapped[Decimal] = mapped_column(MoneyFen)
    program_id: Mapped[str | None] = mapped_column(String(64))
    rate: Mapped[str] = mapped_column(String(12), default="0")
    base: Mapped[str | None] = mapped_column(String(32))
    capped_by: Mapped[str | None] = mapped_column(String(32))
    subsidy_amount: Mapped[Decimal] = mapped_column(MoneyFen)
    net_amount: Mapped[Decimal] = mapped_column(MoneyFen)
    executed_amount: Mapped[Decimal | None] = mapped_column(MoneyFen)
    settled_subsidy: Mapped[Decimal | None] = mapped_column(MoneyFen)
    considered: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    order: Mapped[Order] = relationship(back_populates="parts", lazy="raise")


class PricePaidDay(Base):
    """What was bought per Asia/Shanghai day (the orders' placement), accelerator,
    region (the offer's) and price per card-hour, kept by the database (migration
    0010's trigger on order_parts): the price index reads these rows, not every order.

    `orders` counts each order once per accelerator, on its first part of that
    accelerator (and in that part's region), so its sum over regions and prices is
    the accelerator's number of orders.
    """

    __tablename__ = "prices_paid_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    accelerator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    price_per_card_hour: Mapped[Decimal] = mapped_column(MoneyFen, primary_key=True)
    card_hours: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
