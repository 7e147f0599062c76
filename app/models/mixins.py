from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UTCDateTime
from app.core.timeutil import utcnow


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Versioned:
    """Optimistic concurrency: the version backs the ETag and If-Match."""

    version: Mapped[int] = mapped_column(Integer, default=1)
