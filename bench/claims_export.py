"""The claims export with a year of claims: 100,000 claimed order parts as CSV and XLSX.

Builds the bench market's registry (bench/_market.py), then a year of the Hangzhou city
program's settled orders and their claims, bulk-inserted as the services would have
written them: each order a request, a quote, a completed order and its part (priced
by the real subsidy engine against the ledger built so far, capacity checked), its
ledger entries (reserve, settle, and the claim's approve / release / disburse), and
claims of 20 orders each in every status, with their documents, evidence, reviews,
disbursements and a chain of events that verifies. Then it serves the app with a real
uvicorn and times `GET /v1/voucher-claims/export` as CSV and as XLSX (to the last
byte, every row counted), alternating, sampling the server's VmRSS while each streams,
beside `GET /v1/offers/{id}` (the keyed read) in the same run.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/claims_export.py [--parts 100000]
        [--runs 3] [--database-url postgresql+asyncpg://...] [--keep] [--reuse]
        [--baseline DIR]  (a checkout of another commit, measured in the same run)
"""

import argparse
import asyncio
import contextlib
import hashlib
import io
import random
import sys
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.claims import chain
from app.claims.service import allocate, split_by_funding
from app.core.db import Database, begin_write
from app.core.ids import new_id
from app.core.money import ZERO, format_money, round_down
from app.core.timeutil import SHANGHAI
from app.demo.documents import pdf
from app.matching import engine
from app.models import (
    ClaimChainHead,
    ClaimEvent,
    ClaimEvidence,
    ClaimPart,
    ClaimReview,
    ComputeRequest,
    Disbursement,
    Evidence,
    LedgerEntry,
    Offer,
    Order,
    OrderPart,
    Quote,
    VoucherClaim,
)
from bench import _market as market_mod
from bench._common import (
    ROOT,
    close_database,
    median,
    operator_headers,
    running_server,
    start,
    summary_ms,
    vacuum_analyze,
)

SEED = 2026
PROGRAM = "hz-city-compute-2024"
# Each claim's status, by weight: most of a year's claims are paid or approved.
STATUSES = {
    "paid": 45,
    "approved": 20,
    "submitted": 12,
    "rejected": 8,
    "returned": 8,
    "awaiting_second_review": 7,
}
REVIEWER = {"key_id": "key_benchreviewer0000000000000", "role": "reviewer"}


@dataclass
class Built:
    claims: int
    parts: int
    orders: int
    ledger_entries: int
    events: int


def _year_start(now: datetime) -> datetime:
    return datetime(now.astimezone(SHANGHAI).year, 1, 1, tzinfo=SHANGHAI).astimezone(UTC)


async def populate(
    url: str, market: market_mod.Market, parts: int, per_claim: int, seed: int
) -> Built:
    """`parts` claimed order parts (one per order) in claims of `per_claim` orders."""
    rng = random.Random(seed + 7)
    now = market.now
    year_start = _year_start(now)
    year = now.astimezone(SHANGHAI).year
    hz_lists = {"hz-planned-icc", "hz-matchmaking-partner"}
    offers = [
        o
        for o in market.sellable()
        if market.providers[o.provider_id][1] & hz_lists
        and o.available_from < now - timedelta(days=4)
    ]
    enterprises = [
        e
        for e in market.enterprises
        if e.region_code.startswith("3301") and e.region_code != market_mod.BINJIANG
    ]
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    evidence: dict[str, list[tuple[str, str]]] = {}  # enterprise -> [(id, sha256)] x3
    events: list[dict[str, Any]] = []

    def event(claim_id: str, kind: str, at: datetime, actor: dict[str, Any], data: Any) -> None:
        # Linked once all are known, in the order they happened (below).
        events.append(
            {
                "seq": len(events),
                "claim_id": claim_id,
                "kind": kind,
                "at": chain.timestamp(at),
                "actor": actor,
                "data": data,
            }
        )

    def ledger(
        enterprise_id: str, order_id: str, part_id: str, kind: str, amount: Decimal, at: datetime
    ) -> dict[str, Any]:
        return {
            "id": new_id("led"),
            "enterprise_id": enterprise_id,
            "program_id": PROGRAM,
            "year": year,
            "order_id": order_id,
            "part_id": part_id,
            "kind": kind,
            "amount": amount,
            "created_at": at,
        }

    def one_order(enterprise: market_mod.EnterpriseInfo) -> dict[str, Any] | None:
        offer = rng.choice(offers)
        cards = min(offer.cards_total, rng.choice([1, 2, 4, 8, 8]))
        hours = rng.choice([24, 48, 72])
        duration = timedelta(hours=hours)
        first = max(offer.available_from, year_start) + timedelta(days=1)
        last = min(offer.available_until, now - timedelta(days=1)) - duration
        if first >= last:
            return None
        start_at = market_mod.hour(first + (last - first) * rng.random())
        end = start_at + duration
        if engine.peak_usage(offer.holds, start_at, end) + cards > offer.cards_total:
            return None
        placed_at = start_at - timedelta(hours=rng.randint(2, 48))
        contract_date = placed_at.astimezone(SHANGHAI).date()
        if contract_date.year != year:
            return None
        purpose = market_mod.weighted(rng, market_mod.PURPOSES)
        request = market_mod.request_row(
            rng,
            market,
            enterprise,
            accelerator_ids=[offer.accelerator_id],
            cards=cards,
            hours=hours,
            earliest_start=start_at,
            latest_start=start_at,
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
        if result.program_id != PROGRAM or result.amount <= 0:
            return None
        request["created_at"] = request["updated_at"] = placed_at
        quote_id, order_id, part_id = new_id("quo"), new_id("ord"), new_id("opt")
        completed_at = end + timedelta(hours=2)
        rows["requests"].append(request)
        rows["quotes"].append(
            {
                "id": quote_id,
                "enterprise_id": enterprise.id,
                "request_id": request["id"],
                "expires_at": placed_at + timedelta(minutes=15),
                "match": market_mod.match_json(offer, cards, hours, start_at, gross, result),
                "program_versions": {p.id: 1 for p in market.programs},
                "created_at": placed_at,
            }
        )
        rows["orders"].append(
            {
                "id": order_id,
                "quote_id": quote_id,
                "request_id": request["id"],
                "enterprise_id": enterprise.id,
                "status": "completed",
                "offer_id": offer.id,
                "cards": cards,
                "start": start_at,
                "end": end,
                "gross_amount": gross,
                "subsidy_amount": result.amount,
                "net_amount": gross - result.amount,
                "executed_amount": gross,
                "completed_at": completed_at,
                "cancelled_at": None,
                "version": 2,
                "created_at": placed_at,
                "updated_at": completed_at,
            }
        )
        rows["parts"].append(
            {
                "id": part_id,
                "order_id": order_id,
                "offer_id": offer.id,
                "provider_id": offer.provider_id,
                "cards": cards,
                "start": start_at,
                "end": end,
                "holding": True,
                "price_per_card_hour": offer.price,
                "gross_amount": gross,
                "program_id": result.program_id,
                "rate": str(result.rate),
                "base": result.base,
                "capped_by": result.capped_by,
                "subsidy_amount": result.amount,
                "net_amount": gross - result.amount,
                "executed_amount": gross,
                "settled_subsidy": result.amount,
                "considered": [
                    {"program_id": c.program_id, "eligible": c.eligible, "reason": c.reason}
                    for c in result.considered
                ],
            }
        )
        rows["ledger"] += [
            ledger(enterprise.id, order_id, part_id, "reserve", result.amount, placed_at),
            ledger(enterprise.id, order_id, part_id, "settle", result.amount, completed_at),
        ]
        market.enterprise_used[(enterprise.id, PROGRAM)] += result.amount
        market.budget_used[PROGRAM] += result.amount
        offer.holds.append(engine.Hold(start=start_at, end=end, cards=cards))
        return {
            "order_id": order_id,
            "part_id": part_id,
            "provider_id": offer.provider_id,
            "settled": result.amount,
            "gross": gross,
            "completed_at": completed_at,
        }

    def documents_of(enterprise_id: str, claimed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if enterprise_id not in evidence:
            evidence[enterprise_id] = []
            for kind in ("contract", "invoice", "payment"):
                content = pdf(f"{kind} of {enterprise_id}")
                evidence_id = new_id("evd")
                sha = hashlib.sha256(content).hexdigest()
                rows["evidence"].append(
                    {
                        "id": evidence_id,
                        "owner_id": enterprise_id,
                        "uploaded_by_key_id": None,
                        "sha256": sha,
                        "media_type": "application/pdf",
                        "size_bytes": len(content),
                        "filename": f"{kind}.pdf",
                        "uploaded_at": year_start,
                        "content": content,
                    }
                )
                evidence[enterprise_id].append((evidence_id, sha))
        (contract, c_sha), (invoice, i_sha), (payment, p_sha) = evidence[enterprise_id]
        out = []
        for n, c in enumerate(claimed):
            on = c["completed_at"].astimezone(SHANGHAI).date().isoformat()
            amount = format_money(c["gross"])
            out += [
                {"kind": "contract", "order_id": c["order_id"], "number": f"HT-{n:05d}",
                 "evidence_id": contract, "evidence_sha256": c_sha},
                {"kind": "invoice", "order_id": c["order_id"], "number": f"2433{n:016d}",
                 "amount": amount, "issued_on": on, "evidence_id": invoice,
                 "evidence_sha256": i_sha},
                {"kind": "payment", "order_id": c["order_id"], "reference": f"BANK-{n:06d}",
                 "amount": amount, "paid_on": on, "evidence_id": payment,
                 "evidence_sha256": p_sha},
            ]  # fmt: skip
        return out

    made = 0
    while made < parts:
        enterprise = rng.choice(enterprises)
        claimed: list[dict[str, Any]] = []
        tries = 0
        while len(claimed) < min(per_claim, parts - made) and tries < per_claim * 20:
            tries += 1
            found = one_order(enterprise)
            if found is not None:
                claimed.append(found)
        if not claimed:
            continue
        made += len(claimed)
        claim_id = new_id("clm")
        status = market_mod.weighted(rng, STATUSES)
        amount = sum((c["settled"] for c in claimed), ZERO)
        filed_at = max(c["completed_at"] for c in claimed) + timedelta(days=rng.randint(1, 5))
        decided_at = filed_at + timedelta(days=rng.randint(1, 10))
        approved: Decimal | None = None
        if status in ("approved", "paid"):
            approved = amount if rng.random() < 0.8 else round_down(amount * Decimal("0.9"))
        shares = allocate(approved, [c["settled"] for c in claimed]) if approved else None
        disbursed = approved if status == "paid" else ZERO
        documents = documents_of(enterprise.id, claimed)
        enterprise_actor = {"key_id": f"key_bench_{enterprise.id[-20:]}", "role": "enterprise"}
        event(
            claim_id,
            "submitted",
            filed_at,
            enterprise_actor,
            {
                "program_id": PROGRAM,
                "year": year,
                "enterprise_id": enterprise.id,
                "amount": format_money(amount),
                "order_ids": [c["order_id"] for c in claimed],
                "part_ids": [c["part_id"] for c in claimed],
                "documents": documents,
                "checks": [],
            },
        )
        for n, c in enumerate(claimed):
            share = shares[n] if shares is not None else None
            rows["claim_parts"].append(
                {
                    "claim_id": claim_id,
                    "order_id": c["order_id"],
                    "part_id": c["part_id"],
                    "provider_id": c["provider_id"],
                    "settled_subsidy": c["settled"],
                    "approved_amount": ZERO if status == "rejected" else share,
                    "disbursed_amount": share if status == "paid" and share else ZERO,
                    "live": status != "rejected",
                }
            )
            entries: list[tuple[str, Decimal, datetime]] = []
            if status == "rejected":
                entries.append(("release", c["settled"], decided_at))
            elif share is not None:
                entries += [("approve", share, decided_at)]
                if c["settled"] > share:
                    entries.append(("release", c["settled"] - share, decided_at))
                if status == "paid" and share > 0:
                    entries.append(("disburse", share, decided_at + timedelta(days=14)))
            for kind, value, at in entries:
                if value > 0:
                    entry = ledger(enterprise.id, c["order_id"], c["part_id"], kind, value, at)
                    rows["ledger"].append({**entry, "claim_id": claim_id})
        if status == "rejected":
            market.enterprise_used[(enterprise.id, PROGRAM)] -= amount
            market.budget_used[PROGRAM] -= amount
        if status != "submitted":
            decision = {
                "approved": "approve",
                "paid": "approve",
                "awaiting_second_review": "approve",
                "rejected": "reject",
                "returned": "return",
            }[status]
            reason = None if decision == "approve" else "the payment proof is unreadable"
            rows["reviews"].append(
                {
                    "id": new_id("rev"),
                    "claim_id": claim_id,
                    "round": 1,
                    "decision": decision,
                    "approved_amount": approved
                    if decision == "approve" and status != "awaiting_second_review"
                    else (amount if status == "awaiting_second_review" else None),
                    "reason": reason,
                    "reviewer_key_id": REVIEWER["key_id"],
                    "reviewer_role": "reviewer",
                    "at": decided_at,
                }
            )
            event(
                claim_id,
                "returned" if decision == "return" else "reviewed",
                decided_at,
                REVIEWER,
                {
                    "decision": decision,
                    "approved_amount": None if approved is None else format_money(approved),
                    "reason": reason,
                    "round": 1,
                    "status": status if status != "paid" else "approved",
                },
            )
        if status == "paid" and disbursed:
            paid_at = decided_at + timedelta(days=14)
            disbursement_id = new_id("dsb")
            splits = split_by_funding(disbursed, [(PROGRAM, Decimal("1.00"))])
            rows["disbursements"].append(
                {
                    "id": disbursement_id,
                    "claim_id": claim_id,
                    "amount": disbursed,
                    "paid_on": paid_at.astimezone(SHANGHAI).date(),
                    "bank_reference": f"GK-{claim_id[-8:]}",
                    "splits": splits,
                    "by_key_id": REVIEWER["key_id"],
                    "at": paid_at,
                }
            )
            event(
                claim_id,
                "disbursed",
                paid_at,
                REVIEWER,
                {
                    "disbursement_id": disbursement_id,
                    "amount": format_money(disbursed),
                    "paid_on": paid_at.astimezone(SHANGHAI).date().isoformat(),
                    "bank_reference": f"GK-{claim_id[-8:]}",
                    "splits": splits,
                    "status": "paid",
                },
            )
        rows["claims"].append(
            {
                "id": claim_id,
                "program_id": PROGRAM,
                "year": year,
                "enterprise_id": enterprise.id,
                "status": status,
                "amount": amount,
                "approved_amount": approved,
                "disbursed_amount": disbursed or ZERO,
                "order_ids": [c["order_id"] for c in claimed],
                "documents": documents,
                "checks": [],
                "filed_by_key_id": enterprise_actor["key_id"],
                "submitted_at": filed_at,
                "round": 1,
                "created_at": filed_at,
                "updated_at": decided_at,
                "version": 1,
            }
        )
        rows["claim_evidence"] += [
            {"claim_id": claim_id, "evidence_id": e} for e, _ in evidence[enterprise.id]
        ]
    # The chain's events in the order they happened, as the services append them.
    events.sort(key=lambda e: (e["at"], e["seq"]))
    prev_hash = chain.GENESIS
    for seq, item in enumerate(events, start=1):
        item["seq"], item["prev_hash"] = seq, prev_hash
        item["hash"] = prev_hash = chain.link_hash(item)
    for model, key in (
        (ComputeRequest, "requests"),
        (Quote, "quotes"),
        (Order, "orders"),
        (OrderPart, "parts"),
        (LedgerEntry, "ledger"),
        (Evidence, "evidence"),
        (VoucherClaim, "claims"),
        (ClaimPart, "claim_parts"),
        (ClaimEvidence, "claim_evidence"),
        (ClaimReview, "reviews"),
        (Disbursement, "disbursements"),
        (ClaimEvent, None),
    ):
        await insert_committed(url, model, rows[key] if key else events)
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            await session.execute(
                update(ClaimChainHead)
                .where(ClaimChainHead.id == chain.HEAD_ID)
                .values(seq=len(events), hash=prev_hash)
            )
            await session.commit()
    finally:
        await db.dispose()
    return Built(len(rows["claims"]), made, len(rows["orders"]), len(rows["ledger"]), len(events))


async def insert_committed(url: str, model: Any, rows: list[dict[str, Any]]) -> None:
    """Rows in transactions of `CHUNK`, each on a connection of its own, the table
    analysed after each on PostgreSQL. In one transaction, the triggers deferred to the
    commit (the day totals of order_parts, 0010; the budgets' use, 0006) ran 100,000
    times at the commit with plans made while the table looked empty (this machine's
    PostgreSQL has autovacuum off): a sequential scan of order_parts per part, minutes
    on end."""
    for i in range(0, len(rows), market_mod.CHUNK):
        db = Database(url)
        try:
            async with db.sessionmaker() as session:
                await begin_write(session)
                await session.execute(insert(model), rows[i : i + market_mod.CHUNK])
                await session.commit()
            if db.engine.dialect.name == "postgresql":
                async with db.engine.connect() as conn:
                    await conn.execute(text(f"ANALYZE {model.__tablename__}"))
                    await conn.commit()
        finally:
            await db.dispose()


# --------------------------------------------------------------------------- measuring


class RssSampler:
    """The server's VmRSS every few milliseconds while a request streams."""

    def __init__(self, server: Any, every: float = 0.02) -> None:
        self.server, self.every = server, every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss_mb())
            time.sleep(self.every)

    def __enter__(self) -> "RssSampler":
        self.peak = self.server.rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def export_once(client: httpx.Client, server: Any, fmt: str, year: int) -> dict[str, float]:
    """One export to its last byte: seconds, bytes, rows, RSS before and at peak (MB)."""
    before = server.rss_mb()
    started = time.perf_counter()
    size = rows = 0
    first_byte = None
    body = bytearray() if fmt == "xlsx" else None
    with (
        RssSampler(server) as sampler,
        client.stream(
            "GET",
            "/v1/voucher-claims/export",
            params={"program_id": PROGRAM, "year": year, "format": fmt},
        ) as resp,
    ):
        assert resp.status_code == 200, resp.read()
        for chunk in resp.iter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            if body is not None:
                body += chunk
            else:
                rows += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    if body is not None:
        with zipfile.ZipFile(io.BytesIO(bytes(body))) as book:
            sheet = next(n for n in book.namelist() if n.startswith("xl/worksheets/"))
            xml = book.read(sheet)
            rows = xml.count(b"<row>") + xml.count(b"<row ")
    return {
        "seconds": elapsed,
        "first_byte": first_byte or elapsed,
        "mb": size / 1e6,
        "rows": rows - 1,  # the header
        "rss_before": before,
        "rss_peak": sampler.peak,
        "growth": sampler.peak - before,
    }


def keyed_reads(client: httpx.Client, offer_ids: list[str], n: int) -> dict[str, float]:
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        resp = client.get(f"/v1/offers/{offer_ids[i % len(offer_ids)]}")
        latencies.append(time.perf_counter() - started)
        assert resp.status_code == 200, resp.text
    return summary_ms(latencies)


async def some_offer_ids(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            return list(await session.scalars(select(Offer.id).limit(200)))
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--offers", type=int, default=20000)
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--parts", type=int, default=100_000)
    parser.add_argument("--per-claim", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    parser.add_argument(
        "--baseline", help="a checkout of another commit, served beside this one (paired runs)"
    )
    args = parser.parse_args()

    db = start(args.database_url, prefix="cm-bench-claims-export")
    try:
        if not args.reuse:

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
                finally:
                    await database.dispose()
                built = await populate(db.url, market, args.parts, args.per_claim, SEED)
                return (
                    f"{built.claims} claims of {built.parts} order parts ({built.orders} "
                    f"orders, {built.ledger_entries} ledger entries, {built.events} chain "
                    f"events), built in {time.perf_counter() - started:.0f} s"
                )

            print(asyncio.run(build()), flush=True)
        vacuum_analyze(db.url)
        year = datetime.now(SHANGHAI).year
        offer_ids = asyncio.run(some_offer_ids(db.url))
        trees = [("this tree", ROOT)]
        if args.baseline:
            # Paired: the other checkout's server measured in the same run, alternating.
            trees.insert(0, ("baseline", Path(args.baseline).resolve()))
        results: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
        reads: dict[str, list[dict[str, float]]] = defaultdict(list)
        with contextlib.ExitStack() as stack:
            clients = {}
            for label, root in trees:
                server = stack.enter_context(running_server(db.url, root=root))
                client = stack.enter_context(
                    httpx.Client(base_url=server.base_url, headers=operator_headers(), timeout=600)
                )
                clients[label] = (server, client)
                keyed_reads(client, offer_ids, 20)  # warm
                warm = export_once(client, server, "csv", year)
                print(f"{label}: warm-up CSV {warm['seconds']:.2f} s", flush=True)
            for run in range(1, args.runs + 1):
                for label, (server, client) in clients.items():
                    reads[label].append(keyed_reads(client, offer_ids, args.reads))
                    for fmt in ("csv", "xlsx"):
                        got = export_once(client, server, fmt, year)
                        results[(label, fmt)].append(got)
                        print(
                            f"run {run} {label:9} {fmt:4}: {got['seconds']:6.2f} s (first "
                            f"byte {got['first_byte']:.2f} s), {got['mb']:.1f} MB, "
                            f"{got['rows']:.0f} rows, RSS {got['rss_before']:.0f} -> "
                            f"{got['rss_peak']:.0f} MB (+{got['growth']:.0f})",
                            flush=True,
                        )
        print(f"\n{db.backend}: median of {args.runs} runs")
        print(f"{'':40} {'seconds':>8} {'÷ keyed read p50':>17} {'RSS growth (max)':>17}")
        for label, _ in trees:
            read_p50 = median([r["p50"] for r in reads[label]])
            for fmt, target in (("csv", 10), ("xlsx", 30)):
                runs = results[(label, fmt)]
                seconds = median([r["seconds"] for r in runs])
                growth = max(r["growth"] for r in runs)
                print(
                    f"{label:9} export {fmt:4} (target ≤ {target} s) {seconds:8.2f} "
                    f"{seconds * 1000 / read_p50:16.0f}× {growth:15.0f} MB"
                )
            print(f"{label:9} GET /v1/offers/{{id}} p50 {read_p50:.2f} ms")
    finally:
        close_database(db, keep=args.keep or args.reuse)


if __name__ == "__main__":
    main()
