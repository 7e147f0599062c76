"""Matching with bids and the price index on a 100,000-offer market, beside the keyed read.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/market.py [--database-url URL]

Builds the market of bench/match.py (2,000 providers, 100,000 active offers, 100,000
live orders placed in the last days: the price index's worst case, every order in its
window), then 400 compute requests that accept bids, each with live bids from the
offers that could serve it (20,000 bids in all, at 70-95% of the list price), and the
same 400 requests again without bids. For each run it starts one uvicorn worker and
measures, interleaved: the matches of a request with bids, the matches of its twin
without, GET /v1/offers/{id} (the baseline), GET /v1/price-index (every accelerator,
the median cached), and GET /v1/price-index?region_prefix=3301 (no cache: grouped in
SQL). Prints p50/p95/p99 of each and the ratios to the keyed read; then the medians
over the runs.
"""

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import Database
from app.core.ids import new_id
from app.models import Bid, ComputeRequest, Offer, Order
from bench import _common as common
from bench import _market as market_mod
from bench.match import SEED, match_requests

KINDS = ("bids", "plain", "read", "index", "region")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--offers", type=int, default=100_000)
    p.add_argument("--providers", type=int, default=2_000)
    p.add_argument("--enterprises", type=int, default=400)
    p.add_argument("--orders", type=int, default=100_000, help="live orders")
    p.add_argument("--requests", type=int, default=400, help="requests that accept bids")
    p.add_argument("--bids", type=int, default=20_000, help="live bids in all")
    p.add_argument("--calls", type=int, default=300, help="measured calls of each kind per run")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the database the run created")
    p.add_argument(
        "--reuse", action="store_true", help="measure a market already built there (with --keep)"
    )
    return p.parse_args()


def bid_rows(
    market: market_mod.Market, requests: list[dict[str, Any]], n_bids: int
) -> list[dict[str, Any]]:
    """Live bids on the requests: each from offers of the models it asks for, below list."""
    rng = random.Random(SEED + 23)
    by_acc: dict[str, list[market_mod.OfferInfo]] = {}
    for offer in market.sellable():
        by_acc.setdefault(offer.accelerator_id, []).append(offer)
    every = market.sellable()
    per_request = max(1, n_bids // len(requests))
    rows = []
    for request in requests:
        pool = [o for a in request["accelerator_ids"] for o in by_acc.get(a, [])] or every
        for offer in rng.sample(pool, min(per_request, len(pool))):
            price = (offer.price * Decimal(rng.uniform(0.70, 0.95))).quantize(Decimal("0.01"))
            rows.append(
                {
                    "id": new_id("bid"),
                    "request_id": request["id"],
                    "offer_id": offer.id,
                    "provider_id": offer.provider_id,
                    "price_per_card_hour": max(price, Decimal("0.01")),
                    "valid_until": request["latest_start"],
                    "status": "live",
                    "created_at": market.now,
                }
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
        orders = await market_mod.add_live_orders(db, market, args.orders, seed=SEED)
        with_bids = match_requests(market, args.requests)
        for row in with_bids:
            row.update(accept_bids=True, bids_close_at=row["latest_start"])
        twins = [{**row, "id": new_id("req"), "accept_bids": False} for row in with_bids]
        await market_mod.insert_chunked(db, ComputeRequest, with_bids + twins)
        bids = bid_rows(market, with_bids, args.bids)
        await market_mod.insert_chunked(db, Bid, bids)
        print(
            f"market: {args.offers} offers, {orders['live']} live orders, "
            f"{len(with_bids)} requests with {len(bids)} live bids (and their twins without) "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    finally:
        await db.dispose()


async def targets(url: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(request with bids, its twin without) pairs, and offers to read."""
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(ComputeRequest.id, ComputeRequest.accept_bids, ComputeRequest.created_at)
                    .where(ComputeRequest.id.not_in(select(Order.request_id)))
                    .order_by(ComputeRequest.id)
                )
            ).all()
            offers = list(await session.scalars(select(Offer.id).order_by(Offer.id)))
    finally:
        await db.dispose()
    with_bids = [r.id for r in rows if r.accept_bids]
    plain = [r.id for r in rows if not r.accept_bids]
    rng = random.Random(SEED + 29)
    return list(zip(with_bids, plain, strict=False)), rng.sample(offers, min(1000, len(offers)))


def measure(
    server: common.Server,
    pairs: list[tuple[str, str]],
    offers: list[str],
    calls: int,
    warmup: int,
) -> dict[str, Any]:
    headers = common.operator_headers()
    statuses: Counter[str] = Counter()
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    bid_matches = 0
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:

        def timed(kind: str, path: str, record: bool) -> httpx.Response:
            t0 = time.perf_counter()
            r = client.get(path)
            if record:
                seconds[kind].append(time.perf_counter() - t0)
                statuses[f"{kind} {r.status_code}"] += 1
            return r

        for i in range(warmup + calls):
            record = i >= warmup
            with_bids, plain = pairs[i % len(pairs)]
            r = timed("bids", f"/v1/compute-requests/{with_bids}/matches?limit=10", record)
            if record and r.status_code == 200:
                bid_matches += sum(1 for m in r.json()["items"] if m.get("bid_id"))
            timed("plain", f"/v1/compute-requests/{plain}/matches?limit=10", record)
            timed("read", f"/v1/offers/{offers[i % len(offers)]}", record)
            timed("index", "/v1/price-index", record)
            timed("region", "/v1/price-index?region_prefix=3301", record)
    return {
        **{kind: common.summary_ms(values) for kind, values in seconds.items()},
        "rss_mb": server.rss_mb(),
        "statuses": dict(statuses),
        "bid_matches": bid_matches / calls,
    }


def main() -> None:
    args = parse_args()
    db = common.start(args.database_url, prefix="cm-bench-market")
    try:
        existing = asyncio.run(market_mod.count(Database(db.url), Offer))
        if existing and not args.reuse:
            sys.exit(f"the database already holds {existing} offers: pass --reuse, or an empty one")
        if not existing:
            asyncio.run(build(db.url, args))
            if not db.is_sqlite:
                common.vacuum_analyze(db.url)
            code, words = common.check_invariants(db.url)
            print(f"check-invariants (exit {code}): {words}", flush=True)
        pairs, offers = asyncio.run(targets(db.url))
        print(
            f"measuring {args.calls} calls of each kind per run over {len(pairs)} request "
            f"pairs, {args.runs} runs, one uvicorn worker",
            flush=True,
        )
        results = []
        for run in range(1, args.runs + 1):
            with common.running_server(db.url) as server:
                r = measure(server, pairs, offers, args.calls, args.warmup)
            results.append(r)
            read = r["read"]["p50"]
            print(
                f"run {run}: "
                + " | ".join(
                    f"{kind} p50 {r[kind]['p50']:.1f} p99 {r[kind]['p99']:.1f} ms"
                    f" ({r[kind]['p50'] / read:.1f}x)"
                    for kind in KINDS
                )
                + f" | RSS {r['rss_mb']:.0f} MB | {r['bid_matches']:.1f} bid matches per answer"
                f" | {r['statuses']}",
                flush=True,
            )
        print(f"\n{db.backend}, median of {len(results)} runs:")
        for kind in KINDS:
            med = {q: common.median([r[kind][q] for r in results]) for q in ("p50", "p95", "p99")}
            ratio = common.median([r[kind]["p50"] / r["read"]["p50"] for r in results])
            print(
                f"  {kind:6} p50 {med['p50']:7.1f} ms  p95 {med['p95']:7.1f} ms  "
                f"p99 {med['p99']:7.1f} ms  ({ratio:.1f}x the keyed read's p50)"
            )
        print(f"  server RSS {common.median([r['rss_mb'] for r in results]):.0f} MB")
    finally:
        common.close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
