from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class RateLimitCounter(Base):
    """Requests of one principal in one fixed one-minute window (app.core.ratelimit).

    In the database, not in a process, so that every worker counts against the same
    limit. The window comes first in the key: pruning old windows is a range delete.
    """

    __tablename__ = "rate_limit_counters"

    # Start of the window, in seconds since the epoch (a multiple of 60).
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # An API key id, `bootstrap` (the configured operator key) or `register:<client ip>`.
    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
