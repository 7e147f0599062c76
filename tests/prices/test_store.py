"""The price index's store: the weighted median found in SQL equals the pure one."""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from app.core.db import Database, on_session
from app.models import PricePaidDay
from app.prices import index, store

DAY = date(2026, 12, 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sql_median_equals_the_pure_one(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for acc in ("huawei-ascend-910b", "nvidia-h20", "cambricon-mlu370-x8"):
        for region in ("330108", "330106", "330212"):
            for price in rng.sample(range(500, 3000, 25), 12):
                rows.append(
                    PricePaidDay(
                        day=DAY - timedelta(days=rng.randint(0, 40)),
                        accelerator_id=acc,
                        region_code=region,
                        price_per_card_hour=Decimal(price) / 100,
                        # Some prices were bought and cancelled again: no card-hours left.
                        card_hours=rng.choice([0, 8, 24, 192, 5760]),
                        orders=rng.randint(0, 3),
                    )
                )
    async with db.sessionmaker() as session:
        session.add_all(rows)
        await session.commit()
    for first_day, regions in ((DAY - timedelta(days=29), []), (DAY - timedelta(days=9), ["3301"])):
        expected: dict[str, tuple[int, int, Decimal | None]] = {}
        for acc in {r.accelerator_id for r in rows}:
            kept = [
                r
                for r in rows
                if r.accelerator_id == acc
                and r.day >= first_day
                and any(r.region_code.startswith(p) for p in regions or [""])
            ]
            stats = index.order_stats(
                [(r.price_per_card_hour, r.card_hours) for r in kept], sum(r.orders for r in kept)
            )
            expected[acc] = (stats.count, stats.card_hours, stats.median_price)
        async with db.sessionmaker() as session:
            got = await store.prices_paid(on_session(session), first_day, [], regions)
        assert {r.accelerator_id: (r.orders, r.card_hours, r.median_price) for r in got} == {
            acc: e for acc, e in expected.items() if e != (0, 0, None)
        }
