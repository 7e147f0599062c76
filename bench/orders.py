"""Order placement under 32 concurrent clients, beside the keyed read, on one server.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/orders.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/cm_bench_orders

Builds a market with bulk inserts (providers with listings, 200 offers with
cards enough for every order, several hundred enterprises across Binjiang, the
rest of Hangzhou, the rest of Zhejiang and beyond, an API key for each), and
for every run a batch of compute requests with a quote each, priced by the real
subsidy engine (quotes go straight into the table, valid for six hours). Then for
each run it starts `uvicorn app.main:app --workers 2`, and with 32 concurrent
httpx clients:

- GET /healthz: what these clients and the middleware reach with no database;
- reads GET /v1/offers/{id} (each client with its provider's key): the baseline;
- places an order on every quote of the run, POST /v1/orders with an
  Idempotency-Key (each client with its enterprise's key);

prints requests/s, p50/p95/p99 and the statuses of both, then runs
`python -m app.cli check-invariants` against the database and prints its
answer. Last, the medians over the runs.
"""

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import Database
from app.core.ids import new_id
from app.core.security import generate_key, hash_key
from app.core.timeutil import today_shanghai
from app.matching import engine
from app.models import ApiKey, ComputeRequest, Offer, Quote
from bench import _common as common
from bench import _market as market_mod

SEED = 2027
MODELS = {
    "huawei-ascend-910b": 30,
    "huawei-ascend-910c": 10,
    "cambricon-mlu590": 8,
    "nvidia-h20": 20,
    "nvidia-a800-sxm-80gb": 17,
    "nvidia-h800-sxm": 15,
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--offers", type=int, default=200)
    p.add_argument("--providers", type=int, default=40)
    p.add_argument("--enterprises", type=int, default=400)
    p.add_argument(
        "--orders",
        type=int,
        default=8000,
        help="quotes prepared per run: httpx places them all, wrk as many as it can",
    )
    p.add_argument("--reads", type=int, default=3000, help="keyed reads per run")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200, help="orders and reads before measuring")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--load",
        choices=["wrk", "httpx"],
        default="wrk" if common.have_wrk() else "httpx",
        help="load generator: wrk (Debian package wrk; the default when installed) for a "
        "fixed time, or asyncio httpx clients for a fixed count",
    )
    p.add_argument("--seconds", type=int, default=10, help="wrk: seconds per measurement")
    p.add_argument("--keep", action="store_true", help="keep the database the run created")
    return p.parse_args()


class Prepared:
    def __init__(self) -> None:
        self.provider_keys: dict[str, str] = {}  # provider id -> secret
        self.enterprise_keys: dict[str, str] = {}
        self.offers_of: dict[str, list[str]] = {}  # provider id -> its offer ids
        self.batches: list[list[tuple[str, str]]] = []  # per run: (quote id, enterprise id)


async def prepare(url: str, args: argparse.Namespace) -> Prepared:
    db = Database(url)
    out = Prepared()
    rng = random.Random(SEED)
    try:
        market = await market_mod.build_registry(
            db, providers=args.providers, offers=0, enterprises=args.enterprises, seed=SEED
        )
        now = market.now
        sellers = [pid for pid, (status, _) in market.providers.items() if status == "listed"]
        domestic = {m: not m.startswith("nvidia") for m in MODELS}
        offer_rows: list[dict[str, Any]] = []
        for k in range(args.offers):
            pid = rng.choice(sellers)
            model = market_mod.weighted(rng, MODELS)
            offer = market_mod.OfferInfo(
                id=new_id("off"),
                provider_id=pid,
                accelerator_id=model,
                domestic=domestic[model],
                # Cards enough that no order is refused for capacity.
                cards_total=4096,
                price=market_mod.price_in(rng, model),
                available_from=now - timedelta(days=1),
                available_until=now + timedelta(days=400),
            )
            market.offers.append(offer)
            out.offers_of.setdefault(pid, []).append(offer.id)
            offer_rows.append(
                {
                    "id": offer.id,
                    "provider_id": pid,
                    "external_id": f"bench-orders-{k}",
                    "accelerator_id": model,
                    "domestic": offer.domestic,
                    "cards_total": offer.cards_total,
                    "price_per_card_hour": offer.price,
                    "available_from": offer.available_from,
                    "available_until": offer.available_until,
                    "min_hours": 1,
                    "region_code": "330108",
                    "supports_training": True,
                    "supports_inference": True,
                    "free_trial_hours": 0,
                    "free_migration_support": False,
                    "status": "active",
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        await market_mod.insert_chunked(db, Offer, offer_rows)

        key_rows: list[dict[str, Any]] = []
        for pid in out.offers_of:
            secret = generate_key()
            out.provider_keys[pid] = secret
            key_rows.append(_key_row(secret, "provider", provider_id=pid, now=now))
        for enterprise in market.enterprises:
            secret = generate_key()
            out.enterprise_keys[enterprise.id] = secret
            key_rows.append(_key_row(secret, "enterprise", enterprise_id=enterprise.id, now=now))
        await market_mod.insert_chunked(db, ApiKey, key_rows)

        contract_date = today_shanghai()
        requests: list[dict[str, Any]] = []
        quotes: list[dict[str, Any]] = []
        for _ in range(args.runs):
            batch = []
            for _ in range(args.orders + args.warmup):
                enterprise = rng.choice(market.enterprises)
                offer = rng.choice(market.offers)
                cards = rng.choice([1, 2, 4, 8])
                hours = rng.choice([24, 48, 72, 168, 336])
                start = now + timedelta(hours=rng.randint(24, 90 * 24))
                purpose = market_mod.weighted(rng, market_mod.PURPOSES)
                request = market_mod.request_row(
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
                result = market_mod.price_subsidy(
                    market,
                    enterprise,
                    offer,
                    purpose=purpose,
                    relies_on_filed_model=request["filed_model"] is not None,
                    gross=gross,
                    contract_date=contract_date,
                )
                quote_id = new_id("quo")
                requests.append(request)
                quotes.append(
                    {
                        "id": quote_id,
                        "enterprise_id": enterprise.id,
                        "request_id": request["id"],
                        # From the real clock: the market's clock is cut to the hour.
                        "expires_at": datetime.now(UTC) + timedelta(hours=6),
                        "match": market_mod.match_json(offer, cards, hours, start, gross, result),
                        "program_versions": {p.id: 1 for p in market.programs},
                        "created_at": now,
                    }
                )
                batch.append((quote_id, enterprise.id))
            out.batches.append(batch)
        await market_mod.insert_chunked(db, ComputeRequest, requests)
        await market_mod.insert_chunked(db, Quote, quotes)
        regions = Counter(_where(e.region_code) for e in market.enterprises)
        print(
            f"market: {len(out.offers_of)} providers selling {args.offers} offers, "
            f"{args.enterprises} enterprises ({dict(regions)}), "
            f"{args.runs} × {args.orders + args.warmup} quotes",
            flush=True,
        )
        return out
    finally:
        await db.dispose()


def _where(region: str) -> str:
    if region == market_mod.BINJIANG:
        return "Binjiang"
    if region.startswith("3301"):
        return "Hangzhou"
    return "Zhejiang" if region.startswith("33") else "outside"


def _key_row(secret: str, role: str, *, now: Any, **owner: str) -> dict[str, Any]:
    return {
        "id": new_id("key"),
        "key_hash": hash_key(secret),
        "prefix": secret[:10],
        "role": role,
        "provider_id": owner.get("provider_id"),
        "enterprise_id": owner.get("enterprise_id"),
        "name": "bench",
        "created_at": now,
        "revoked_at": None,
    }


async def _drive(
    base_url: str, clients: int, jobs: list[tuple[str, dict[str, Any]]]
) -> tuple[list[float], Counter[str], float]:
    """Run the jobs (method+path, request kwargs) on `clients` concurrent clients."""
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            while True:
                try:
                    what, kwargs = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                method, path = what.split(" ", 1)
                t0 = time.perf_counter()
                r = await http.request(method, path, **kwargs)
                latencies.append(time.perf_counter() - t0)
                reason = ""
                if r.status_code == 409:
                    reason = " " + str(r.json().get("reason"))
                statuses[f"{r.status_code}{reason}"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - started


def read_jobs(prepared: Prepared, n: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    providers = list(prepared.offers_of)
    jobs = []
    for _ in range(n):
        pid = rng.choice(providers)
        offer_id = rng.choice(prepared.offers_of[pid])
        headers = {"Authorization": f"Bearer {prepared.provider_keys[pid]}"}
        jobs.append((f"GET /v1/offers/{offer_id}", {"headers": headers}))
    return jobs


def order_jobs(
    prepared: Prepared, batch: list[tuple[str, str]]
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "POST /v1/orders",
            {
                "json": {"quote_id": quote_id},
                "headers": {
                    "Authorization": f"Bearer {prepared.enterprise_keys[enterprise_id]}",
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            },
        )
        for quote_id, enterprise_id in batch
    ]


def measure_httpx(
    base_url: str,
    prepared: Prepared,
    batch: list[tuple[str, str]],
    args: argparse.Namespace,
    rng: random.Random,
) -> dict[str, Any]:
    # What the load generator and the middleware reach with no database at all.
    ceiling = asyncio.run(_drive(base_url, args.clients, [("GET /healthz", {})] * args.reads))
    reads = asyncio.run(_drive(base_url, args.clients, read_jobs(prepared, args.reads, rng)))
    orders = asyncio.run(_drive(base_url, args.clients, order_jobs(prepared, batch)))
    return {
        "read": common.summary_ms(reads[0]),
        "read_rps": len(reads[0]) / reads[2],
        "ceiling_rps": len(ceiling[0]) / ceiling[2],
        "read_statuses": dict(reads[1]),
        "order": common.summary_ms(orders[0]),
        "orders_ps": orders[1]["201"] / orders[2],
        "order_statuses": dict(orders[1]),
    }


def measure_wrk(
    base_url: str,
    prepared: Prepared,
    batch: list[tuple[str, str]],
    args: argparse.Namespace,
    rng: random.Random,
) -> dict[str, Any]:
    def wrk(requests: list[common.WrkRequest], cycle: bool) -> common.WrkResult:
        return common.run_wrk(
            base_url, requests, connections=args.clients, seconds=args.seconds, cycle=cycle
        )

    ceiling = wrk([common.WrkRequest("GET", "/healthz", {})], cycle=True)
    reads = wrk(
        [
            common.WrkRequest("GET", path, kwargs["headers"])
            for path, kwargs in (
                (what.split(" ", 1)[1], kwargs) for what, kwargs in read_jobs(prepared, 2000, rng)
            )
        ],
        cycle=True,
    )
    orders = wrk(
        [
            common.WrkRequest(
                "POST",
                "/v1/orders",
                {**kwargs["headers"], "Content-Type": "application/json"},
                json.dumps(kwargs["json"]),
            )
            for _, kwargs in order_jobs(prepared, batch)
        ],
        cycle=False,
    )
    if orders.exhausted:
        print(f"  the run outlasted its {len(batch)} quotes: raise --orders", flush=True)

    def summary(result: common.WrkResult) -> dict[str, float]:
        return {"p50": result.p50, "p95": result.p95, "p99": result.p99, "max": result.max}

    return {
        "read": summary(reads),
        "read_rps": reads.rps,
        "ceiling_rps": ceiling.rps,
        "read_statuses": reads.statuses,
        "order": summary(orders),
        "orders_ps": orders.per_second("201"),
        "order_statuses": orders.statuses,
    }


def main() -> None:
    args = parse_args()
    db = common.start(args.database_url, prefix="cm-bench-orders")
    backend = db.backend
    try:
        prepared = asyncio.run(prepare(db.url, args))
        if not db.is_sqlite:
            common.vacuum_analyze(db.url)
        rng = random.Random(SEED + 1)
        results = []
        for run, batch in enumerate(prepared.batches, start=1):
            warm, measured = batch[: args.warmup], batch[args.warmup :]
            with common.running_server(db.url, workers=args.workers) as server:
                asyncio.run(_drive(server.base_url, args.clients, read_jobs(prepared, 200, rng)))
                asyncio.run(_drive(server.base_url, args.clients, order_jobs(prepared, warm)))
                # Statistics of tables that hold orders now, as autovacuum would gather
                # them (off on this machine's PostgreSQL): see bench/README.md.
                common.vacuum_analyze(db.url)
                if args.load == "wrk":
                    r = measure_wrk(server.base_url, prepared, measured, args, rng)
                else:
                    r = measure_httpx(server.base_url, prepared, measured, args, rng)
                rss = server.rss_mb()
            code, words = common.check_invariants(db.url)
            r["invariants"] = code
            results.append(r)
            o, k = r["order"], r["read"]
            print(
                f"run {run}: orders {r['orders_ps']:.0f}/s p50 {o['p50']:.1f} p95 {o['p95']:.1f} "
                f"p99 {o['p99']:.1f} ms {r['order_statuses']} | keyed read "
                f"{r['read_rps']:.0f}/s p50 {k['p50']:.1f} p95 {k['p95']:.1f} p99 {k['p99']:.1f} "
                f"ms {r['read_statuses']} | GET /healthz {r['ceiling_rps']:.0f}/s | "
                f"RSS {rss:.0f} MB (both workers)\n"
                f"       check-invariants (exit {code}): {words}",
                flush=True,
            )
        med = {
            name: common.median([r[name] for r in results])
            for name in ("orders_ps", "read_rps", "ceiling_rps")
        }
        q = {
            f"{kind} {p}": common.median([r[kind][p] for r in results])
            for kind in ("order", "read")
            for p in ("p50", "p95", "p99")
        }
        broken = sum(1 for r in results if r["invariants"] != 0)
        print(
            f"\n{backend}, {args.workers} workers, {args.clients} clients ({args.load}), median of "
            f"{len(results)} runs:\n"
            f"  orders     {med['orders_ps']:6.0f}/s  p50 {q['order p50']:6.1f} ms  "
            f"p95 {q['order p95']:6.1f} ms  p99 {q['order p99']:6.1f} ms\n"
            f"  keyed read {med['read_rps']:6.0f}/s  p50 {q['read p50']:6.1f} ms  "
            f"p95 {q['read p95']:6.1f} ms  p99 {q['read p99']:6.1f} ms\n"
            f"  GET /healthz {med['ceiling_rps']:6.0f}/s (no database: middleware and load "
            f"generator)\n"
            f"  orders/s ÷ reads/s {med['orders_ps'] / med['read_rps']:.2f}; "
            f"invariants broken after {broken} of {len(results)} runs"
        )
    finally:
        common.close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
