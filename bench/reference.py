"""The spec's reference figures, measured on this machine today.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/reference.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/cm_bench_reference

`quality.md` states its speed targets for "this 2-core machine" and calibrates
them with three endpoints: a bare FastAPI JSON answer (about 8,000–9,000/s with
two uvicorn workers), one SQLAlchemy ORM primary-key read per request (about 900/s)
and one raw asyncpg read (about 2,500/s). The machine's speed moves from day to
day, so this serves exactly those three (bench/reference_app.py: nothing of
computematch around them) with two workers and wrk, 32 connections, the way the
other benchmarks drive computematch, and prints each beside the spec's figure.
A target can then be read against the same day's machine: 200 orders/s is about
0.22 of the spec's ORM read.
"""

import argparse
import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from bench import _common as common
from bench.reference_app import Base, Item

SPEC = {"bare": 8500.0, "orm": 900.0, "raw": 2500.0}
ROWS = 1000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=int, default=10, help="per measurement")
    p.add_argument("--runs", type=int, default=3)
    return p.parse_args()


async def fill(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
            await conn.execute(
                insert(Item),
                [
                    {"id": f"item-{k:05d}", "name": f"item {k}", "cards": k % 64}
                    for k in range(ROWS)
                ],
            )
    finally:
        await engine.dispose()


def main() -> None:
    args = parse_args()
    others = common.other_benchmarks_running()
    if others:
        print("other benchmarks are running; wait for them:\n  " + "\n  ".join(others))
        sys.exit(2)
    db = common.open_database(args.database_url, prefix="cm-bench-reference")
    print(f"database: {db.backend} ({db.url})", flush=True)
    try:
        asyncio.run(fill(db.url))
        rng = random.Random(7)
        kinds = ["bare", "orm"] if db.is_sqlite else ["bare", "orm", "raw"]
        results: dict[str, list[float]] = {k: [] for k in kinds}
        for run in range(1, args.runs + 1):
            with common.running_server(
                db.url,
                workers=args.workers,
                app="bench.reference_app:app",
                env={"REFERENCE_DATABASE_URL": db.url},
            ) as server:
                line = []
                for kind in kinds:
                    paths = (
                        ["/bare"]
                        if kind == "bare"
                        else [f"/{kind}/item-{rng.randrange(ROWS):05d}" for _ in range(2000)]
                    )
                    requests = [common.WrkRequest("GET", path, {}) for path in paths]
                    # A short warm-up: every connection of both workers' pools opened.
                    common.run_wrk(
                        server.base_url, requests, connections=args.clients, seconds=2, cycle=True
                    )
                    r = common.run_wrk(
                        server.base_url,
                        requests,
                        connections=args.clients,
                        seconds=args.seconds,
                        cycle=True,
                    )
                    if set(r.statuses) != {"200"}:
                        raise SystemExit(f"{kind}: unexpected answers {r.statuses}")
                    results[kind].append(r.rps)
                    line.append(f"{kind} {r.rps:.0f}/s p99 {r.p99:.1f} ms")
                print(f"run {run}: " + " | ".join(line), flush=True)
        print(
            f"\n{db.backend}, {args.workers} workers, {args.clients} clients (wrk), "
            f"median of {args.runs} runs, beside the spec's figure:"
        )
        for kind in kinds:
            med = common.median(results[kind])
            ratio = med / SPEC[kind]
            print(f"  {kind:5} {med:7.0f}/s   spec ≈ {SPEC[kind]:5.0f}/s   ratio {ratio:.2f}")
    finally:
        common.close_database(db, keep=False)


if __name__ == "__main__":
    main()
