"""Time: instants are aware and stored in UTC; policy dates are read in Asia/Shanghai."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def shanghai_date(instant: datetime) -> date:
    """The calendar day of an instant in Asia/Shanghai (policy dates and years)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime")
    return instant.astimezone(SHANGHAI).date()


def today_shanghai() -> date:
    return shanghai_date(utcnow())
