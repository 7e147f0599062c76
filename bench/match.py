"""Matching latency on a 100,000-offer market, beside the keyed read, on one server.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/match.py [--database-url URL]

Builds the market with bulk inserts (2,000 providers with listings, 100,000
active offers, several hundred enterprises, 50,000 live orders with their
quotes, holds and ledger reservations), checks the invariants, then for each
run starts `uvicorn app.main:app` (one worker) and measures, sequentially and
interleaved, GET /v1/compute-requests/{id}/matches?limit=10 over many different
requests and GET /v1/offers/{id} (the baseline). Prints p50/p95/p99 of both,
the ratio of the p50s and the server's RSS; then the medians over the runs.
"""

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import Database
from app.models import ComputeRequest, Offer, Order
from bench import _common as common
from bench import _market as market_mod

SEED = 2026
DOMESTIC_ACCELERATORS = [
    a for a in market_mod.PRICE_BANDS if a.split("-")[0] not in ("nvidia", "amd", "intel")
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--offers", type=int, default=100_000)
    p.add_argument("--providers", type=int, default=2_000)
    p.add_argument("--enterprises", type=int, default=400)
    p.add_argument("--orders", type=int, default=50_000, help="live orders")
    p.add_argument("--requests", type=int, default=400, help="distinct compute requests matched")
    p.add_argument("--calls", type=int, default=400, help="measured calls of each kind per run")
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the database the run created")
    p.add_argument(
        "--reuse", action="store_true", help="measure a market already built there (with --keep)"
    )
    return p.parse_args()


def match_requests(market: market_mod.Market, n: int) -> list[dict[str, Any]]:
    """A mix of what enterprises ask for: models or any, domestic any/preferred/required,
    regions, 1-64 cards over 1 day to a month, from Binjiang to outside Zhejiang."""
    rng = random.Random(SEED + 7)
    rows = []
    models = {a: w for a, (_, _, w) in market_mod.PRICE_BANDS.items()}
    for _ in range(n):
        enterprise = rng.choice(market.enterprises)
        domestic = rng.choices(["any", "preferred", "required"], [50, 25, 25])[0]
        pool = (
            {a: w for a, w in models.items() if a in DOMESTIC_ACCELERATORS}
            if domestic == "required"
            else models
        )
        shape = rng.random()
        if shape < 0.45:
            accelerators: list[str] = []
        elif shape < 0.85:
            accelerators = [market_mod.weighted(rng, pool)]
        else:
            accelerators = sorted({market_mod.weighted(rng, pool) for _ in range(3)})
        earliest = market.now + timedelta(hours=rng.randint(0, 14 * 24))
        purpose = market_mod.weighted(rng, market_mod.PURPOSES)
        cards = rng.choice([1, 2, 4, 8, 8, 16, 16, 32, 64])
        hours = rng.choice([24, 48, 72, 168, 336, 720])
        budget = None
        if rng.random() < 0.1:
            budget = Decimal(cards * hours * rng.choice([3, 8, 15])).quantize(Decimal("0.01"))
        rows.append(
            market_mod.request_row(
                rng,
                market,
                enterprise,
                accelerator_ids=accelerators,
                cards=cards,
                hours=hours,
                earliest_start=earliest,
                latest_start=earliest + timedelta(hours=rng.randint(0, 21 * 24)),
                purpose=purpose,
                domestic=domestic,
                region_prefixes=rng.choices(
                    [[], ["3301"], ["330108"], ["33"], ["330108", "330110"]], [50, 25, 10, 10, 5]
                )[0],
                min_memory_gb=80 if rng.random() < 0.1 else None,
                max_net_budget=budget,
                allow_split=rng.random() < 0.1,
            )
        )
    return rows


async def build(url: str, args: argparse.Namespace) -> None:
    db = Database(url)
    try:
        started = time.perf_counter()
        market = await market_mod.build_registry(
            db,
            providers=args.providers,
            offers=args.offers,
            enterprises=args.enterprises,
            seed=SEED,
        )
        built = time.perf_counter()
        orders = await market_mod.add_live_orders(db, market, args.orders, seed=SEED)
        ordered = time.perf_counter()
        await market_mod.insert_chunked(db, ComputeRequest, match_requests(market, args.requests))
        listed = sum(1 for s, _ in market.providers.values() if s == "listed")
        print(
            f"market: {args.providers} providers ({listed} listed), {args.offers} active offers, "
            f"{args.enterprises} enterprises in {built - started:.1f} s; "
            f"{orders['live']} live orders (+{orders['cancelled']} cancelled, "
            f"{orders['ledger_entries']} ledger entries) in {ordered - built:.1f} s; "
            f"{args.requests} compute requests to match",
            flush=True,
        )
    finally:
        await db.dispose()


async def targets(url: str, n_offers: int) -> tuple[list[str], list[str]]:
    """The compute requests to match (those with no order) and offers to read."""
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            requests = list(
                await session.scalars(
                    select(ComputeRequest.id)
                    .where(ComputeRequest.id.not_in(select(Order.request_id)))
                    .order_by(ComputeRequest.id)
                )
            )
            offers = list(await session.scalars(select(Offer.id).order_by(Offer.id)))
    finally:
        await db.dispose()
    rng = random.Random(SEED + 11)
    return requests, rng.sample(offers, min(n_offers, len(offers)))


def measure(
    server: common.Server, requests: list[str], offers: list[str], calls: int, warmup: int
) -> dict[str, Any]:
    headers = common.operator_headers()
    statuses: Counter[str] = Counter()
    found: list[int] = []
    match_s: list[float] = []
    read_s: list[float] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        for i in range(warmup):
            client.get(f"/v1/compute-requests/{requests[i % len(requests)]}/matches?limit=10")
            client.get(f"/v1/offers/{offers[i % len(offers)]}")
        for i in range(calls):
            request_id = requests[(i + warmup) % len(requests)]
            t0 = time.perf_counter()
            r = client.get(f"/v1/compute-requests/{request_id}/matches?limit=10")
            match_s.append(time.perf_counter() - t0)
            statuses[f"match {r.status_code}"] += 1
            if r.status_code == 200:
                found.append(len(r.json()["items"]))
            t0 = time.perf_counter()
            r = client.get(f"/v1/offers/{offers[i % len(offers)]}")
            read_s.append(time.perf_counter() - t0)
            statuses[f"read {r.status_code}"] += 1
    return {
        "match": common.summary_ms(match_s),
        "read": common.summary_ms(read_s),
        "rss_mb": server.rss_mb(),
        "statuses": dict(statuses),
        "empty": sum(1 for n in found if n == 0),
        "mean_items": sum(found) / len(found) if found else 0.0,
    }


def main() -> None:
    args = parse_args()
    db = common.start(args.database_url, prefix="cm-bench-match")
    backend = db.backend
    try:
        existing = asyncio.run(market_mod.count(Database(db.url), Offer))
        if existing and not args.reuse:
            sys.exit(f"the database already holds {existing} offers: pass --reuse, or an empty one")
        if not existing:
            asyncio.run(build(db.url, args))
            if not db.is_sqlite:
                # As autovacuum would soon: statistics, and a visibility map for
                # index-only scans.
                common.vacuum_analyze(db.url)
            code, words = common.check_invariants(db.url)
            print(f"check-invariants (exit {code}): {words}", flush=True)
        requests, offers = asyncio.run(targets(db.url, max(args.calls, 300)))
        print(
            f"measuring {args.calls} matches over {len(requests)} requests and {args.calls} "
            f"offer reads per run, {args.runs} runs, one uvicorn worker",
            flush=True,
        )
        results = []
        for run in range(1, args.runs + 1):
            with common.running_server(db.url) as server:
                r = measure(server, requests, offers, args.calls, args.warmup)
            results.append(r)
            m, k = r["match"], r["read"]
            print(
                f"run {run}: match p50 {m['p50']:.1f} p95 {m['p95']:.1f} p99 {m['p99']:.1f} "
                f"max {m['max']:.1f} ms | keyed read p50 {k['p50']:.1f} p95 {k['p95']:.1f} "
                f"p99 {k['p99']:.1f} ms | ratio p50 {m['p50'] / k['p50']:.1f}x | "
                f"RSS {r['rss_mb']:.0f} MB | {r['statuses']} | {r['empty']} empty answers, "
                f"{r['mean_items']:.1f} matches on average",
                flush=True,
            )
        med = {
            f"{kind} {q}": common.median([r[kind][q] for r in results])
            for kind in ("match", "read")
            for q in ("p50", "p95", "p99")
        }
        ratio = common.median([r["match"]["p50"] / r["read"]["p50"] for r in results])
        rss = common.median([r["rss_mb"] for r in results])
        print(
            f"\n{backend}, median of {len(results)} runs:\n"
            f"  match      p50 {med['match p50']:6.1f} ms  p95 {med['match p95']:6.1f} ms  "
            f"p99 {med['match p99']:6.1f} ms\n"
            f"  keyed read p50 {med['read p50']:6.1f} ms  p95 {med['read p95']:6.1f} ms  "
            f"p99 {med['read p99']:6.1f} ms\n"
            f"  ratio of p50s {ratio:.1f}x   server RSS {rss:.0f} MB"
        )
    finally:
        common.close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
