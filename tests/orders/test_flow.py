"""Quotes, orders, settlement and the voucher ledger, end to end through the API."""

from datetime import timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from tests.factories import (
    OPERATOR,
    T0,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)


async def market(client: AsyncClient, **offer: Any) -> tuple[dict[str, Any], ...]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    created = await create_offer(client, provider, **offer)
    enterprise = await create_enterprise(client, region_code="330108")
    return provider, created, enterprise


async def quote_for(
    client: AsyncClient, enterprise: dict[str, Any], request: dict[str, Any], offer: dict[str, Any]
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 201, resp.text
    quote: dict[str, Any] = resp.json()
    return quote


async def order(
    client: AsyncClient, enterprise: dict[str, Any], quote: dict[str, Any], key: str | None = None
) -> Any:
    headers = bearer(enterprise["api_key"])
    if key:
        headers["Idempotency-Key"] = key
    return await client.post("/v1/orders", json={"quote_id": quote["id"]}, headers=headers)


async def test_the_whole_flow(client: AsyncClient) -> None:
    provider, offer, enterprise = await market(client, cards_total=64)
    request = await create_request(client, enterprise, cards=64, hours=720)
    matches = await client.get(
        f"/v1/compute-requests/{request['id']}/matches", headers=bearer(enterprise["api_key"])
    )
    assert matches.status_code == 200, matches.text
    best = matches.json()["items"][0]
    # policies.md example 1: 64 cards × 720 h × 12.00, Binjiang 60% on domestic hardware.
    assert best["gross_amount"] == "552960.00"
    assert best["subsidy"]["program_id"] == "binjiang-compute-2025"
    assert best["subsidy"]["amount"] == "331776.00"
    assert best["net_amount"] == "221184.00"
    assert best["net_price_per_card_hour"] == "4.80"

    quote = await quote_for(client, enterprise, request, offer)
    assert quote["net_amount"] == "221184.00"
    placed = await order(client, enterprise, quote)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "reserved"
    assert body["subsidy"]["amount"] == "331776.00"
    assert body["offer_id"] == offer["id"]

    usage = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage?year={T0.year}",
        headers=bearer(enterprise["api_key"]),
    )
    assert usage.status_code == 200, usage.text
    binjiang = next(i for i in usage.json()["items"] if i["program_id"] == "binjiang-compute-2025")
    assert binjiang["reserved"] == "331776.00"
    assert binjiang["remaining"] == "19668224.00"

    # The window is full now: the same offer cannot serve a second identical request.
    again = await create_request(
        client, enterprise, cards=64, hours=720, latest_start=T0.isoformat()
    )
    none = await client.get(
        f"/v1/compute-requests/{again['id']}/matches", headers=bearer(enterprise["api_key"])
    )
    assert none.json()["items"] == []

    done = await client.post(
        f"/v1/orders/{body['id']}/complete",
        json={"executed_amount": "500000.00"},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    completed = done.json()
    assert completed["status"] == "completed"
    # settled_amount base: 60% of the executed 500,000.00.
    assert completed["subsidy"]["amount"] == "300000.00"
    assert completed["net_amount"] == "200000.00"
    usage = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage?year={T0.year}", headers=OPERATOR
    )
    binjiang = next(i for i in usage.json()["items"] if i["program_id"] == "binjiang-compute-2025")
    assert binjiang["reserved"] == "0.00"
    assert binjiang["settled"] == "300000.00"
    programs = await client.get("/v1/subsidy-programs/binjiang-compute-2025", headers=OPERATOR)
    assert programs.json()["budget_used"] == "300000.00"


async def test_a_contract_amount_voucher_settles_its_rate_of_what_was_spent(
    client: AsyncClient, db: Any
) -> None:
    """policies.md, settlement; seed 001 (三) 不超过算力合同费用的30%: a city order that
    spent less than it contracted settles 30% of what was spent, the rest released."""
    provider = await create_provider(client, lists=("hz-matchmaking-partner",))
    offer = await create_offer(client, provider, price_per_card_hour="12.00")
    enterprise = await create_enterprise(client, region_code="330106")  # Xihu, Hangzhou
    request = await create_request(client, enterprise, cards=8, hours=100)
    quote = await quote_for(client, enterprise, request, offer)
    placed = await order(client, enterprise, quote)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    # 8 × 100 × 12.00 = 9,600.00; hz-city's 30% on the contract amount.
    assert body["subsidy"]["program_id"] == "hz-city-compute-2024"
    assert body["subsidy"]["base"] == "contract_amount"
    assert body["subsidy"]["amount"] == "2880.00"

    done = await client.post(
        f"/v1/orders/{body['id']}/complete",
        json={"executed_amount": "4000.00"},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    completed = done.json()
    assert completed["subsidy"]["amount"] == "1200.00"  # 30% of 4,000.00, not 2,880.00
    assert completed["net_amount"] == "2800.00"
    usage = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage?year={T0.year}", headers=OPERATOR
    )
    city = next(i for i in usage.json()["items"] if i["program_id"] == "hz-city-compute-2024")
    assert (city["reserved"], city["settled"]) == ("0.00", "1200.00")
    assert city["remaining"] == "7998800.00"  # 8,000,000.00 − 1,200.00: 1,680.00 went back
    program = await client.get("/v1/subsidy-programs/hz-city-compute-2024", headers=OPERATOR)
    assert program.json()["budget_used"] == "1200.00"

    from sqlalchemy import select

    from app.models import LedgerEntry

    async with db.sessionmaker() as session:
        moves = sorted(
            (kind, str(amount))
            for kind, amount in await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount).where(
                    LedgerEntry.order_id == body["id"]
                )
            )
        )
    assert moves == [("release", "1680.00"), ("reserve", "2880.00"), ("settle", "1200.00")]


async def test_a_split_order_settles_each_part_on_its_share(client: AsyncClient) -> None:
    provider = await create_provider(client, lists=("hz-matchmaking-partner",))
    first = await create_offer(client, provider, cards_total=6, price_per_card_hour="10.00")
    second = await create_offer(client, provider, cards_total=2, price_per_card_hour="10.00")
    enterprise = await create_enterprise(client, region_code="330106")
    request = await create_request(client, enterprise, cards=8, hours=100, allow_split=True)
    resp = await client.post(
        "/v1/quotes",
        json={
            "request_id": request["id"],
            "parts": [
                {"offer_id": first["id"], "cards": 6},
                {"offer_id": second["id"], "cards": 2},
            ],
        },
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 201, resp.text
    placed = await order(client, enterprise, resp.json())
    assert placed.status_code == 201, placed.text
    # 6,000.00 and 2,000.00 gross; 30% of each reserved: 1,800.00 and 600.00.
    assert placed.json()["subsidy"]["amount"] == "2400.00"
    done = await client.post(
        f"/v1/orders/{placed.json()['id']}/complete",
        json={"executed_amount": "4000.00"},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    completed = done.json()
    # The executed 4,000.00 is shared 3,000.00 / 1,000.00; 30% of each.
    assert completed["subsidy"]["amount"] == "1200.00"
    assert sorted(
        (p["offer_id"], p["executed_amount"], p["subsidy"]["amount"]) for p in completed["parts"]
    ) == sorted([(first["id"], "3000.00", "900.00"), (second["id"], "1000.00", "300.00")])
    usage = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage?year={T0.year}", headers=OPERATOR
    )
    city = next(i for i in usage.json()["items"] if i["program_id"] == "hz-city-compute-2024")
    assert (city["reserved"], city["settled"]) == ("0.00", "1200.00")


async def test_complete_above_gross_is_422_and_cancel_frees_the_window(
    client: AsyncClient,
) -> None:
    provider, offer, enterprise = await market(client, cards_total=8)
    request = await create_request(
        client, enterprise, cards=8, hours=100, latest_start=T0.isoformat()
    )
    first = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert first.status_code == 201
    too_much = await client.post(
        f"/v1/orders/{first.json()['id']}/complete",
        json={"executed_amount": "999999.00"},
        headers=bearer(provider["api_key"]),
    )
    assert too_much.status_code == 422
    other = await create_request(
        client, enterprise, cards=8, hours=100, latest_start=T0.isoformat()
    )
    blocked = await client.post(
        "/v1/quotes",
        json={"request_id": other["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    assert blocked.status_code == 409
    assert blocked.json()["reason"] == "capacity"
    cancelled = await client.post(
        f"/v1/orders/{first.json()['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    second = await order(client, enterprise, await quote_for(client, enterprise, other, offer))
    assert second.status_code == 201, second.text
    twice = await client.post(
        f"/v1/orders/{first.json()['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert twice.status_code == 409


async def test_same_idempotency_key_places_one_order(client: AsyncClient) -> None:
    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    quote = await quote_for(client, enterprise, request, offer)
    one = await order(client, enterprise, quote, key="order-1")
    two = await order(client, enterprise, quote, key="order-1")
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] == two.json()["id"]
    listed = await client.get("/v1/orders", headers=bearer(enterprise["api_key"]))
    assert len(listed.json()["items"]) == 1
    plain_again = await order(client, enterprise, quote)
    assert plain_again.status_code == 409
    assert plain_again.json()["reason"] == "quote_used"


async def test_the_idempotent_answer_commits_with_the_order(
    app: Any, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process fails once the order is committed, before it answers: the retry with
    # the same key gets the order that was placed (its answer was stored in the order's
    # own transaction), not a conflict with it.
    from app.orders import service

    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    quote = await quote_for(client, enterprise, request, offer)

    def fail(order: Any) -> None:
        raise RuntimeError("simulated failure after the commit")

    monkeypatch.setattr(service, "log_placed", fail)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as raw:
        lost = await order(raw, enterprise, quote, key="order-lost")
    assert lost.status_code == 500
    monkeypatch.undo()
    retry = await order(client, enterprise, quote, key="order-lost")
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["etag"]
    listed = await client.get("/v1/orders", headers=bearer(enterprise["api_key"]))
    assert [o["id"] for o in listed.json()["items"]] == [retry.json()["id"]]
    assert retry.json()["quote_id"] == quote["id"]


async def test_an_expired_quote_cannot_be_ordered(client: AsyncClient, db: Any) -> None:
    from sqlalchemy import update

    from app.core.timeutil import utcnow
    from app.models import Quote

    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    quote = await quote_for(client, enterprise, request, offer)
    async with db.sessionmaker() as session:
        await session.execute(
            update(Quote)
            .where(Quote.id == quote["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    resp = await order(client, enterprise, quote)
    assert resp.status_code == 409
    assert resp.json()["reason"] == "quote_expired"


async def test_a_quote_whose_window_has_started_cannot_be_ordered(
    client: AsyncClient, db: Any
) -> None:
    from sqlalchemy import select, update

    from app.core.timeutil import utcnow
    from app.models import LedgerEntry, Order, Quote

    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise, hours=10)
    quote = await quote_for(client, enterprise, request, offer)
    # The clock passed the quoted start while the quote was still valid.
    async with db.sessionmaker() as session:
        match = dict((await session.get(Quote, quote["id"])).match)
        start = utcnow() - timedelta(minutes=1)
        match["start"] = start.isoformat()
        match["end"] = (start + timedelta(hours=10)).isoformat()
        await session.execute(update(Quote).where(Quote.id == quote["id"]).values(match=match))
        await session.commit()
    resp = await order(client, enterprise, quote)
    assert resp.status_code == 409, resp.text
    assert resp.json()["reason"] == "window_started"
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(Order.id))).all() == []
        assert (await session.scalars(select(LedgerEntry.id))).all() == []


async def test_parties_only(client: AsyncClient) -> None:
    provider, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    placed = (
        await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    ).json()
    stranger = await create_enterprise(client)
    other_provider = await create_provider(client)
    for key in (stranger["api_key"], other_provider["api_key"]):
        assert (
            await client.get(f"/v1/orders/{placed['id']}", headers=bearer(key))
        ).status_code == 404
    assert (
        await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(stranger["api_key"]))
    ).status_code == 404
    assert (
        await client.get(f"/v1/orders/{placed['id']}", headers=bearer(provider["api_key"]))
    ).status_code == 200
    mine = await client.get("/v1/orders", headers=bearer(other_provider["api_key"]))
    assert mine.json()["items"] == []
    theirs = await client.get("/v1/orders", headers=bearer(provider["api_key"]))
    assert [o["id"] for o in theirs.json()["items"]] == [placed["id"]]
    assert (
        await client.get(
            f"/v1/enterprises/{enterprise['id']}/voucher-usage", headers=bearer(stranger["api_key"])
        )
    ).status_code == 404


async def test_every_state_change_is_in_the_audit_log(client: AsyncClient) -> None:
    provider, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    placed = (
        await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    ).json()
    await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(enterprise["api_key"]))
    log = await client.get(
        f"/v1/audit-log?resource_type=order&resource_id={placed['id']}", headers=OPERATOR
    )
    assert log.status_code == 200
    entries = log.json()["items"]
    assert [e["action"] for e in entries] == ["order.placed", "order.cancelled"]
    assert entries[1]["before"] == {"status": "reserved"}
    assert entries[1]["principal_role"] == "enterprise"
    assert entries[1]["principal_id"] == enterprise["id"]
    assert entries[0]["request_id"]
    denied = await client.get("/v1/audit-log", headers=bearer(provider["api_key"]))
    assert denied.status_code == 403
