"""Time: instants are aware and stored in UTC; policy dates are read in Asia/Shanghai."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

# The instant the app's clock reads, where one is set (`clock_at`); None: the wall clock.
_clock: ContextVar[datetime | None] = ContextVar("computematch_clock", default=None)


def utcnow() -> datetime:
    fixed = _clock.get()
    return fixed if fixed is not None else datetime.now(UTC)


@contextmanager
def clock_at(instant: datetime) -> Iterator[None]:
    """The app's clock reads `instant` inside (this task and the tasks it starts).

    The demo market's seam: it writes a year of orders and claims through the services
    as they would have been written on their days (contract dates, ledger entries,
    claim events). Nothing that serves a request sets it.
    """
    if instant.tzinfo is None:
        raise ValueError("naive datetime")
    token = _clock.set(instant.astimezone(UTC))
    try:
        yield
    finally:
        _clock.reset(token)


def shanghai_date(instant: datetime) -> date:
    """The calendar day of an instant in Asia/Shanghai (policy dates and years)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime")
    return instant.astimezone(SHANGHAI).date()


def today_shanghai() -> date:
    return shanghai_date(utcnow())
