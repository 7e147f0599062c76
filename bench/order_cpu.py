"""CPU per order placed: the app in process, orders one after another, no load generator.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/order_cpu.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/cm_bench_order_cpu

Throughput under load (`bench/orders.py`) moves ±20% from run to run on this
machine, so a change worth 5% cannot be told from noise there. This measures
what throughput is made of: the CPU an order costs. It builds the market of
`bench/orders.py`, creates the app in this process (`app.main.create_app`,
every middleware, logging to /dev/null), and places the quotes through the ASGI
interface on uvloop (as uvicorn does), `--concurrency` at a time (default 1: no
lock waits, no pool queue), each with its own Idempotency-Key. After the
warm-up it analyzes the database (as autovacuum would; see bench/README.md).
It reports, per order, this process's CPU (`time.process_time`: the app's
Python), PostgreSQL's CPU (every `postgres` process, from /proc) and the wall
time, over `--rounds` rounds of `--orders` orders. With `--profile FILE` it
writes a cProfile of the last round.
"""

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as common
from bench import orders as orders_bench

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--orders", type=int, default=1000, help="orders per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip the ANALYZE after the warm-up (see bench/README.md)",
    )
    p.add_argument("--profile", help="write a cProfile of the last round to this file")
    p.add_argument("--keep", action="store_true", help="keep the database the run created")
    return p.parse_args()


def postgres_cpu_seconds() -> float:
    """CPU used so far by every process named postgres (the server and its backends)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


class Asgi:
    """POST /v1/orders straight into the app: no sockets, no HTTP parsing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


async def place(
    asgi: Asgi, jobs: list[tuple[dict[str, str], bytes]], concurrency: int
) -> dict[int, int]:
    statuses: dict[int, int] = {}
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            headers, body = queue.pop()
            status = await asgi.post("/v1/orders", headers, body)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def measure(url: str, prepared: Any, args: argparse.Namespace) -> list[dict[str, float]]:
    os.environ["DATABASE_URL"] = url
    os.environ["COMPUTEMATCH_ENVIRONMENT"] = "development"
    os.environ.setdefault("COMPUTEMATCH_OPERATOR_KEY", common.OPERATOR_KEY)
    # The app logs as the server does (JSON lines), into /dev/null.
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        from app.main import create_app

        app = create_app()
        asgi = Asgi(app)
        jobs = [
            (
                {
                    "Authorization": f"Bearer {prepared.enterprise_keys[enterprise_id]}",
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": "application/json",
                },
                json.dumps({"quote_id": quote_id}).encode(),
            )
            for quote_id, enterprise_id in prepared.batches[0]
        ]
        results = []
        async with app.router.lifespan_context(app):
            await place(asgi, jobs[: args.warmup], args.concurrency)
            if not args.no_analyze:
                await common.analyze(url)
            jobs = jobs[args.warmup :]
            for round_ in range(args.rounds):
                batch, jobs = jobs[: args.orders], jobs[args.orders :]
                profiler = (
                    cProfile.Profile() if args.profile and round_ == args.rounds - 1 else None
                )
                pg0, cpu0, wall0 = postgres_cpu_seconds(), time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                statuses = await place(asgi, batch, args.concurrency)
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                pg1, cpu1, wall1 = postgres_cpu_seconds(), time.process_time(), time.perf_counter()
                n = len(batch)
                results.append(
                    {
                        "app_ms": (cpu1 - cpu0) * 1000 / n,
                        "pg_ms": (pg1 - pg0) * 1000 / n,
                        "wall_ms": (wall1 - wall0) * 1000 / n,
                        "placed": statuses.get(201, 0),
                        "statuses": statuses,  # type: ignore[dict-item]
                    }
                )
        return results
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(null)


def main() -> None:
    args = parse_args()
    db = common.start(args.database_url, prefix="cm-bench-order-cpu")
    try:
        market_args = argparse.Namespace(
            offers=200,
            providers=40,
            enterprises=400,
            runs=1,
            orders=args.orders * args.rounds,
            warmup=args.warmup,
        )
        prepared = asyncio.run(orders_bench.prepare(db.url, market_args))
        if not db.is_sqlite:
            common.vacuum_analyze(db.url)
        # The loop uvicorn runs the app on (its default, `--loop auto`, takes uvloop).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(measure(db.url, prepared, args))
        for k, r in enumerate(results, start=1):
            print(
                f"round {k}: app {r['app_ms']:.2f} ms + PostgreSQL {r['pg_ms']:.2f} ms of CPU "
                f"per order, {r['wall_ms']:.2f} ms wall; statuses {r['statuses']}",
                flush=True,
            )
        med = {
            name: statistics.median(r[name] for r in results)
            for name in ("app_ms", "pg_ms", "wall_ms")
        }
        print(
            f"\n{db.backend}, concurrency {args.concurrency}, median of {len(results)} rounds "
            f"of {args.orders} orders: app {med['app_ms']:.2f} ms, PostgreSQL "
            f"{med['pg_ms']:.2f} ms, in all {med['app_ms'] + med['pg_ms']:.2f} ms of CPU per "
            f"order; {med['wall_ms']:.2f} ms wall",
            flush=True,
        )
        code, words = common.check_invariants(db.url)
        print(f"check-invariants (exit {code}): {words}")
    finally:
        common.close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
