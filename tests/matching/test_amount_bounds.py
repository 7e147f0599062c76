"""Amounts the service derives stay within what an order can store.

Found under fault injection: each input was bounded, but their product was not. An
offer at 9,999,999,999,999.99 per card-hour, 1,000 cards × 1,000 hours, was quoted
(201, about 1e19 yuan) and its order was a 500 ("value out of int64 range").
"""

from decimal import Decimal
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select

from app.core.db import Database
from app.core.money import MAX_AMOUNT, max_price_per_card_hour
from app.models import Quote
from tests.factories import (
    T0,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.registry.helpers import assert_problem

HUGE = "9999999999999.99"


def test_the_highest_price_keeps_the_amount_within_the_maximum() -> None:
    for cards, hours in [(1, 1), (1_000, 1_000), (7, 13), (100_000, 26_280)]:
        price = max_price_per_card_hour(cards, hours)
        assert price * cards * hours <= MAX_AMOUNT
        assert (price + Decimal("0.01")) * cards * hours > MAX_AMOUNT


async def _market(client: AsyncClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    huge = await create_offer(client, provider, cards_total=1_000, price_per_card_hour=HUGE)
    fair = await create_offer(client, provider, cards_total=1_000, price_per_card_hour="9.00")
    return provider, huge, fair


async def test_an_unstorable_amount_is_never_quoted(client: AsyncClient, db: Database) -> None:
    _, huge, fair = await _market(client)
    enterprise = await create_enterprise(client)
    request = await create_request(
        client, enterprise, cards=1_000, hours=1_000, latest_start=T0.isoformat()
    )
    headers = bearer(enterprise["api_key"])

    matches = await client.get(f"/v1/compute-requests/{request['id']}/matches", headers=headers)
    assert matches.status_code == 200, matches.text
    offered = [m["offer_id"] for m in matches.json()["items"]]
    assert offered == [fair["id"]]  # the huge one is left out, not a 500

    refused = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": huge["id"]}, headers=headers
    )
    problem = assert_problem(refused, 422)
    for named in ("price_per_card_hour", HUGE, "cards 1000", "hours 1000", str(MAX_AMOUNT)):
        assert named in problem["detail"], problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "offer_id"]
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Quote)) == 0

    quoted = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": fair["id"]}, headers=headers
    )
    assert quoted.status_code == 201, quoted.text
    order = await client.post("/v1/orders", json={"quote_id": quoted.json()["id"]}, headers=headers)
    assert order.status_code == 201, order.text
    assert order.json()["gross_amount"] == "9000000.00"


async def test_a_split_with_an_unstorable_part_is_refused(client: AsyncClient) -> None:
    _provider, huge, fair = await _market(client)
    enterprise = await create_enterprise(client)
    request = await create_request(
        client,
        enterprise,
        cards=1_000,
        hours=1_000,
        latest_start=T0.isoformat(),
        allow_split=True,
    )
    refused = await client.post(
        "/v1/quotes",
        json={
            "request_id": request["id"],
            "parts": [
                {"offer_id": huge["id"], "cards": 500},
                {"offer_id": fair["id"], "cards": 500},
            ],
        },
        headers=bearer(enterprise["api_key"]),
    )
    problem = assert_problem(refused, 422)
    assert problem["errors"][0]["loc"] == ["body", "parts"]
    assert huge["id"] in problem["detail"]
