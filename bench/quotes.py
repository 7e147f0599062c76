"""What-if subsidy quotes under 32 concurrent clients, beside the keyed read, on one server.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/quotes.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/cm_bench_quotes

On a migrated database (the seeded programs, with some of their budgets used),
with an operator API key per client, it
starts `uvicorn app.main:app --workers 2` for each run and drives with wrk
(Debian package wrk), 32 connections, for `--seconds` each:

- GET /healthz: what the middleware and the load generator reach with no database;
- GET /v1/subsidy-programs/{id}: the keyed read, the baseline;
- POST /v1/subsidy-quotes: what-if quotes over a mix of enterprises (Binjiang,
  the rest of Hangzhou, the rest of Zhejiang, elsewhere), hardware origins,
  purposes and amounts.

Each client has a key of its own, so no key reaches the rate limit; the limiter
still counts every request. Prints requests/s and p50/p95/p99 of each, and the
medians over the runs.
"""

import argparse
import asyncio
import json
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import Database
from app.core.ids import new_id
from app.core.security import generate_key, hash_key
from app.core.timeutil import today_shanghai, utcnow
from app.models import ApiKey, BudgetUsage
from bench import _common as common

SEED = 2028
PROGRAMS = ["binjiang-compute-2025", "hz-city-compute-2024", "zj-province-compute-2025"]
REGIONS = ["330108", "330106", "330110", "330602", "330203", "310115"]
LISTS = [
    ["binjiang-compute-partner", "hz-matchmaking-partner"],
    ["hz-matchmaking-partner"],
    ["hz-planned-icc"],
    [],
]
PURPOSES = ["training", "inference", "maas", "agent"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=int, default=10, help="per measurement")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the database the run created")
    return p.parse_args()


async def prepare(url: str, n: int) -> list[str]:
    """`n` operator keys, and some of this year's budgets used."""
    db = Database(url)
    try:
        secrets = [generate_key() for _ in range(n)]
        async with db.sessionmaker() as session:
            year = today_shanghai().year
            for program_id in ("binjiang-compute-2025", "hz-city-compute-2024"):
                used = Decimal("12345678.90")
                session.add(BudgetUsage(program_id=program_id, year=year, used=used))
            for secret in secrets:
                session.add(
                    ApiKey(
                        id=new_id("key"),
                        key_hash=hash_key(secret),
                        prefix=secret[:10],
                        role="operator",
                        name="bench",
                        created_at=utcnow(),
                    )
                )
            await session.commit()
        return secrets
    finally:
        await db.dispose()


def quote_bodies(rng: random.Random, n: int) -> list[str]:
    contract_date = today_shanghai().isoformat()
    bodies = []
    for _ in range(n):
        purpose = rng.choice(PURPOSES)
        bodies.append(
            json.dumps(
                {
                    "enterprise": {
                        "region_code": rng.choice(REGIONS),
                        "is_foundation_model_enterprise": rng.random() < 0.1,
                        "relies_on_filed_model": purpose in ("maas", "agent"),
                        "relaxed_caps": {},
                    },
                    "provider": {"lists": rng.choice(LISTS), "status": "listed"},
                    "domestic": rng.random() < 0.6,
                    "purpose": purpose,
                    "gross_amount": f"{rng.randint(1_000, 5_000_000)}.00",
                    "contract_date": contract_date,
                    "already_claimed": {p: "0.00" for p in PROGRAMS if rng.random() < 0.3},
                },
                separators=(",", ":"),
            )
        )
    return bodies


def main() -> None:
    args = parse_args()
    if not common.have_wrk():
        print("wrk is needed: apt-get install wrk")
        sys.exit(2)
    db = common.start(args.database_url, prefix="cm-bench-quotes")
    backend = db.backend
    try:
        keys = asyncio.run(prepare(db.url, args.clients))
        rng = random.Random(SEED)
        bodies = quote_bodies(rng, 2000)

        def keyed(i: int) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[i % len(keys)]}"}

        reads = [
            common.WrkRequest("GET", f"/v1/subsidy-programs/{PROGRAMS[i % 3]}", keyed(i))
            for i in range(600)
        ]
        quotes = [
            common.WrkRequest(
                "POST",
                "/v1/subsidy-quotes",
                {**keyed(i), "Content-Type": "application/json"},
                body,
            )
            for i, body in enumerate(bodies)
        ]
        results: list[dict[str, Any]] = []
        for run in range(1, args.runs + 1):
            with common.running_server(db.url, workers=args.workers) as server:

                def wrk(requests: list[common.WrkRequest]) -> common.WrkResult:
                    return common.run_wrk(
                        server.base_url,
                        requests,
                        connections=args.clients,
                        seconds=args.seconds,
                        cycle=True,
                    )

                wrk(quotes[:200])  # warm-up: every worker has answered every kind
                ceiling = wrk([common.WrkRequest("GET", "/healthz", {})])
                read = wrk(reads)
                quote = wrk(quotes)
            r = {"ceiling": ceiling, "read": read, "quote": quote}
            results.append(r)
            print(
                f"run {run}: quotes {quote.per_second('200'):.0f}/s p50 {quote.p50:.1f} "
                f"p99 {quote.p99:.1f} ms {quote.statuses} | keyed read "
                f"{read.per_second('200'):.0f}/s p50 {read.p50:.1f} p99 {read.p99:.1f} ms "
                f"{read.statuses} | GET /healthz {ceiling.rps:.0f}/s",
                flush=True,
            )
        med = {
            name: common.median([r[name].per_second("200") for r in results])
            for name in ("quote", "read", "ceiling")
        }
        q = {
            f"{kind} {p}": common.median([getattr(r[kind], p) for r in results])
            for kind in ("quote", "read")
            for p in ("p50", "p95", "p99")
        }
        print(
            f"\n{backend}, {args.workers} workers, {args.clients} clients (wrk), median of "
            f"{len(results)} runs:\n"
            f"  what-if quotes {med['quote']:6.0f}/s  p50 {q['quote p50']:6.1f} ms  "
            f"p95 {q['quote p95']:6.1f} ms  p99 {q['quote p99']:6.1f} ms\n"
            f"  keyed read     {med['read']:6.0f}/s  p50 {q['read p50']:6.1f} ms  "
            f"p95 {q['read p95']:6.1f} ms  p99 {q['read p99']:6.1f} ms\n"
            f"  GET /healthz   {med['ceiling']:6.0f}/s\n"
            f"  quotes/s ÷ reads/s {med['quote'] / med['read']:.2f}"
        )
    finally:
        common.close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
