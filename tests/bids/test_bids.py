"""Bids on open requests: who may bid, the refusals, matches and orders at the bid's price."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select

from app.models import OrderPart
from app.ops.invariants import check
from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.helpers import assert_problem, walk_pages
from tests.matching.test_endpoints import matches

DAY0 = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
WINDOW = {
    "available_from": (DAY0 - timedelta(days=5)).isoformat(),
    "available_until": (DAY0 + timedelta(days=100)).isoformat(),
}
VALID = (DAY0 + timedelta(days=1)).isoformat()


async def _setup(client: AsyncClient, **request: Any) -> dict[str, Any]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    rival = await create_provider(client)
    offer = await create_offer(
        client, provider, cards_total=8, price_per_card_hour="12.00", **WINDOW
    )
    rival_offer = await create_offer(
        client, rival, cards_total=8, price_per_card_hour="11.00", **WINDOW
    )
    enterprise = await create_enterprise(client, region_code="330108")
    body = {
        "cards": 8,
        "hours": 24,
        "earliest_start": DAY0.isoformat(),
        "latest_start": (DAY0 + timedelta(days=2)).isoformat(),
        "accept_bids": True,
        **request,
    }
    req = await create_request(client, enterprise, **body)
    return {
        "provider": provider,
        "rival": rival,
        "offer": offer,
        "rival_offer": rival_offer,
        "enterprise": enterprise,
        "request": req,
    }


async def _bid(
    client: AsyncClient,
    who: dict[str, Any],
    request: dict[str, Any],
    offer: dict[str, Any],
    price: str,
) -> Any:
    return await client.post(
        f"/v1/compute-requests/{request['id']}/bids",
        json={"offer_id": offer["id"], "price_per_card_hour": price, "valid_until": VALID},
        headers=bearer(who["api_key"]),
    )


async def test_open_requests_show_what_is_wanted_never_who(client: AsyncClient) -> None:
    m = await _setup(client)
    items = await walk_pages(client, "/v1/open-requests", bearer(m["provider"]["api_key"]))
    [item] = [i for i in items if i["id"] == m["request"]["id"]]
    assert item["district"] == "330108"
    assert item["accept_bids"] is True
    assert item["bids_close_at"] == m["request"]["latest_start"]
    text = str(item)
    assert m["enterprise"]["id"] not in text
    assert m["enterprise"]["name"] not in text
    assert m["enterprise"]["unified_social_credit_code"] not in text
    assert "enterprise_id" not in item
    # Filters.
    for params, seen in (
        ({"purpose": "inference"}, False),
        ({"purpose": "training"}, True),
        ({"accelerator_id": "nvidia-h20"}, True),  # the request names no model: any
        ({"domestic": "required"}, False),
    ):
        found = await walk_pages(
            client, "/v1/open-requests", bearer(m["provider"]["api_key"]), **params
        )
        assert (m["request"]["id"] in {i["id"] for i in found}) is seen, params
    # Enterprises and unlisted providers do not see the market's requests.
    assert_problem(
        await client.get("/v1/open-requests", headers=bearer(m["enterprise"]["api_key"])), 403
    )
    pending = await create_provider(client, status="pending")
    assert_problem(await client.get("/v1/open-requests", headers=bearer(pending["api_key"])), 403)
    assert (await client.get("/v1/open-requests", headers=OPERATOR)).status_code == 200


async def test_bid_refusals(client: AsyncClient) -> None:
    m = await _setup(client)
    above = await _bid(client, m["provider"], m["request"], m["offer"], "12.01")
    assert assert_problem(above, 409)["reason"] == "above_list_price"
    # Another provider's offer, and an enterprise, and the operator: never.
    assert_problem(await _bid(client, m["rival"], m["request"], m["offer"], "10.00"), 404)
    assert_problem(await _bid(client, m["enterprise"], m["request"], m["offer"], "10.00"), 403)
    op = await client.post(
        f"/v1/compute-requests/{m['request']['id']}/bids",
        json={"offer_id": m["offer"]["id"], "price_per_card_hour": "10.00", "valid_until": VALID},
        headers=OPERATOR,
    )
    assert_problem(op, 403)
    # A request that does not accept bids.
    closed = await create_request(
        client,
        m["enterprise"],
        cards=8,
        hours=24,
        earliest_start=DAY0.isoformat(),
        latest_start=DAY0.isoformat(),
    )
    refused = await _bid(client, m["provider"], closed, m["offer"], "10.00")
    assert assert_problem(refused, 409)["reason"] == "not_accepting_bids"
    # Bidding closed.
    past = await create_request(
        client,
        m["enterprise"],
        cards=8,
        hours=24,
        earliest_start=DAY0.isoformat(),
        latest_start=DAY0.isoformat(),
        accept_bids=True,
        bids_close_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    )
    refused = await _bid(client, m["provider"], past, m["offer"], "10.00")
    assert assert_problem(refused, 409)["reason"] == "bids_closed"
    # No capacity: more cards than the offer has.
    big = await create_request(
        client,
        m["enterprise"],
        cards=8,
        hours=24 * 200,
        earliest_start=DAY0.isoformat(),
        latest_start=DAY0.isoformat(),
        accept_bids=True,
    )
    refused = await _bid(client, m["provider"], big, m["offer"], "10.00")
    assert assert_problem(refused, 409)["reason"] == "capacity"
    # valid_until in the past.
    stale = await client.post(
        f"/v1/compute-requests/{m['request']['id']}/bids",
        json={
            "offer_id": m["offer"]["id"],
            "price_per_card_hour": "10.00",
            "valid_until": "2020-01-01T00:00:00+00:00",
        },
        headers=bearer(m["provider"]["api_key"]),
    )
    assert_problem(stale, 422)
    # Nothing was stored by any refusal.
    listed = await client.get(
        f"/v1/compute-requests/{m['request']['id']}/bids",
        headers=bearer(m["enterprise"]["api_key"]),
    )
    assert listed.json()["items"] == []


async def test_one_live_bid_per_offer_and_who_sees_which(client: AsyncClient) -> None:
    m = await _setup(client)
    first = await _bid(client, m["provider"], m["request"], m["offer"], "11.50")
    assert first.status_code == 201, first.text
    second = await _bid(client, m["provider"], m["request"], m["offer"], "10.50")
    assert second.status_code == 201, second.text
    rival = await _bid(client, m["rival"], m["request"], m["rival_offer"], "10.90")
    assert rival.status_code == 201, rival.text
    path = f"/v1/compute-requests/{m['request']['id']}/bids"

    async def ids(key: str) -> set[str]:
        return {b["id"] for b in await walk_pages(client, path, bearer(key))}

    # The enterprise sees every live bid; the replaced one is gone.
    assert await ids(m["enterprise"]["api_key"]) == {second.json()["id"], rival.json()["id"]}
    # Each provider sees only its own.
    assert await ids(m["provider"]["api_key"]) == {second.json()["id"]}
    assert await ids(m["rival"]["api_key"]) == {rival.json()["id"]}
    # Another enterprise sees nothing of this request.
    stranger = await create_enterprise(client)
    assert_problem(await client.get(path, headers=bearer(stranger["api_key"])), 404)
    # Only its provider withdraws a bid.
    bid_id = rival.json()["id"]
    assert_problem(
        await client.delete(f"/v1/bids/{bid_id}", headers=bearer(m["provider"]["api_key"])), 404
    )
    gone = await client.delete(f"/v1/bids/{bid_id}", headers=bearer(m["rival"]["api_key"]))
    assert gone.json()["status"] == "withdrawn"
    again = await client.delete(f"/v1/bids/{bid_id}", headers=bearer(m["rival"]["api_key"]))
    assert_problem(again, 409)
    assert await ids(m["enterprise"]["api_key"]) == {second.json()["id"]}


async def test_a_bid_is_matched_once_and_ordered_at_its_price(client: AsyncClient) -> None:
    m = await _setup(client)
    enterprise, request = m["enterprise"], m["request"]
    before = await matches(client, enterprise, request)
    assert all(x["bid_id"] is None for x in before)
    bid = await _bid(client, m["provider"], request, m["offer"], "10.00")
    found = await matches(client, enterprise, request)
    on_offer = [x for x in found if x["offer_id"] == m["offer"]["id"]]
    assert len(on_offer) == 1  # the bid, not also the list price
    match = on_offer[0]
    assert match["bid_id"] == bid.json()["id"]
    assert match["price_per_card_hour"] == "10.00"
    # 8 × 24 × 10.00 = 1920.00; Binjiang's 60% on domestic hardware: 768.00 net.
    assert match["gross_amount"] == "1920.00"
    assert match["net_amount"] == "768.00"
    # The bid now beats the rival's 11.00 list price.
    assert found[0]["bid_id"] == bid.json()["id"]

    headers = bearer(enterprise["api_key"])
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "bid_id": bid.json()["id"]},
        headers=headers,
    )
    assert quote.status_code == 201, quote.text
    assert (quote.json()["bid_id"], quote.json()["net_amount"]) == (bid.json()["id"], "768.00")
    order = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=headers)
    assert order.status_code == 201, order.text
    assert order.json()["gross_amount"] == "1920.00"
    assert order.json()["subsidy"]["amount"] == "1152.00"

    # The provider's list price drops below its bid: the list price wins, once.
    await client.patch(
        f"/v1/offers/{m['offer']['id']}",
        json={"price_per_card_hour": "9.00"},
        headers=bearer(m["provider"]["api_key"]),
    )
    other = await create_request(
        client,
        enterprise,
        cards=4,
        hours=24,
        earliest_start=(DAY0 + timedelta(days=3)).isoformat(),
        latest_start=(DAY0 + timedelta(days=3)).isoformat(),
        accept_bids=True,
    )
    bid2 = await _bid(client, m["provider"], other, m["offer"], "9.00")
    assert bid2.status_code == 201, bid2.text
    await client.patch(
        f"/v1/offers/{m['offer']['id']}",
        json={"price_per_card_hour": "8.00"},
        headers=bearer(m["provider"]["api_key"]),
    )
    on_offer = [
        x for x in await matches(client, enterprise, other) if x["offer_id"] == m["offer"]["id"]
    ]
    assert [(x["bid_id"], x["price_per_card_hour"]) for x in on_offer] == [(None, "8.00")]


async def test_a_withdrawn_or_expired_bid_is_not_matched_or_quoted(client: AsyncClient) -> None:
    m = await _setup(client)
    bid = await _bid(client, m["provider"], m["request"], m["offer"], "10.00")
    await client.delete(f"/v1/bids/{bid.json()['id']}", headers=bearer(m["provider"]["api_key"]))
    found = await matches(client, m["enterprise"], m["request"])
    assert all(x["bid_id"] is None for x in found)
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": m["request"]["id"], "bid_id": bid.json()["id"]},
        headers=bearer(m["enterprise"]["api_key"]),
    )
    assert assert_problem(quote, 409)["reason"] == "bid_unavailable"


async def test_a_bid_order_and_a_list_order_race_for_the_last_cards(
    client: AsyncClient, db: Any
) -> None:
    """Never overbooked: of a bid's order and a list-price order on the same 8 cards,
    exactly one is placed."""
    for _ in range(3):
        m = await _setup(client)
        bid = await _bid(client, m["provider"], m["request"], m["offer"], "10.00")
        assert bid.status_code == 201, bid.text
        other = await create_enterprise(client)
        req2 = await create_request(
            client,
            other,
            cards=8,
            hours=24,
            earliest_start=DAY0.isoformat(),
            latest_start=DAY0.isoformat(),
        )
        q1 = await client.post(
            "/v1/quotes",
            json={"request_id": m["request"]["id"], "bid_id": bid.json()["id"]},
            headers=bearer(m["enterprise"]["api_key"]),
        )
        q2 = await client.post(
            "/v1/quotes",
            json={"request_id": req2["id"], "offer_id": m["offer"]["id"]},
            headers=bearer(other["api_key"]),
        )
        assert q1.status_code == q2.status_code == 201, (q1.text, q2.text)
        assert q1.json()["start"] == q2.json()["start"]
        results = await asyncio.gather(
            client.post(
                "/v1/orders",
                json={"quote_id": q1.json()["id"]},
                headers=bearer(m["enterprise"]["api_key"]),
            ),
            client.post(
                "/v1/orders", json={"quote_id": q2.json()["id"]}, headers=bearer(other["api_key"])
            ),
        )
        assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
        async with db.sessionmaker() as session:
            held = await session.scalar(
                select(func.sum(OrderPart.cards)).where(
                    OrderPart.offer_id == m["offer"]["id"], OrderPart.holding.is_(True)
                )
            )
            assert held == 8
            assert await check(session) == []


async def test_a_retried_bid_with_one_key_has_one_effect(client: AsyncClient) -> None:
    m = await _setup(client)
    path = f"/v1/compute-requests/{m['request']['id']}/bids"
    body = {"offer_id": m["offer"]["id"], "price_per_card_hour": "10.00", "valid_until": VALID}
    headers = {**bearer(m["provider"]["api_key"]), "Idempotency-Key": "bid-1"}
    first = await client.post(path, json=body, headers=headers)
    again = await client.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    bids = await walk_pages(client, path, bearer(m["enterprise"]["api_key"]))
    assert [b["id"] for b in bids] == [first.json()["id"]]


async def test_a_short_answer_is_the_head_of_a_long_one(client: AsyncClient) -> None:
    # Bids on most offers, some below their list price and some displaced by a cheaper
    # list price elsewhere: the best 2 are the first 2 of the best 20, whatever the bids.
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    enterprise = await create_enterprise(client, region_code="330108")
    offers = [
        await create_offer(
            client, provider, cards_total=8, price_per_card_hour=f"{10 + i}.00", **WINDOW
        )
        for i in range(8)
    ]
    req = await create_request(
        client,
        enterprise,
        cards=8,
        hours=24,
        earliest_start=DAY0.isoformat(),
        latest_start=(DAY0 + timedelta(days=2)).isoformat(),
        accept_bids=True,
    )
    for i, offer in enumerate(offers[2:], start=2):
        resp = await _bid(client, provider, req, offer, f"{9 + i - 2 * (i % 3)}.50")
        assert resp.status_code == 201, resp.text
    long = await matches(client, enterprise, req, limit=20)
    assert sum(1 for m in long if m["bid_id"]) >= 3
    for k in (1, 2, 3, 5):
        short = await matches(client, enterprise, req, limit=k)
        assert [(m["offer_id"], m["bid_id"]) for m in short] == [
            (m["offer_id"], m["bid_id"]) for m in long[:k]
        ]
