"""Races of real requests against the real database (SQLite, and PostgreSQL in CI)."""

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select

from app.models import LedgerEntry, Order, OrderPart
from app.ops.invariants import check
from tests.factories import (
    OPERATOR,
    T0,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.subsidies.test_endpoints import district_program


async def quote(
    client: AsyncClient, enterprise: dict[str, Any], offer: dict[str, Any], **request: Any
) -> dict[str, Any]:
    req = await create_request(client, enterprise, **request)
    resp = await client.post(
        "/v1/quotes",
        json={"request_id": req["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def place_all(
    client: AsyncClient, attempts: list[tuple[dict[str, Any], dict[str, Any]]]
) -> list[int]:
    responses = await asyncio.gather(
        *(
            client.post("/v1/orders", json={"quote_id": q["id"]}, headers=bearer(e["api_key"]))
            for e, q in attempts
        )
    )
    return [r.status_code for r in responses]


async def test_forty_orders_race_for_ten_cards(client: AsyncClient, db: Any) -> None:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=10)
    enterprises = [await create_enterprise(client) for _ in range(4)]
    attempts = []
    for i in range(40):
        enterprise = enterprises[i % 4]
        q = await quote(client, enterprise, offer, cards=1, hours=48, latest_start=T0.isoformat())
        attempts.append((enterprise, q))
    statuses = await place_all(client, attempts)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 30, statuses
    async with db.sessionmaker() as session:
        held = await session.scalar(
            select(func.sum(OrderPart.cards)).where(
                OrderPart.offer_id == offer["id"], OrderPart.holding.is_(True)
            )
        )
        assert held == 10
        assert await check(session) == []


async def test_one_quote_placed_at_once_many_times_makes_one_order(
    client: AsyncClient, db: Any
) -> None:
    # No Idempotency-Key: only the one-order-per-quote rule stands between these.
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=64)
    enterprise = await create_enterprise(client)
    q = await quote(client, enterprise, offer, cards=1, hours=48, latest_start=T0.isoformat())
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/orders", json={"quote_id": q["id"]}, headers=bearer(enterprise["api_key"])
            )
            for _ in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, statuses
    assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"quote_used"}
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        assert await check(session) == []


async def small_budget_market(client: AsyncClient, budget: Decimal) -> dict[str, Any]:
    """A district program with `budget` a year, and an offer under it of which an
    order of 1 card × 800 h costs 7,600.00 with 3,040.00 of subsidy."""
    created = await client.post(
        "/v1/subsidy-programs",
        json=district_program(
            annual_budget=str(budget), effective_from="2024-01-01", effective_until="2030-12-31"
        ),
        headers=OPERATOR,
    )
    assert created.status_code == 201, created.text
    provider = await create_provider(client, lists=("hz-planned-icc",), region_code="330106")
    return await create_offer(
        client,
        provider,
        cards_total=12,
        price_per_card_hour="9.50",
        accelerator_id="nvidia-h20",
        region_code="330106",
    )


async def small_budget_quote(
    client: AsyncClient, offer: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    enterprise = await create_enterprise(client, region_code="330106")
    q = await quote(client, enterprise, offer, cards=1, hours=800, latest_start=T0.isoformat())
    assert q["subsidy"]["program_id"] == "xihu-compute-2026"
    assert q["subsidy"]["amount"] == "3040.00"
    return enterprise, q


async def test_twelve_enterprises_race_for_a_small_budget(client: AsyncClient, db: Any) -> None:
    budget = Decimal("10000.00")
    offer = await small_budget_market(client, budget)
    attempts = [await small_budget_quote(client, offer) for _ in range(12)]
    statuses = await place_all(client, attempts)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    async with db.sessionmaker() as session:
        spent = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.program_id == "xihu-compute-2026", LedgerEntry.kind == "reserve"
            )
        )
        assert spent is not None
        assert spent <= budget
        assert await check(session) == []
    listed = await client.get("/v1/subsidy-programs/xihu-compute-2026", headers=OPERATOR)
    assert Decimal(listed.json()["budget_used"]) == spent
    assert statuses.count(201) == int(budget // Decimal("3040.00"))


async def test_the_database_refuses_a_reservation_past_the_budget(
    client: AsyncClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two orders can both read room in a budget before either commits; the database
    # then refuses the one that would overspend it (on PostgreSQL at its commit).
    # Here the order is made to read the usage as it was when it was quoted.
    from app.ledger import service as ledger
    from app.orders import store as order_store

    offer = await small_budget_market(client, Decimal("10000.00"))
    attempts = [await small_budget_quote(client, offer) for _ in range(4)]
    for enterprise, q in attempts[:2]:
        placed = await client.post(
            "/v1/orders", json={"quote_id": q["id"]}, headers=bearer(enterprise["api_key"])
        )
        assert placed.status_code == 201, placed.text
    real_usage = order_store.usage

    async def usage_before_the_third(*args: Any, **kwargs: Any) -> Any:
        usage = await real_usage(*args, **kwargs)
        stale = ledger.Balance(reserved=Decimal("6080.00"))
        return order_store.Usage(
            usage.holds, usage.enterprise, {**usage.budgets, "xihu-compute-2026": stale}
        )

    third, fourth = attempts[2:]
    placed = await client.post(
        "/v1/orders", json={"quote_id": third[1]["id"]}, headers=bearer(third[0]["api_key"])
    )
    assert placed.status_code == 201, placed.text
    monkeypatch.setattr(order_store, "usage", usage_before_the_third)
    keyed = {**bearer(fourth[0]["api_key"]), "Idempotency-Key": "fourth"}
    refused = await client.post("/v1/orders", json={"quote_id": fourth[1]["id"]}, headers=keyed)
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "subsidy"
    assert "budget" in refused.json()["detail"]
    # The answer written with the order's rows went with them; the refusal is the answer.
    again = await client.post("/v1/orders", json={"quote_id": fourth[1]["id"]}, headers=keyed)
    assert again.status_code == 409
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == refused.json()
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 3
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 3
        assert await check(session) == []
    listed = await client.get("/v1/subsidy-programs/xihu-compute-2026", headers=OPERATOR)
    assert Decimal(listed.json()["budget_used"]) == Decimal("9120.00")


async def test_a_crash_between_hold_and_ledger_leaves_nothing(
    app: Any, db: Any, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.orders import service as order_service

    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=10)
    enterprise = await create_enterprise(client)
    q = await quote(client, enterprise, offer, cards=2, hours=10)

    async def crash() -> None:
        raise RuntimeError("simulated crash after the capacity hold")

    monkeypatch.setattr(order_service, "_after_capacity_hold", crash)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as raw:
        resp = await raw.post(
            "/v1/orders", json={"quote_id": q["id"]}, headers=bearer(enterprise["api_key"])
        )
    assert resp.status_code == 500
    assert "simulated" not in resp.text  # no internals reach the client
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(func.count()).select_from(OrderPart)) == 0
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    monkeypatch.undo()
    retry = await client.post(
        "/v1/orders", json={"quote_id": q["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert retry.status_code == 201, retry.text
