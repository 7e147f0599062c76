"""The console's pages with a year of data: p50/p95 of each page, one at a time.

Builds the bench market (providers, offers, enterprises) and 100,000 orders with their
ledger entries (bench/_market.py), spreads the orders' and entries' writing times over
the year so far (so that the burn chart and the monthly shares have a year to draw),
completes the orders whose window has ended (settle entries), serves the app with a
real uvicorn, signs in to the console as the operator, and reads each page N times
in turn.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/console.py [--orders 100000]
        [--rounds 50] [--claims 5000] [--database-url postgresql+asyncpg://...] [--keep]
        [--reuse URL] [--screenshots DIR]
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
from app.core.money import ZERO
from app.models import ClaimPart, LedgerEntry, Offer, Order, OrderPart, VoucherClaim
from bench import _market as market_mod
from bench._common import (
    OPERATOR_KEY,
    analyze,
    close_database,
    migrate,
    open_database,
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


CLAIM_STATUSES = (
    # (status, share): most wait for review, as a busy office's queue does.
    ("submitted", 0.55),
    ("awaiting_second_review", 0.10),
    ("returned", 0.05),
    ("approved", 0.15),
    ("paid", 0.10),
    ("rejected", 0.05),
)
CHECKS = ("invoices_cover", "payments_cover", "documents_complete", "related_parties", "within_cap")


async def add_claims(url: str, count: int, seed: int) -> dict[str, int]:
    """`count` voucher claims, each of one settled order part, written directly (no
    documents, no events): their statuses spread as CLAIM_STATUSES, submitted over the
    year so far; approved and paid ones with their ledger `approve` (and `disburse`)
    entries, so that the programs' approved and paid figures have something to sum."""
    rng = random.Random(seed + 1)
    db = Database(url)
    now = datetime.now(UTC)
    try:
        async with db.sessionmaker() as session:
            settled = (
                await session.execute(
                    select(
                        LedgerEntry.order_id,
                        LedgerEntry.part_id,
                        LedgerEntry.enterprise_id,
                        LedgerEntry.program_id,
                        LedgerEntry.year,
                        LedgerEntry.amount,
                        LedgerEntry.created_at,
                        Offer.provider_id,
                    )
                    .join(OrderPart, OrderPart.id == LedgerEntry.part_id)
                    .join(Offer, Offer.id == OrderPart.offer_id)
                    .where(LedgerEntry.kind == "settle")
                    .order_by(LedgerEntry.id)
                )
            ).all()
        chosen = rng.sample(settled, min(count, len(settled)))
        statuses = [s for s, _ in CLAIM_STATUSES]
        weights = [w for _, w in CLAIM_STATUSES]
        claims: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for row in chosen:
            status = rng.choices(statuses, weights)[0]
            claim_id = new_id("clm")
            settled_at = (
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            )
            submitted = min(settled_at + timedelta(days=rng.uniform(1, 20)), now)
            approved = row.amount if status in ("approved", "paid") else None
            paid = row.amount if status == "paid" else ZERO
            claims.append(
                {
                    "id": claim_id,
                    "program_id": row.program_id,
                    "year": row.year,
                    "enterprise_id": row.enterprise_id,
                    "status": status,
                    "amount": row.amount,
                    "approved_amount": approved,
                    "disbursed_amount": paid,
                    "order_ids": [row.order_id],
                    "documents": [],
                    "checks": [
                        {"check": c, "passed": rng.random() > 0.1, "detail": ""} for c in CHECKS
                    ],
                    "submitted_at": submitted,
                    "created_at": submitted,
                    "updated_at": submitted,
                    "version": 1,
                    "round": 1,
                }
            )
            parts.append(
                {
                    "claim_id": claim_id,
                    "order_id": row.order_id,
                    "part_id": row.part_id,
                    "provider_id": row.provider_id,
                    "settled_subsidy": row.amount,
                    "approved_amount": approved,
                    "disbursed_amount": paid,
                    "live": status != "rejected",
                }
            )
            for kind, amount in (("approve", approved), ("disburse", paid or None)):
                if amount:
                    entries.append(
                        {
                            "id": new_id("led"),
                            "enterprise_id": row.enterprise_id,
                            "program_id": row.program_id,
                            "year": row.year,
                            "order_id": row.order_id,
                            "part_id": row.part_id,
                            "claim_id": claim_id,
                            "kind": kind,
                            "amount": amount,
                            "created_at": submitted,
                        }
                    )
        await market_mod.insert_chunked(db, VoucherClaim, claims)
        await market_mod.insert_chunked(db, ClaimPart, parts)
        await market_mod.insert_chunked(db, LedgerEntry, entries)
    finally:
        await db.dispose()
    return {"claims": len(claims), "submitted": sum(c["status"] == "submitted" for c in claims)}


async def sample_ids(url: str) -> tuple[str, str]:
    """An active offer (the keyed read's) and the oldest submitted claim."""
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            offer_id = await session.scalar(
                select(Offer.id).where(Offer.status == "active").order_by(Offer.id).limit(1)
            )
            claim_id = await session.scalar(
                select(VoucherClaim.id)
                .where(VoucherClaim.status == "submitted")
                .order_by(VoucherClaim.submitted_at)
                .limit(1)
            )
    finally:
        await db.dispose()
    return str(offer_id), claim_id or ""


def sign_in(client: httpx.Client) -> None:
    form = client.get("/console/login")
    token = CSRF.search(form.text)
    assert token, form.text
    signed = client.post(
        "/console/login", data={"api_key": OPERATOR_KEY, "csrf_token": token.group(1)}
    )
    assert signed.status_code == 303, signed.text


KEYED = "GET /v1/offers/{id} (keyed read)"


def measure(
    base_url: str, pages: list[str], rounds: int, offer_id: str
) -> dict[str, dict[str, float]]:
    """Each page `rounds` times, each read followed by a keyed read of an offer with the
    operator's key (the baseline, as bench/match.py reads it; interleaved, so that both
    meet the same machine)."""
    out: dict[str, dict[str, float]] = {}
    keyed: list[float] = []
    with (
        httpx.Client(base_url=base_url, timeout=60) as client,
        httpx.Client(
            base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
        ) as api,
    ):
        sign_in(client)
        assert api.get(f"/v1/offers/{offer_id}").status_code == 200
        for path in pages:
            # The first read after the server starts: nothing kept yet (the figure a
            # read pays after the ledger moved).
            started = time.perf_counter()
            client.get(path)
            first = time.perf_counter() - started
            latencies = []
            for _ in range(rounds):
                started = time.perf_counter()
                resp = client.get(path)
                latencies.append(time.perf_counter() - started)
                assert resp.status_code == 200, (path, resp.status_code)
                started = time.perf_counter()
                resp = api.get(f"/v1/offers/{offer_id}")
                keyed.append(time.perf_counter() - started)
                assert resp.status_code == 200, resp.status_code
            out[path] = {**summary_ms(latencies), "first": first * 1000}
    out[KEYED] = {**summary_ms(keyed), "first": float("nan")}
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
    parser.add_argument("--claims", type=int, default=5000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", help="measure a kept database (its URL) without building")
    parser.add_argument("--screenshots", help="a directory for screenshots of each page")
    args = parser.parse_args()

    if args.reuse:
        db = open_database(args.reuse, prefix="cm-bench-console")
        print(f"database: {db.backend} ({db.url}), reused", flush=True)
        migrate(db.url)
    else:
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
            await analyze(db.url)
            spread = await spread_and_settle(db.url, SEED)
            await market_mod.recount_prices_paid(db.url)
            claims = await add_claims(db.url, args.claims, SEED)
            return (
                f"{orders['live']} live orders (+{orders['cancelled']} cancelled, "
                f"{orders['ledger_entries']} ledger entries), {spread['completed']} completed, "
                f"{claims['claims']} claims ({claims['submitted']} submitted), "
                f"built in {time.perf_counter() - started:.0f} s"
            )

        if not args.reuse:
            print(asyncio.run(build()), flush=True)
            vacuum_analyze(db.url)
        offer_id, claim_id = asyncio.run(sample_ids(db.url))
        pages = [
            "/console/",
            "/console/programs/binjiang-compute-2025",
            "/console/programs/hz-city-compute-2024",
            "/console/claims?status=submitted",
            "/console/claims?status=approved",
            f"/console/claims/{claim_id}",
            "/console/market",
        ]
        with running_server(db.url) as server:
            results = measure(server.base_url, pages, args.rounds, offer_id)
            if args.screenshots:
                screenshots(server.base_url, [*pages, "/console/?lang=en"], args.screenshots)
        keyed = results[KEYED]["p50"]
        print(f"\n{db.backend}: {args.rounds} reads of each page, one at a time")
        print(
            f"{'page':45} {'first ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
            f" {'p50/keyed':>10}"
        )
        for path, s in results.items():
            shown = path if len(path) <= 45 else path[:42] + "..."
            ratio = s["p50"] / keyed if keyed else float("nan")
            print(
                f"{shown:45} {s['first']:8.1f} {s['p50']:8.1f} {s['p95']:8.1f} {s['max']:8.1f}"
                f" {ratio:9.1f}x"
            )
    finally:
        close_database(db, keep=args.keep or bool(args.reuse))


if __name__ == "__main__":
    main()
