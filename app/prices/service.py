"""The price index (market.md): what compute costs per accelerator, read by buyers,
the console and the subsidy programs that limit the price they pay on.

Pricing a match or an order under a program with `max_price_ratio` needs the
active-offer median of every accelerator it meets. Those medians are kept per
process (`MedianCache`) and checked before each use against the newest change of
an offer or a provider (two index look-ups), so an offer changed by any process is
seen by the next match of every process; the check cannot see a change committed
after a later one had already been seen (two transactions committing out of the
order of their clocks), so the medians are also read again after `MAX_AGE`.
"""

import time
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Statements
from app.core.errors import Unprocessable
from app.core.timeutil import SHANGHAI
from app.models import Accelerator
from app.prices import index, store

#: Seconds a cached median is trusted without a change seen (see the module doc).
MAX_AGE = 30.0


class MedianCache:
    """The statistics of active offers' list prices per accelerator, for every region
    and for each set of region prefixes asked for lately, as of the offers' state."""

    #: Sets of region prefixes kept at once (the most recently asked).
    REGION_SETS = 64

    def __init__(self) -> None:
        self._state: tuple[Any, ...] | None = None
        self._read_at = 0.0
        self._stats: dict[tuple[str, ...], dict[str, index.OfferStats]] = {}

    async def load(
        self, source: Statements, regions: tuple[str, ...] = ()
    ) -> dict[str, index.OfferStats]:
        state = await store.offers_state(source)
        now = time.monotonic()
        if state != self._state or now - self._read_at > MAX_AGE:
            self._stats = {}
            self._state, self._read_at = state, now
        stats = self._stats.pop(regions, None)
        if stats is None:
            # Read after the state: a change in between is seen again at the next check.
            grouped: dict[str, list[tuple[Decimal, int]]] = defaultdict(list)
            for row in await store.offer_prices(source, regions):
                grouped[row.accelerator_id].append((row.price, row.offers))
            stats = {acc: index.offer_stats(pairs) for acc, pairs in grouped.items()}
            while len(self._stats) >= self.REGION_SETS:
                del self._stats[next(iter(self._stats))]
        self._stats[regions] = stats  # the most recent last
        return stats


# One cache per database (engine): the tests run several apps in one process.
_caches: "weakref.WeakKeyDictionary[Any, MedianCache]" = weakref.WeakKeyDictionary()


async def offer_stats(
    source: Statements, region_prefixes: Sequence[str] = ()
) -> dict[str, index.OfferStats]:
    """accelerator id -> the statistics of its active offers' list prices (of offers in
    `region_prefixes`; every region when none), now."""
    key = source.database_key
    cache = _caches.get(key)
    if cache is None:
        cache = _caches[key] = MedianCache()
    return await cache.load(source, tuple(sorted(set(region_prefixes))))


async def medians(source: Statements) -> dict[str, Decimal]:
    """accelerator id -> the median list price of its active offers of listed providers
    (accelerators with none are absent)."""
    return {
        acc: stats.median
        for acc, stats in (await offer_stats(source)).items()
        if stats.median is not None
    }


async def known_accelerators(
    session: AsyncSession,
    ids: Sequence[str],
    where: Sequence[str | int] = ("query", "accelerator_id"),
) -> list[str]:
    """`ids` without repeats, or a 422 at `where` naming those the catalog does not have."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return wanted
    known = set(
        (await session.scalars(select(Accelerator.id).where(Accelerator.id.in_(wanted)))).all()
    )
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise Unprocessable.field(
            list(where),
            f"unknown accelerator(s) {', '.join(unknown)}: see GET /v1/accelerators",
        )
    return wanted


def first_day(now: datetime, days: int) -> date:
    """The first of the last `days` Asia/Shanghai calendar days, today the last of them."""
    return now.astimezone(SHANGHAI).date() - timedelta(days=days - 1)


@dataclass(frozen=True)
class IndexQuery:
    accelerator_ids: Sequence[str] = ()
    region_prefixes: Sequence[str] = ()
    days: int = 30


@dataclass(frozen=True)
class IndexItem:
    accelerator_id: str
    domestic: bool
    offers: index.OfferStats
    orders: index.OrderStats


async def price_index(
    session: AsyncSession, source: Statements, query: IndexQuery, now: datetime
) -> list[IndexItem]:
    """One item per accelerator asked for (every accelerator with an active offer or
    an order in the window when none is asked), by accelerator id."""
    offers = await offer_stats(source, query.region_prefixes)
    if query.accelerator_ids:
        offers = {a: s for a, s in offers.items() if a in query.accelerator_ids}
    paid = {
        row.accelerator_id: index.OrderStats(row.orders, row.card_hours, row.median_price)
        for row in await store.prices_paid(
            source, first_day(now, query.days), query.accelerator_ids, query.region_prefixes
        )
    }
    wanted = set(query.accelerator_ids) or set(offers) | {a for a, s in paid.items() if s.count}
    domestic = dict(
        (
            await session.execute(
                select(Accelerator.id, Accelerator.domestic).where(Accelerator.id.in_(wanted))
            )
        ).all()
    )
    return [
        IndexItem(
            accelerator_id=acc,
            domestic=bool(domestic[acc]),
            offers=offers.get(acc, index.NO_OFFERS),
            orders=paid[acc] if acc in paid and paid[acc].count else index.NO_ORDERS,
        )
        for acc in sorted(wanted)
    ]
