"""The console's pages with a year of data: p50/p95 of each page, one at a time.

Builds the bench market (providers, offers, enterprises) and 100,000 orders with their
ledger entries (bench/_market.py), spreads the orders' and entries' writing times over
the year so far (so that the burn chart and the monthly shares have a year to draw),
completes the orders whose window has ended (settle entries), serves the app with a
real uvicorn, signs in to the console as the operator, and reads each page N times
in turn.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/console.py [--orders 100000]
        [--requests 200] [--database-url postgresql+asyncpg://...] [--keep]
        [--screenshots DIR]
"""

import argparse
import asyncio
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import Database, begin_write
from app.core.ids import new_id
from app.models import LedgerEntry, Order, OrderPart
from bench import _market as market_mod
from bench._common import (
    OPERATOR_KEY,
    close_database,
    running_server,
    start,
    summary_ms,
    vacuum_analyze,
)

SEED = 2026
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def spread_and_settle(url: str, seed: int) -> dict[str, int]:
    """Orders written across the year so far (each order's ledger entries with it);
    orders whose window has ended are completed at their gross, their subsidy settled."""
    rng = random.Random(seed)
    db = Database(url)
    now = datetime.now(UTC)
    start_of_year = datetime(now.year, 1, 1, tzinfo=UTC)
    span = (now - start_of_year).total_seconds()
    settled = 0
    try:
        async with db.sessionmaker() as session:
            await begin_write(session)
            orders = (
                await session.execute(
                    select(Order.id, Order.status, Order.end, Order.enterprise_id)
                )
            ).all()
            # Demand grows over the year (more orders later), as a new programme's does.
            when = {
                o.id: start_of_year + timedelta(seconds=span * (rng.random() ** 0.7))
                for o in orders
            }
            for chunk in range(0, len(orders), 2000):
                batch = orders[chunk : chunk + 2000]
                await session.execute(
                    update(Order),
                    [{"id": o.id, "created_at": when[o.id]} for o in batch],
                )
            entries = (await session.execute(select(LedgerEntry.id, LedgerEntry.order_id))).all()
            for chunk in range(0, len(entries), 5000):
                await session.execute(
                    update(LedgerEntry),
                    [
                        {"id": e.id, "created_at": when[e.order_id]}
                        for e in entries[chunk : chunk + 5000]
                    ],
                )
            # Completed: the reserved orders whose window has ended.
            done = [o for o in orders if o.status == "reserved" and o.end <= now]
            parts = (
                {
                    p.order_id: p
                    for p in (
                        await session.scalars(
                            select(OrderPart).where(OrderPart.order_id.in_([o.id for o in done]))
                        )
                    ).all()
                }
                if done
                else {}
            )
            reserve = {
                (e.order_id): e
                for e in (
                    await session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "reserve"))
                ).all()
            }
            settle_rows: list[dict[str, Any]] = []
            for o in done:
                part = parts[o.id]
                part.executed_amount = part.gross_amount
                part.settled_subsidy = part.subsidy_amount
                entry = reserve.get(o.id)
                if entry is not None:
                    settle_rows.append(
                        {
                            "id": new_id("led"),
                            "enterprise_id": entry.enterprise_id,
                            "program_id": entry.program_id,
                            "year": entry.year,
                            "order_id": o.id,
                            "part_id": entry.part_id,
                            "kind": "settle",
                            "amount": entry.amount,
                            "created_at": o.end,
                        }
                    )
                settled += 1
            for chunk in range(0, len(done), 2000):
                await session.execute(
                    update(Order),
                    [
                        {
                            "id": o.id,
                            "status": "completed",
                            "executed_amount": parts[o.id].gross_amount,
                            "completed_at": o.end,
                        }
                        for o in done[chunk : chunk + 2000]
                    ],
                )
            await session.commit()
        if settle_rows:
            await market_mod.insert_chunked(db, LedgerEntry, settle_rows)
    finally:
        await db.dispose()
    return {"orders": len(orders), "completed": settled}


def sign_in(client: httpx.Client) -> None:
    form = client.get("/console/login")
    token = CSRF.search(form.text)
    assert token, form.text
    signed = client.post(
        "/console/login", data={"api_key": OPERATOR_KEY, "csrf_token": token.group(1)}
    )
    assert signed.status_code == 303, signed.text


def measure(base_url: str, pages: list[str], rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        sign_in(client)
        for path in pages:
            client.get(path)  # warm
            latencies = []
            for _ in range(rounds):
                started = time.perf_counter()
                resp = client.get(path)
                latencies.append(time.perf_counter() - started)
                assert resp.status_code == 200, (path, resp.status_code)
            out[path] = summary_ms(latencies)
    return out


def screenshots(base_url: str, pages: list[str], directory: str) -> None:
    """Full-page screenshots of each page, as the operator sees it, for people to look at."""
    from playwright.sync_api import sync_playwright

    Path(directory).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page.goto(base_url + "/console/login")
        page.fill("#api_key", OPERATOR_KEY)
        page.click("button[type=submit]")
        page.wait_for_url(base_url + "/console/")
        for n, path in enumerate(pages, start=1):
            page.goto(base_url + path)
            name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "programs"
            page.screenshot(path=f"{directory}/year-{n:02d}-{name}.png", full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--offers", type=int, default=20000)
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--screenshots", help="a directory for screenshots of each page")
    args = parser.parse_args()

    db = start(args.database_url, prefix="cm-bench-console")
    try:

        async def build() -> str:
            database = Database(db.url)
            try:
                started = time.perf_counter()
                market = await market_mod.build_registry(
                    database,
                    providers=args.providers,
                    offers=args.offers,
                    enterprises=args.enterprises,
                    seed=SEED,
                )
                orders = await market_mod.add_live_orders(database, market, args.orders, seed=SEED)
            finally:
                await database.dispose()
            spread = await spread_and_settle(db.url, SEED)
            return (
                f"{orders['live']} live orders (+{orders['cancelled']} cancelled, "
                f"{orders['ledger_entries']} ledger entries), {spread['completed']} completed, "
                f"built in {time.perf_counter() - started:.0f} s"
            )

        print(asyncio.run(build()), flush=True)
        vacuum_analyze(db.url)
        pages = [
            "/console/",
            "/console/programs/binjiang-compute-2025",
            "/console/programs/hz-city-compute-2024",
            "/console/market",
        ]
        with running_server(db.url) as server:
            results = measure(server.base_url, pages, args.rounds)
            if args.screenshots:
                screenshots(server.base_url, [*pages, "/console/?lang=en"], args.screenshots)
        print(f"\n{db.backend}: {args.rounds} reads of each page, one at a time")
        print(f"{'page':45} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for path, s in results.items():
            print(f"{path:45} {s['p50']:8.1f} {s['p95']:8.1f} {s['max']:8.1f}")
    finally:
        close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
