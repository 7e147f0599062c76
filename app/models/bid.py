from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, MoneyFen, UTCDateTime
from app.core.timeutil import utcnow


class Bid(Base):
    """A provider's price for one compute request on one of its offers (a reverse auction)."""

    __tablename__ = "bids"
    __table_args__ = (
        # One live bid per offer and request: a new one replaces it (market.md).
        Index(
            "ux_bids_live",
            "request_id",
            "offer_id",
            unique=True,
            postgresql_where=text("status = 'live'"),
            sqlite_where=text("status = 'live'"),
        ),
        Index("ix_bids_request", "request_id", "status", "valid_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("compute_requests.id", ondelete="CASCADE"))
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    price_per_card_hour: Mapped[Decimal] = mapped_column(MoneyFen)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # live, replaced (by a newer bid on the same offer) or withdrawn.
    status: Mapped[str] = mapped_column(String(16), default="live")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
