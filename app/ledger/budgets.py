"""What each program's budget has used this year, read fast enough for every match.

A program's usage is a sum over the whole year's ledger (Σ reserve − Σ release,
every enterprise): the largest read a match would make, growing all year. So
this keeps, per database engine and year, the sums of the entries created
before a watermark that trails the clock by ``MARGIN``, and adds at each read
the sums of the entries created since (a range of the (year, created_at) index,
a few minutes of orders).

Exact, not cached: the ledger is append-only, so the part before the
watermark cannot change once every transaction that could still write into it
has ended, and ``MARGIN`` is far longer than any transaction (an order writes
its entries moments before it commits). The old part is summed again from
scratch every ``REFRESH``, so even an entry written under a skewed clock is
counted by the next refresh.

Placing an order does not read this: it sums the ledger under the program locks.
"""

import weakref
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, Result
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.money import ZERO
from app.core.timeutil import utcnow
from app.models import LedgerEntry

MARGIN = timedelta(minutes=5)
REFRESH = timedelta(minutes=1)
_SIGN = {"reserve": 1, "release": -1}  # a settlement moves a reservation, not the usage


@dataclass(frozen=True)
class _Settled:
    watermark: datetime  # entries created before this instant are in `used`
    summed_at: datetime
    used: dict[str, Decimal]


_settled: "weakref.WeakKeyDictionary[Engine, dict[int, _Settled]]" = weakref.WeakKeyDictionary()


def _fold(rows: Result[str, str, Decimal]) -> dict[str, Decimal]:
    used: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for program_id, kind, amount in rows:
        used[program_id] += _SIGN.get(kind, 0) * (amount or ZERO)
    return dict(used)


async def programs_used(
    session: AsyncSession, year: int, program_ids: Iterable[str]
) -> dict[str, Decimal]:
    """program id -> subsidy reserved or settled under it in ``year`` (every enterprise)."""
    wanted = sorted(set(program_ids))
    if not wanted:
        return {}
    engine = session.get_bind()
    assert isinstance(engine, Engine), "a session bound to one engine"
    per_year = _settled.setdefault(engine, {})
    now = utcnow()
    settled = per_year.get(year)
    if settled is None or not settled.summed_at <= now < settled.summed_at + REFRESH:
        watermark = now - MARGIN
        rows = await session.execute(
            select(LedgerEntry.program_id, LedgerEntry.kind, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.year == year, LedgerEntry.created_at < watermark)
            .group_by(LedgerEntry.program_id, LedgerEntry.kind)
        )
        settled = _Settled(watermark=watermark, summed_at=now, used=_fold(rows))
        per_year[year] = settled
    rows = await session.execute(
        select(LedgerEntry.program_id, LedgerEntry.kind, func.sum(LedgerEntry.amount))
        .where(
            LedgerEntry.year == year,
            LedgerEntry.created_at >= settled.watermark,
            LedgerEntry.program_id.in_(wanted),
        )
        .group_by(LedgerEntry.program_id, LedgerEntry.kind)
    )
    recent = _fold(rows)
    return {p: settled.used.get(p, ZERO) + recent.get(p, ZERO) for p in wanted}
