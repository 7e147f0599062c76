"""GET /v1/price-index (market.md, "The price index"): what compute costs, asked and paid."""

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import update

from app.core.db import Database
from app.core.timeutil import SHANGHAI
from app.models import Order, PricePaidDay
from app.ops.invariants import check as invariants
from tests.factories import (
    OPERATOR,
    T0,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.helpers import assert_problem, mentions_field

ASCEND = "huawei-ascend-910b"
H20 = "nvidia-h20"


async def index(client: AsyncClient, query: str = "", headers: Any = OPERATOR) -> Any:
    resp = await client.get(f"/v1/price-index{query}", headers=headers)
    assert resp.status_code == 200, resp.text
    return {item["accelerator_id"]: item for item in resp.json()["items"]}


async def test_active_offers_of_listed_providers_count(client: AsyncClient) -> None:
    provider = await create_provider(client)
    for price in ("8.00", "10.00", "12.00", "30.00"):
        await create_offer(client, provider, price_per_card_hour=price)
    paused = await create_offer(client, provider, price_per_card_hour="1.00")
    resp = await client.patch(
        f"/v1/offers/{paused['id']}", json={"status": "paused"}, headers=bearer(provider["api_key"])
    )
    assert resp.status_code == 200, resp.text
    suspended = await create_provider(client)
    await create_offer(client, suspended, price_per_card_hour="2.00")
    resp = await client.post(
        f"/v1/providers/{suspended['id']}/status",
        json={"status": "suspended", "reason": "review"},
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text

    item = (await index(client, f"?accelerator_id={ASCEND}"))[ASCEND]
    assert item["domestic"] is True
    assert item["offers"] == {"count": 4, "min": "8.00", "median": "11.00", "p90": "30.00"}
    assert item["orders"] == {"count": 0, "card_hours": 0, "median_price": None}


async def test_the_index_follows_every_change_at_once(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offers = [
        await create_offer(client, provider, price_per_card_hour=price)
        for price in ("10.00", "20.00", "30.00")
    ]
    key = bearer(provider["api_key"])
    assert (await index(client))[ASCEND]["offers"]["median"] == "20.00"

    resp = await client.patch(
        f"/v1/offers/{offers[1]['id']}", json={"price_per_card_hour": "24.00"}, headers=key
    )
    assert resp.status_code == 200, resp.text
    assert (await index(client))[ASCEND]["offers"]["median"] == "24.00"

    resp = await client.patch(
        f"/v1/offers/{offers[2]['id']}", json={"status": "paused"}, headers=key
    )
    assert resp.status_code == 200, resp.text
    assert (await index(client))[ASCEND]["offers"]["median"] == "17.00"

    resp = await client.post(
        f"/v1/providers/{provider['id']}/status",
        json={"status": "suspended", "reason": "review"},
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text
    assert ASCEND not in await index(client)


async def test_one_item_per_accelerator_and_filters(client: AsyncClient) -> None:
    provider = await create_provider(client)
    await create_offer(client, provider, price_per_card_hour="12.00", region_code="330108")
    await create_offer(client, provider, price_per_card_hour="14.00", region_code="330106")
    await create_offer(client, provider, accelerator_id=H20, price_per_card_hour="20.00")

    both = await index(client)
    assert both[ASCEND]["offers"]["count"] == 2
    assert both[H20]["domestic"] is False
    assert both[H20]["offers"]["median"] == "20.00"

    only = await index(client, f"?accelerator_id={H20}")
    assert list(only) == [H20]
    asked = await index(client, f"?accelerator_id={H20}&accelerator_id={ASCEND}")
    assert sorted(asked) == sorted([ASCEND, H20])

    xihu = await index(client, f"?accelerator_id={ASCEND}&region_prefix=330106")
    assert xihu[ASCEND]["offers"] == {
        "count": 1,
        "min": "14.00",
        "median": "14.00",
        "p90": "14.00",
    }
    # An accelerator asked for with nothing on sale still has its item.
    empty = await index(client, "?accelerator_id=cambricon-mlu370-x8")
    assert empty["cambricon-mlu370-x8"]["offers"]["count"] == 0
    assert empty["cambricon-mlu370-x8"]["offers"]["median"] is None


async def _order(
    client: AsyncClient, enterprise: dict[str, Any], offer: dict[str, Any], cards: int, hours: int
) -> dict[str, Any]:
    request = await create_request(client, enterprise, cards=cards, hours=hours)
    key = bearer(enterprise["api_key"])
    quote = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": offer["id"]}, headers=key
    )
    assert quote.status_code == 201, quote.text
    placed = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=key)
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def test_orders_placed_in_the_window_weighted_by_card_hours(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    cheap = await create_offer(client, provider, price_per_card_hour="8.00", cards_total=64)
    dear = await create_offer(client, provider, price_per_card_hour="12.00", cards_total=64)
    enterprise = await create_enterprise(client)
    await _order(client, enterprise, cheap, cards=8, hours=10)  # 80 card-hours at 8.00
    await _order(client, enterprise, dear, cards=8, hours=20)  # 160 at 12.00
    cancelled = await _order(client, enterprise, dear, cards=16, hours=100)
    resp = await client.post(
        f"/v1/orders/{cancelled['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert resp.status_code == 200, resp.text

    item = (await index(client))[ASCEND]
    # The cancelled order bought nothing; 240 card-hours, 160 of them at 12.00.
    assert item["orders"] == {"count": 2, "card_hours": 240, "median_price": "12.00"}
    by_region = (await index(client, "?region_prefix=3301"))[ASCEND]
    assert by_region["orders"] == item["orders"]
    assert (await index(client, "?region_prefix=3302")).get(ASCEND, {}).get("orders") in (
        None,
        {"count": 0, "card_hours": 0, "median_price": None},
    )
    assert await _invariants(db) == []


async def test_the_window_is_the_last_days_in_shanghai(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, price_per_card_hour="9.00", cards_total=64)
    enterprise = await create_enterprise(client)
    order = await _order(client, enterprise, offer, cards=4, hours=10)
    assert (await index(client, "?days=1"))[ASCEND]["orders"]["count"] == 1
    # As if placed 42 days ago: outside the default 30 days, inside 60, by the day
    # totals and by the orders themselves (a region asked for) alike.
    async with db.sessionmaker() as session:
        placed = T0 - timedelta(days=44)
        await session.execute(
            update(Order).where(Order.id == order["id"]).values(created_at=placed)
        )
        await session.execute(update(PricePaidDay).values(day=placed.astimezone(SHANGHAI).date()))
        await session.commit()
    assert await _invariants(db) == []
    for region in ("", "&region_prefix=33"):
        assert (await index(client, "?days=30" + region))[ASCEND]["orders"]["count"] == 0
        assert (await index(client, "?days=60" + region))[ASCEND]["orders"] == {
            "count": 1,
            "card_hours": 40,
            "median_price": "9.00",
        }


async def test_a_split_order_counts_once_with_every_part(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    for price in ("10.00", "11.00"):
        await create_offer(client, provider, price_per_card_hour=price, cards_total=8)
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise, cards=16, hours=10, allow_split=True)
    key = bearer(enterprise["api_key"])
    found = await client.get(f"/v1/compute-requests/{request['id']}/matches", headers=key)
    [split] = [m for m in found.json()["items"] if m["parts"]]
    quote = await client.post(
        "/v1/quotes",
        json={
            "request_id": request["id"],
            "parts": [{"offer_id": p["offer_id"], "cards": p["cards"]} for p in split["parts"]],
        },
        headers=key,
    )
    assert quote.status_code == 201, quote.text
    placed = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=key)
    assert placed.status_code == 201, placed.text
    assert (await index(client))[ASCEND]["orders"] == {
        "count": 1,
        "card_hours": 160,
        "median_price": "10.00",
    }
    assert await _invariants(db) == []
    resp = await client.post(f"/v1/orders/{placed.json()['id']}/cancel", headers=key)
    assert resp.status_code == 200, resp.text
    assert (await index(client))[ASCEND]["orders"] == {
        "count": 0,
        "card_hours": 0,
        "median_price": None,
    }
    assert await _invariants(db) == []


async def test_any_key_reads_it(client: AsyncClient) -> None:
    provider = await create_provider(client)
    await create_offer(client, provider)
    enterprise = await create_enterprise(client)
    for key in (provider["api_key"], enterprise["api_key"]):
        assert ASCEND in await index(client, headers=bearer(key))
    assert_problem(await client.get("/v1/price-index"), 401)


async def test_bad_queries_are_422_naming_the_parameter(client: AsyncClient) -> None:
    for query, name in (
        ("?accelerator_id=no-such-chip", "accelerator_id"),
        ("?days=0", "days"),
        ("?days=367", "days"),
        ("?region_prefix=33a", "region_prefix"),
        ("?median=1", "median"),
    ):
        resp = await client.get(f"/v1/price-index{query}", headers=OPERATOR)
        assert mentions_field(assert_problem(resp, 422), name), (query, resp.text)


async def _invariants(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        return await invariants(session)
