"""The sums the console keeps per process (service.FiguresCache) equal the ledger's
sums read afresh after every kind of write: an order placed, one cancelled, one
settled, a claim approved and paid, an enterprise renamed."""

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from httpx import AsyncClient
from sqlalchemy import case, select

from app.console import service
from app.core.money import ZERO
from app.core.timeutil import today_shanghai
from app.ledger import service as ledger
from app.models import LedgerEntry
from tests.claims.helpers import (
    PROGRAM,
    documents_for,
    file_claim,
    hz_market,
    reviewer,
    settled_order,
)
from tests.factories import OPERATOR, bearer, create_request

PROGRAMS = [PROGRAM, "binjiang-compute-2025"]


async def daily_use(
    session: Any, year: int, program_ids: list[str]
) -> dict[str, dict[date, Decimal]]:
    """program id -> day (Asia/Shanghai, of the entry's writing) -> reserve − release,
    summed on its own (not as the console sums it)."""
    day = service.local_day(session, LedgerEntry.created_at)
    signed = case(
        (LedgerEntry.kind == "reserve", LedgerEntry.amount),
        (LedgerEntry.kind == "release", -LedgerEntry.amount),
        else_=0,
    )
    rows = await session.execute(
        select(LedgerEntry.program_id, day, service.money_sum(signed))
        .where(LedgerEntry.year == year, LedgerEntry.program_id.in_(program_ids))
        .group_by(LedgerEntry.program_id, day)
    )
    out: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for program_id, on, amount in rows:
        out[program_id][date.fromisoformat(str(on)[:10])] = amount or ZERO
    return out


async def approved_and_paid(
    session: Any, year: int, program_ids: list[str]
) -> dict[tuple[str, str], Decimal]:
    sums = await session.execute(
        select(LedgerEntry.program_id, LedgerEntry.kind, service.money_sum(LedgerEntry.amount))
        .where(
            LedgerEntry.year == year,
            LedgerEntry.program_id.in_(program_ids),
            LedgerEntry.kind.in_(("approve", "disburse")),
        )
        .group_by(LedgerEntry.program_id, LedgerEntry.kind)
    )
    return {(p, k): a or ZERO for p, k, a in sums}


async def kept_and_truth(db: Any) -> tuple[Any, Any]:
    """What the console shows (through its cache) and the same sums read afresh."""
    year = today_shanghai().year
    async with db.sessionmaker() as session:
        state = await service.ledger_state(session, year, PROGRAMS)
        figures = await service.ledger_figures(session, year, PROGRAMS, state)
        rows = await service._report_rows(session, PROGRAM, year, state.get(PROGRAM, 0))
        kept = (
            {p: figures.get(p, service.LedgerFigures.empty()) for p in PROGRAMS},
            sorted(rows),
        )
    async with db.sessionmaker() as session:
        balances = await ledger.program_balances(session, year, PROGRAMS)
        days = await daily_use(session, year, PROGRAMS)
        paid = await approved_and_paid(session, year, PROGRAMS)
        truth = (
            {
                p: service.LedgerFigures(
                    balances.get(p, ledger.Balance()),
                    days.get(p, {}),
                    paid.get((p, "approve"), ZERO),
                    paid.get((p, "disburse"), ZERO),
                )
                for p in PROGRAMS
            },
            sorted(await service._read_report_rows(session, PROGRAM, year)),
        )
    return kept, truth


async def same(db: Any) -> Any:
    kept, truth = await kept_and_truth(db)
    assert kept == truth
    # Read twice: the second is served from what was kept, and is the same.
    again, _ = await kept_and_truth(db)
    assert again == truth
    return truth


async def test_kept_sums_follow_every_write_to_the_ledger(client: AsyncClient, db: Any) -> None:
    provider, offer, enterprise = await hz_market(client)
    empty = await same(db)
    settled = await settled_order(client, provider, offer, enterprise)
    after_settle = await same(db)
    assert after_settle != empty
    assert after_settle[0][PROGRAM].balance.settled > 0

    request = await create_request(client, enterprise, cards=8, hours=50)
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    placed = await client.post(
        "/v1/orders", json={"quote_id": quote.json()["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert placed.status_code == 201, placed.text
    reserved = await same(db)
    assert reserved[0][PROGRAM].balance.reserved > 0

    cancelled = await client.post(
        f"/v1/orders/{placed.json()['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert cancelled.status_code == 200, cancelled.text
    released = await same(db)
    assert released[0][PROGRAM].balance.reserved == 0
    assert released[1] == after_settle[1]

    documents = await documents_for(client, enterprise, settled)
    claim = (await file_claim(client, enterprise, [settled], documents)).json()
    office = await reviewer(client, PROGRAM)
    approved = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "approve", "approved_amount": "100.00", "reason": "part of it"},
        headers=office["headers"],
    )
    assert approved.status_code == 200, approved.text
    after_review = await same(db)
    assert after_review[0][PROGRAM].approved == Decimal("100.00")

    paid = await client.post(
        f"/v1/voucher-claims/{claim['id']}/disbursements",
        json={"amount": "40.00", "paid_on": "2026-06-01", "bank_reference": "TRX-1"},
        headers=office["headers"],
    )
    assert paid.status_code == 201, paid.text
    after_paying = await same(db)
    assert after_paying[0][PROGRAM].paid == Decimal("40.00")

    renamed = await client.patch(
        f"/v1/enterprises/{enterprise['id']}", json={"name": "改名后的企业"}, headers=OPERATOR
    )
    assert renamed.status_code == 200, renamed.text
    after_rename = await same(db)
    assert any(row[1] == "改名后的企业" for row in after_rename[1])
