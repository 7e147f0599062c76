"""Races of real requests against the real database (SQLite, and PostgreSQL)."""

import asyncio

from httpx import AsyncClient
from sqlalchemy import func, select

from app.claims import chain
from app.core.db import Database
from app.ledger.invariants import check
from app.models import ClaimEvent, ClaimPart, Disbursement, LedgerEntry
from tests.claims.helpers import file_claim, hz_market, reviewer, settled_order
from tests.factories import OPERATOR


async def test_two_filings_of_the_same_orders_end_in_one_claim(
    client: AsyncClient, db: Database
) -> None:
    provider, offer, enterprise = await hz_market(client)
    orders = [await settled_order(client, provider, offer, enterprise) for _ in range(2)]
    results = await asyncio.gather(
        *(file_claim(client, enterprise, orders) for _ in range(4)),
        file_claim(client, enterprise, orders[1:]),
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in results]
    assert {r.json()["reason"] for r in results if r.status_code == 409} == {"already_claimed"}
    async with db.sessionmaker() as session:
        live = await session.scalar(
            select(func.count()).select_from(ClaimPart).where(ClaimPart.live.is_(True))
        )
        # The winner's parts, and no other: the single-order filing may win too.
        winner = next(r.json() for r in results if r.status_code == 201)
        assert live == len(winner["parts"])
        assert await check(session) == []


async def test_two_reviewers_approving_at_once_approve_once(
    client: AsyncClient, db: Database
) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    claim = (await file_claim(client, enterprise, [order])).json()
    reviewers = [await reviewer(client) for _ in range(3)]
    results = await asyncio.gather(
        *(
            client.post(
                f"/v1/voucher-claims/{claim['id']}/review",
                json={"decision": "approve", "approved_amount": f"{1000 + i}.00"},
                headers=r["headers"],
            )
            for i, r in enumerate(reviewers)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409], [r.text for r in results]
    winner = next(r.json() for r in results if r.status_code == 200)
    async with db.sessionmaker() as session:
        approved = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.claim_id == claim["id"], LedgerEntry.kind == "approve"
            )
        )
        assert f"{approved:.2f}" == winner["approved_amount"]
        assert await check(session) == []


async def test_a_disbursement_retried_pays_once(client: AsyncClient, db: Database) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    claim = (await file_claim(client, enterprise, [order])).json()
    office = await reviewer(client)
    approved = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "approve"},
        headers=office["headers"],
    )
    assert approved.status_code == 200, approved.text
    body = {"amount": "2880.00", "paid_on": "2027-02-10", "bank_reference": "TRX-7"}
    headers = {**office["headers"], "Idempotency-Key": "pay-once"}
    url = f"/v1/voucher-claims/{claim['id']}/disbursements"
    results = await asyncio.gather(
        *(client.post(url, json=body, headers=headers) for _ in range(3))
    )
    # The first pays; each retry answers the same payment, or that it is in progress.
    assert {r.status_code for r in results} <= {201, 409}
    paid = [r.json()["id"] for r in results if r.status_code == 201]
    assert paid
    assert len(set(paid)) == 1
    late = await client.post(url, json=body, headers=headers)
    assert late.status_code == 201
    assert late.json()["id"] == paid[0]
    # Without the key a second payment of the whole is refused: never above approved.
    fresh = await client.post(url, json=body, headers=office["headers"])
    assert fresh.status_code == 409
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Disbursement)) == 1
        assert await check(session) == []


async def test_concurrent_events_form_one_chain(client: AsyncClient, db: Database) -> None:
    provider, offer, enterprise = await hz_market(client)
    orders = [await settled_order(client, provider, offer, enterprise) for _ in range(6)]
    # Six claims filed at once, then each decided at once by a reviewer of its own.
    filed = await asyncio.gather(*(file_claim(client, enterprise, [o]) for o in orders))
    assert all(r.status_code == 201 for r in filed), [r.text for r in filed]
    reviewers = [await reviewer(client) for _ in orders]
    decided = await asyncio.gather(
        *(
            client.post(
                f"/v1/voucher-claims/{f.json()['id']}/review",
                json={"decision": "return", "reason": "again"}
                if i % 2
                else {"decision": "approve"},
                headers=r["headers"],
            )
            for i, (f, r) in enumerate(zip(filed, reviewers, strict=True))
        )
    )
    assert all(r.status_code == 200 for r in decided), [r.text for r in decided]
    async with db.sessionmaker() as session:
        count, broken = await chain.verify(session)
        seqs = list(await session.scalars(select(ClaimEvent.seq).order_by(ClaimEvent.seq)))
    assert broken is None
    assert count == 12
    assert seqs == list(range(1, 13))
    # The operator's view of one claim's events ends at its own latest link.
    events = await client.get(
        f"/v1/voucher-claims/{filed[0].json()['id']}/events", headers=OPERATOR
    )
    assert [e["kind"] for e in events.json()] == ["submitted", "reviewed"]
    assert all(chain.link_hash(e) == e["hash"] for e in events.json())
