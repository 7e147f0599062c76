"""Programs' max_price_ratio through the API: stored, applied to matches, orders, bids
and what-if quotes with the price index's median as it is when the match is priced."""

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient

from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.helpers import assert_problem, mentions_field
from tests.matching.test_endpoints import matches
from tests.subsidies.test_endpoints import quote_body

BJ = "binjiang-compute-2025"
PROGRAM = f"/v1/subsidy-programs/{BJ}"


async def limit(client: AsyncClient, ratio: str | None) -> None:
    resp = await client.patch(PROGRAM, json={"max_price_ratio": ratio}, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert resp.json()["max_price_ratio"] == ratio


def considered(match: dict[str, Any], program_id: str = BJ) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in match["considered"] if c["program_id"] == program_id)
    return found


async def test_the_ratio_is_a_versioned_program_field(client: AsyncClient) -> None:
    before = (await client.get(PROGRAM, headers=OPERATOR)).json()
    assert before["max_price_ratio"] is None  # seeded programs keep null
    await limit(client, "1.50")
    after = (await client.get(PROGRAM, headers=OPERATOR)).json()
    assert after["version"] == before["version"] + 1
    await limit(client, None)
    for bad in ("0.00", "-1.00", "1.505", "1e3", 1.5):
        resp = await client.patch(PROGRAM, json={"max_price_ratio": bad}, headers=OPERATOR)
        assert mentions_field(assert_problem(resp, 422), "max_price_ratio"), bad
    assert (await client.get(PROGRAM, headers=OPERATOR)).json()["version"] == before["version"] + 2


async def _market(client: AsyncClient, *prices: str) -> tuple[Any, list[Any], Any, Any]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offers = [
        await create_offer(client, provider, price_per_card_hour=price, cards_total=8)
        for price in prices
    ]
    enterprise = await create_enterprise(client, region_code="330108")
    request = await create_request(client, enterprise, cards=8, hours=24)
    return provider, offers, enterprise, request


async def test_a_match_priced_above_the_limit_gets_nothing_from_the_program(
    client: AsyncClient,
) -> None:
    await limit(client, "1.50")
    # Active 910B offers at 10, 11, 11, 18: the index median is 11.00, the limit 16.50.
    _, offers, enterprise, request = await _market(client, "10.00", "11.00", "11.00", "18.00")
    by_offer = {m["offer_id"]: m for m in await matches(client, enterprise, request)}
    dear = by_offer[offers[3]["id"]]
    assert dear["subsidy"]["program_id"] != BJ
    reason = considered(dear)
    assert reason["eligible"] is False
    assert "price 18.00 is above 1.50 × the index median 11.00" in reason["reason"]
    cheap = by_offer[offers[0]["id"]]
    assert cheap["subsidy"]["program_id"] == BJ
    assert cheap["subsidy"]["rate"] == "0.60"

    # Without the limit the same offer gets Binjiang's 60%.
    await limit(client, None)
    again = {m["offer_id"]: m for m in await matches(client, enterprise, request)}
    assert again[offers[3]["id"]]["subsidy"]["program_id"] == BJ


async def test_an_order_is_priced_with_the_median_as_it_is_when_placed(
    client: AsyncClient,
) -> None:
    await limit(client, "1.50")
    # 10, 11, 11, 16, 18: median 11.00, limit 16.50, so 16.00 is subsidised.
    provider, offers, enterprise, request = await _market(
        client, "10.00", "11.00", "11.00", "16.00", "18.00"
    )
    key = bearer(enterprise["api_key"])
    quote = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": offers[3]["id"]}, headers=key
    )
    assert quote.status_code == 201, quote.text
    assert quote.json()["subsidy"]["program_id"] == BJ
    # Two sellers cut their prices: 9, 9, 10, 16, 18, median 10.00, limit 15.00.
    for offer in offers[1:3]:
        resp = await client.patch(
            f"/v1/offers/{offer['id']}",
            json={"price_per_card_hour": "9.00"},
            headers=bearer(provider["api_key"]),
        )
        assert resp.status_code == 200, resp.text
    refused = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=key)
    body = assert_problem(refused, 409)
    assert body["reason"] == "subsidy"
    # A new quote says why, and orders as quoted.
    fresh = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": offers[3]["id"]}, headers=key
    )
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["subsidy"]["program_id"] != BJ
    assert (
        "price 16.00 is above 1.50 × the index median 10.00" in considered(fresh.json())["reason"]
    )
    placed = await client.post("/v1/orders", json={"quote_id": fresh.json()["id"]}, headers=key)
    assert placed.status_code == 201, placed.text
    assert placed.json()["subsidy"]["program_id"] != BJ


async def test_a_bid_within_the_limit_is_subsidised_on_its_own_price(client: AsyncClient) -> None:
    await limit(client, "1.50")
    day0 = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    window = {
        "available_from": (day0 - timedelta(days=1)).isoformat(),
        "available_until": (day0 + timedelta(days=30)).isoformat(),
    }
    for price in ("10.00", "11.00", "11.00"):
        await create_offer(client, provider, price_per_card_hour=price, cards_total=8, **window)
    listed = await create_offer(
        client, provider, price_per_card_hour="18.00", cards_total=8, **window
    )
    enterprise = await create_enterprise(client, region_code="330108")
    request = await create_request(
        client,
        enterprise,
        cards=8,
        hours=24,
        earliest_start=day0.isoformat(),
        latest_start=(day0 + timedelta(days=2)).isoformat(),
        accept_bids=True,
    )
    bid = await client.post(
        f"/v1/compute-requests/{request['id']}/bids",
        json={
            "offer_id": listed["id"],
            "price_per_card_hour": "16.00",
            "valid_until": (day0 + timedelta(days=1)).isoformat(),
        },
        headers=bearer(provider["api_key"]),
    )
    assert bid.status_code == 201, bid.text
    [at_bid] = [m for m in await matches(client, enterprise, request) if m["bid_id"]]
    assert at_bid["price_per_card_hour"] == "16.00"
    assert at_bid["subsidy"]["program_id"] == BJ


async def test_what_if_quotes_state_the_price_and_the_model(client: AsyncClient) -> None:
    await limit(client, "1.50")
    provider = await create_provider(client)
    for price in ("10.00", "11.00", "12.00"):
        await create_offer(client, provider, price_per_card_hour=price)
    priced = quote_body(
        contract_date=datetime.now(UTC).date().isoformat(),
        accelerator_id="huawei-ascend-910b",
        price_per_card_hour="17.00",
    )
    resp = await client.post("/v1/subsidy-quotes", json=priced, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert resp.json()["subsidy"]["program_id"] != BJ
    assert "price 17.00 is above 1.50 × the index median 11.00" in considered(resp.json())["reason"]
    within = await client.post(
        "/v1/subsidy-quotes", json={**priced, "price_per_card_hour": "16.50"}, headers=OPERATOR
    )
    assert within.json()["subsidy"]["program_id"] == BJ
    unstated = await client.post(
        "/v1/subsidy-quotes",
        json=quote_body(contract_date=datetime.now(UTC).date().isoformat()),
        headers=OPERATOR,
    )
    assert "price per card-hour not stated" in considered(unstated.json())["reason"]
    unknown = await client.post(
        "/v1/subsidy-quotes", json={**priced, "accelerator_id": "no-such-chip"}, headers=OPERATOR
    )
    assert mentions_field(assert_problem(unknown, 422), "accelerator_id")
