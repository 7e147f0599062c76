from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, UTCDateTime
from app.core.timeutil import utcnow
from app.models.mixins import Timestamps, Versioned


class ProviderList(Base):
    """An official list that subsidy programs name (e.g. binjiang-compute-partner)."""

    __tablename__ = "provider_lists"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)


class Provider(Timestamps, Versioned, Base):
    __tablename__ = "providers"
    # The price index's cache checks the newest change before each use.
    __table_args__ = (Index("ix_providers_updated_at", "updated_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    unified_social_credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    region_code: Mapped[str] = mapped_column(String(6))
    # Unified social credit codes of related parties (关联方), declared or added by the
    # operator (claims.md "Related parties").
    related_parties: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)

    listings: Mapped[list["Listing"]] = relationship(
        back_populates="provider", lazy="raise", order_by="Listing.id"
    )


class Listing(Base):
    """A provider's membership of an official list, granted and ended by the operator."""

    __tablename__ = "listings"
    __table_args__ = (Index("ix_listings_provider_list", "provider_id", "list_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    list_id: Mapped[str] = mapped_column(ForeignKey("provider_lists.id"))
    since: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    provider: Mapped[Provider] = relationship(back_populates="listings", lazy="raise")

    def active_on(self, day: date) -> bool:
        return (
            self.ended_at is None
            and self.since <= day
            and (self.until is None or day <= self.until)
        )
