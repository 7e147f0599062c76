"""A realistic Hangzhou compute market, bulk-inserted straight into the tables.

Like app/demo.py, but at benchmark scale and with live orders: each order is a
quote, an order, one holding order part and its ledger reserve entry, priced by
the real subsidy engine against the running ledger, so that `python -m app.cli
check-invariants` holds (no offer overbooked, no cap or budget exceeded).
"""

import importlib.util
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from app.core.db import Database, begin_write, on_session
from app.core.ids import new_id
from app.core.money import ZERO
from app.core.timeutil import today_shanghai
from app.core.validators import make_credit_code
from app.matching import engine
from app.matching.schemas import MatchOut
from app.models import (
    Accelerator,
    ComputeRequest,
    Enterprise,
    LedgerEntry,
    Listing,
    Offer,
    Order,
    OrderPart,
    Provider,
    Quote,
)
from app.subsidies import service as subsidy_service
from app.subsidies.rules import (
    Contract,
    EnterpriseFacts,
    Program,
    ProviderFacts,
    SubsidyResult,
    Usage,
    evaluate,
)
from app.subsidies.schemas import considered_out, subsidy_out

BINJIANG = "330108"
# Hangzhou districts, weighted by how much compute sits there (Binjiang and Yuhang most).
HANGZHOU = {
    "330102": 4,
    "330105": 4,
    "330106": 8,
    BINJIANG: 22,
    "330109": 8,
    "330110": 18,
    "330111": 3,
    "330112": 3,
    "330113": 5,
    "330114": 7,
}
OTHER_ZHEJIANG = {"330203": 3, "330302": 2, "330402": 2, "330602": 2, "330702": 1}
OUTSIDE_ZHEJIANG = {"310115": 3, "320505": 2, "110108": 2, "440305": 2, "510107": 1}

# List price per card-hour (CNY) by accelerator, and how common each is on the market.
PRICE_BANDS: dict[str, tuple[str, str, int]] = {
    "nvidia-h100-sxm": ("22.00", "38.00", 5),
    "nvidia-h800-sxm": ("20.00", "34.00", 8),
    "nvidia-h200": ("28.00", "45.00", 2),
    "nvidia-a100-sxm-80gb": ("12.00", "20.00", 8),
    "nvidia-a800-sxm-80gb": ("11.00", "18.00", 10),
    "nvidia-h20": ("8.00", "14.00", 12),
    "nvidia-l20": ("4.00", "7.00", 6),
    "nvidia-l40s": ("5.00", "9.00", 5),
    "nvidia-rtx-4090": ("1.80", "3.50", 8),
    "huawei-ascend-910b": ("9.00", "16.00", 14),
    "huawei-ascend-910c": ("15.00", "26.00", 5),
    "cambricon-mlu590": ("7.00", "12.00", 4),
    "hygon-dcu-k100": ("5.00", "9.00", 4),
    "kunlunxin-p800": ("7.00", "12.00", 3),
    "metax-c500": ("6.00", "10.00", 3),
    "moore-threads-mtt-s4000": ("4.00", "8.00", 2),
}
PURPOSES = {"training": 45, "inference": 30, "application": 10, "maas": 10, "agent": 5}
CHUNK = 5000


def weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), list(table.values()))[0]


def price_in(rng: random.Random, acc_id: str) -> Decimal:
    low, high = Decimal(PRICE_BANDS[acc_id][0]), Decimal(PRICE_BANDS[acc_id][1])
    return (low + (high - low) * Decimal(rng.randint(0, 1000)) / 1000).quantize(Decimal("0.01"))


@dataclass
class OfferInfo:
    id: str
    provider_id: str
    accelerator_id: str
    domestic: bool
    cards_total: int
    price: Decimal
    available_from: datetime
    available_until: datetime
    holds: list[engine.Hold] = field(default_factory=list)


@dataclass
class EnterpriseInfo:
    id: str
    region_code: str
    foundation: bool
    filed_models: list[str]


@dataclass
class Market:
    now: datetime
    providers: dict[str, tuple[str, frozenset[str]]]  # id -> (status, lists today)
    offers: list[OfferInfo]
    enterprises: list[EnterpriseInfo]
    programs: list[Program]
    enterprise_used: dict[tuple[str, str], Decimal] = field(
        default_factory=lambda: defaultdict(lambda: ZERO)
    )
    budget_used: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def sellable(self) -> list[OfferInfo]:
        return [o for o in self.offers if self.providers[o.provider_id][0] == "listed"]


PRICES_PAID_MIGRATION = (
    Path(__file__).resolve().parents[1] / "migrations/versions/20261205_0010_price_index.py"
)


async def prices_paid_trigger(db: Database, *, enabled: bool) -> None:
    """On PostgreSQL, the order parts' day-totals trigger (migration 0010) off while the
    orders are bulk-loaded: deferred to the commit, it ran once per part of the 110,000
    inserted in one transaction, each looking up its order's other parts by a plan
    made while the table was empty and without statistics (a scan): the load's COMMIT
    had not ended after ten minutes. `recount_prices_paid` counts them afresh after."""
    if db.engine.dialect.name == "sqlite":
        return
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                f"ALTER TABLE order_parts {'ENABLE' if enabled else 'DISABLE'} "
                "TRIGGER order_parts_move_prices_paid"
            )
        )


async def recount_prices_paid(url: str) -> None:
    """The day totals counted afresh by the migration's own backfill (after a bulk load,
    or once the orders' placing times are moved), then the trigger on again."""
    spec = importlib.util.spec_from_file_location("price_index_migration", PRICES_PAID_MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    db = Database(url)
    try:
        backfill = (
            migration.BACKFILL_SQLITE
            if db.engine.dialect.name == "sqlite"
            else migration.BACKFILL_POSTGRESQL
        )
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM prices_paid_daily"))
            await conn.execute(text(backfill))
        await prices_paid_trigger(db, enabled=True)
    finally:
        await db.dispose()


def hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


async def insert_chunked(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    async with db.sessionmaker() as session:
        await begin_write(session)
        for i in range(0, len(rows), CHUNK):
            await session.execute(insert(model), rows[i : i + CHUNK])
        await session.commit()


async def count(db: Database, model: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def build_registry(
    db: Database,
    *,
    providers: int,
    offers: int,
    enterprises: int,
    seed: int,
    cards_choices: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512),
    cards_weights: tuple[int, ...] = (20, 25, 20, 15, 10, 6, 4),
) -> Market:
    """Providers with listings, active offers, enterprises; all in three bulk inserts each."""
    rng = random.Random(seed)
    now = hour(datetime.now(UTC))
    today = today_shanghai()
    async with db.sessionmaker() as session:
        catalog = {a.id: a for a in await session.scalars(select(Accelerator))}
        programs = [s.program for s in await subsidy_service.load_programs(on_session(session))]
    accelerators = {a: w for a, (_, _, w) in PRICE_BANDS.items() if a in catalog}

    provider_rows: list[dict[str, Any]] = []
    listing_rows: list[dict[str, Any]] = []
    provider_info: dict[str, tuple[str, frozenset[str]]] = {}
    provider_ids: list[str] = []
    provider_weights: list[float] = []
    provider_regions: dict[str, str] = {}
    for n in range(providers):
        where = rng.random()
        if where < 0.85:
            region = weighted(rng, HANGZHOU)
        elif where < 0.95:
            region = weighted(rng, OTHER_ZHEJIANG)
        else:
            region = weighted(rng, OUTSIDE_ZHEJIANG)
        kind = "intelligent_computing_center" if rng.random() < 0.35 else "matchmaking_partner"
        status = rng.choices(["listed", "pending", "suspended", "delisted"], [90, 5, 3, 2])[0]
        pid = new_id("prv")
        provider_rows.append(
            {
                "id": pid,
                "name": f"bench provider {n + 1:05d}",
                "kind": kind,
                "unified_social_credit_code": make_credit_code(region, seed * 1_000_000 + n),
                "region_code": region,
                "status": status,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        # The official lists: the city's ICC layout or its matchmaking partners (Hangzhou
        # providers, mostly), Binjiang's partner list (Binjiang firms and some others).
        lists: set[str] = set()
        if region.startswith("3301") or rng.random() < 0.3:
            if kind == "intelligent_computing_center" and rng.random() < 0.8:
                lists.add("hz-planned-icc")
            elif kind == "matchmaking_partner" and rng.random() < 0.75:
                lists.add("hz-matchmaking-partner")
        if (region == BINJIANG and rng.random() < 0.85) or rng.random() < 0.12:
            lists.add("binjiang-compute-partner")
        if n == 0:
            lists.add("hz-ai-computing-center")
        active: set[str] = set()
        for list_id in sorted(lists):
            ended = rng.random() < 0.04  # a few listings withdrawn since
            listing_rows.append(
                {
                    "id": new_id("lst"),
                    "provider_id": pid,
                    "list_id": list_id,
                    "since": date(2025, rng.randint(1, 12), 1),
                    "until": None,
                    "reference": "bench listing",
                    "created_at": now,
                    "ended_at": now - timedelta(days=3) if ended else None,
                }
            )
            if not ended:
                active.add(list_id)
        provider_info[pid] = (status, frozenset(active))
        provider_ids.append(pid)
        provider_regions[pid] = region
        # A few large centres sell most of the offers.
        provider_weights.append(rng.choice([1, 1, 1, 2, 2, 3, 5, 8, 15]))

    offer_rows: list[dict[str, Any]] = []
    offer_info: list[OfferInfo] = []
    owners = rng.choices(provider_ids, provider_weights, k=offers)
    for k, pid in enumerate(owners):
        acc_id = weighted(rng, accelerators)
        if rng.random() < 0.1:  # capacity coming online later
            start = now + timedelta(days=rng.randint(1, 60))
        else:
            start = now - timedelta(days=rng.randint(0, 90))
        until = start + timedelta(days=rng.choice([90, 180, 365, 365, 730]))
        training = rng.random() < 0.8
        offer = OfferInfo(
            id=new_id("off"),
            provider_id=pid,
            accelerator_id=acc_id,
            domestic=catalog[acc_id].domestic,
            cards_total=rng.choices(cards_choices, cards_weights)[0],
            price=price_in(rng, acc_id),
            available_from=start,
            available_until=until,
        )
        offer_info.append(offer)
        offer_rows.append(
            {
                "id": offer.id,
                "provider_id": pid,
                "external_id": f"bench-{k}",
                "accelerator_id": acc_id,
                "domestic": offer.domestic,
                "cards_total": offer.cards_total,
                "price_per_card_hour": offer.price,
                "available_from": start,
                "available_until": until,
                "min_hours": rng.choice([1, 1, 1, 8, 24, 72, 168]),
                "region_code": provider_regions[pid],
                "supports_training": training,
                "supports_inference": not training or rng.random() < 0.9,
                "free_trial_hours": rng.choice([0, 0, 0, 4, 24]),
                "free_migration_support": rng.random() < 0.3,
                "status": "active",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )

    enterprise_rows: list[dict[str, Any]] = []
    enterprise_info: list[EnterpriseInfo] = []
    for n in range(enterprises):
        where = rng.random()
        if where < 0.35:
            region = BINJIANG
        elif where < 0.7:
            region = weighted(rng, {k: v for k, v in HANGZHOU.items() if k != BINJIANG})
        elif where < 0.88:
            region = weighted(rng, OTHER_ZHEJIANG)
        else:
            region = weighted(rng, OUTSIDE_ZHEJIANG)
        foundation = rng.random() < 0.08
        models = [f"Zhejiang-Bench-{seed}{n:05d}"] if foundation or rng.random() < 0.25 else []
        eid = new_id("ent")
        enterprise_rows.append(
            {
                "id": eid,
                "name": f"bench enterprise {n + 1:04d}",
                "unified_social_credit_code": make_credit_code(
                    region, seed * 1_000_000 + 500_000 + n
                ),
                "region_code": region,
                "is_foundation_model_enterprise": foundation,
                "filed_models": [
                    {"filing_number": m, "name": f"model {m}", "filed_on": "2025-03-01"}
                    for m in models
                ],
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        enterprise_info.append(EnterpriseInfo(eid, region, foundation, models))

    await insert_chunked(db, Provider, provider_rows)
    await insert_chunked(db, Listing, listing_rows)
    await insert_chunked(db, Offer, offer_rows)
    await insert_chunked(db, Enterprise, enterprise_rows)
    assert today.year >= 2026
    return Market(now, provider_info, offer_info, enterprise_info, programs)


def request_row(
    rng: random.Random,
    market: Market,
    enterprise: EnterpriseInfo,
    *,
    accelerator_ids: list[str],
    cards: int,
    hours: int,
    earliest_start: datetime,
    latest_start: datetime,
    purpose: str,
    domestic: str = "any",
    region_prefixes: list[str] | None = None,
    min_memory_gb: int | None = None,
    max_net_budget: Decimal | None = None,
    allow_split: bool = False,
) -> dict[str, Any]:
    filed = None
    if purpose in ("maas", "agent") and enterprise.filed_models and rng.random() < 0.7:
        filed = enterprise.filed_models[0]
    return {
        "id": new_id("req"),
        "enterprise_id": enterprise.id,
        "accelerator_ids": accelerator_ids,
        "min_memory_gb": min_memory_gb,
        "domestic": domestic,
        "cards": cards,
        "hours": hours,
        "earliest_start": earliest_start,
        "latest_start": latest_start,
        "purpose": purpose,
        "filed_model": filed,
        "max_net_budget": max_net_budget,
        "region_prefixes": region_prefixes or [],
        "allow_split": allow_split,
        "status": "open",
        "created_at": market.now,
        "updated_at": market.now,
    }


def price_subsidy(
    market: Market,
    enterprise: EnterpriseInfo,
    offer: OfferInfo,
    *,
    purpose: str,
    relies_on_filed_model: bool,
    gross: Decimal,
    contract_date: date,
) -> SubsidyResult:
    """The real subsidy engine against the ledger as built so far."""
    facts = EnterpriseFacts(
        region_code=enterprise.region_code,
        is_foundation_model_enterprise=enterprise.foundation,
        relies_on_filed_model=relies_on_filed_model,
    )
    status, lists = market.providers[offer.provider_id]
    usage = Usage(
        enterprise_used={
            p.id: market.enterprise_used[(enterprise.id, p.id)] for p in market.programs
        },
        budget_used=dict(market.budget_used),
    )
    return evaluate(
        market.programs,
        facts,
        ProviderFacts(status=status, lists=lists),
        Contract(
            domestic=offer.domestic,
            purpose=purpose,
            gross_amount=gross,
            contract_date=contract_date,
        ),
        usage,
    )


def match_json(
    offer: OfferInfo,
    cards: int,
    hours: int,
    start: datetime,
    gross: Decimal,
    result: SubsidyResult,
    payload: tuple[int, bool] = (0, False),
) -> dict[str, Any]:
    net = gross - result.amount
    return MatchOut(
        offer_id=offer.id,
        provider_id=offer.provider_id,
        accelerator_id=offer.accelerator_id,
        domestic=offer.domestic,
        cards=cards,
        hours=hours,
        start=start,
        end=start + timedelta(hours=hours),
        price_per_card_hour=offer.price,
        gross_amount=gross,
        subsidy=subsidy_out(result),
        net_amount=net,
        net_price_per_card_hour=(net / (cards * hours)).quantize(Decimal("0.01")),
        free_trial_hours=payload[0],
        free_migration_support=payload[1],
        considered=[considered_out(c) for c in result.considered],
        parts=None,
    ).model_dump(mode="json")


async def add_live_orders(
    db: Database, market: Market, orders: int, *, seed: int, cancelled_share: float = 0.1
) -> dict[str, int]:
    """`orders` live (reserved, holding) orders, plus a share of cancelled ones.

    Demand leans on the cheapest offers of each model, as a real market's does, so
    that the offers a match meets first are often partly or wholly booked.
    """
    rng = random.Random(seed + 1)
    contract_date = today_shanghai()
    year = contract_date.year
    sellable = market.sellable()
    by_acc: dict[str, list[OfferInfo]] = defaultdict(list)
    for offer in sellable:
        by_acc[offer.accelerator_id].append(offer)
    cheap: list[OfferInfo] = []
    for group in by_acc.values():
        group.sort(key=lambda o: o.price)
        cheap += group[: max(1, len(group) // 50)]  # the cheapest 2% of each model
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    placed = cancelled = skipped = 0
    total = orders + int(orders * cancelled_share)
    while placed + cancelled < total:
        live = placed < orders and (cancelled >= total - orders or rng.random() > cancelled_share)
        offer = rng.choice(cheap) if rng.random() < 0.4 else rng.choice(sellable)
        cards = min(offer.cards_total, rng.choice([1, 2, 4, 8, 8, 16, 32]))
        hours = rng.choice([24, 48, 72, 168, 168, 336, 720])
        duration = timedelta(hours=hours)
        first = max(offer.available_from, market.now - timedelta(days=30))
        last = min(market.now + timedelta(days=45), offer.available_until - duration)
        if first > last:
            skipped += 1
            continue
        start = hour(first + (last - first) * rng.random())
        if start < first:
            start += timedelta(hours=1)
        end = start + duration
        if start > last:
            skipped += 1
            continue
        if live and engine.peak_usage(offer.holds, start, end) + cards > offer.cards_total:
            skipped += 1
            continue
        enterprise = rng.choice(market.enterprises)
        purpose = weighted(rng, PURPOSES)
        request = request_row(
            rng,
            market,
            enterprise,
            accelerator_ids=[offer.accelerator_id],
            cards=cards,
            hours=hours,
            earliest_start=start,
            latest_start=start,
            purpose=purpose,
        )
        gross = engine.gross_amount(offer.price, cards, hours)
        result = price_subsidy(
            market,
            enterprise,
            offer,
            purpose=purpose,
            relies_on_filed_model=request["filed_model"] is not None,
            gross=gross,
            contract_date=contract_date,
        )
        quote_id, order_id, part_id = new_id("quo"), new_id("ord"), new_id("opt")
        rows["requests"].append(request)
        rows["quotes"].append(
            {
                "id": quote_id,
                "enterprise_id": enterprise.id,
                "request_id": request["id"],
                "expires_at": market.now + timedelta(minutes=15),
                "match": match_json(offer, cards, hours, start, gross, result),
                "program_versions": {p.id: 1 for p in market.programs},
                "created_at": market.now,
            }
        )
        status = "reserved" if live else "cancelled"
        rows["orders"].append(
            {
                "id": order_id,
                "quote_id": quote_id,
                "request_id": request["id"],
                "enterprise_id": enterprise.id,
                "status": status,
                "offer_id": offer.id,
                "cards": cards,
                "start": start,
                "end": end,
                "gross_amount": gross,
                "subsidy_amount": result.amount,
                "net_amount": gross - result.amount,
                "executed_amount": None,
                "completed_at": None,
                "cancelled_at": None if live else market.now,
                "version": 1 if live else 2,
                "created_at": market.now,
                "updated_at": market.now,
            }
        )
        rows["parts"].append(
            {
                "id": part_id,
                "order_id": order_id,
                "offer_id": offer.id,
                "provider_id": offer.provider_id,
                "cards": cards,
                "start": start,
                "end": end,
                "holding": live,
                "price_per_card_hour": offer.price,
                "gross_amount": gross,
                "program_id": result.program_id,
                "rate": str(result.rate),
                "base": result.base,
                "capped_by": result.capped_by,
                "subsidy_amount": result.amount,
                "net_amount": gross - result.amount,
                "executed_amount": None,
                "settled_subsidy": None,
                "considered": [
                    {"program_id": c.program_id, "eligible": c.eligible, "reason": c.reason}
                    for c in result.considered
                ],
            }
        )
        if result.program_id is not None and result.amount > 0:
            kinds = ["reserve"] if live else ["reserve", "release"]
            for kind in kinds:
                rows["ledger"].append(
                    {
                        "id": new_id("led"),
                        "enterprise_id": enterprise.id,
                        "program_id": result.program_id,
                        "year": year,
                        "order_id": order_id,
                        "part_id": part_id,
                        "kind": kind,
                        "amount": result.amount,
                        "created_at": market.now,
                    }
                )
            if live:
                market.enterprise_used[(enterprise.id, result.program_id)] += result.amount
                market.budget_used[result.program_id] += result.amount
        if live:
            offer.holds.append(engine.Hold(start=start, end=end, cards=cards))
            placed += 1
        else:
            cancelled += 1
    await insert_chunked(db, ComputeRequest, rows["requests"])
    await insert_chunked(db, Quote, rows["quotes"])
    await insert_chunked(db, Order, rows["orders"])
    await prices_paid_trigger(db, enabled=False)
    await insert_chunked(db, OrderPart, rows["parts"])
    await insert_chunked(db, LedgerEntry, rows["ledger"])
    await recount_prices_paid(str(db.engine.url.render_as_string(hide_password=False)))
    return {
        "live": placed,
        "cancelled": cancelled,
        "ledger_entries": len(rows["ledger"]),
        "skipped_full": skipped,
    }
