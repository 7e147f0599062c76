"""Offers: creation rules, ownership, search and retirement."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.db import Database
from tests.factories import OPERATOR, T0, bearer, create_offer, create_provider, offer_body
from tests.registry.helpers import (
    assert_problem,
    count_offers,
    error_locs,
    load_offer,
    make_enterprise,
    mentions_field,
    walk_pages,
)


async def test_create_derives_domestic_from_the_catalog(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    resp = await client.post(
        "/v1/offers", json=offer_body(accelerator_id="huawei-ascend-910b"), headers=key
    )
    assert resp.status_code == 201, resp.text
    offer = resp.json()
    assert offer["domestic"] is True
    assert offer["provider_id"] == provider["id"]
    assert offer["price_per_card_hour"] == "12.00"
    assert offer["status"] == "active"
    assert offer["workloads"] == ["training", "inference"]
    assert resp.headers["etag"]
    assert datetime.fromisoformat(offer["available_from"]) == T0

    nvidia = await create_offer(client, provider, accelerator_id="nvidia-h100-sxm")
    assert nvidia["domestic"] is False
    agreeing = await create_offer(
        client, provider, accelerator_id="nvidia-h100-sxm", domestic=False
    )
    assert agreeing["domestic"] is False

    row = await load_offer(db, offer["id"])
    assert row is not None
    assert row.domestic is True
    assert row.price_per_card_hour == Decimal("12.00")


@pytest.mark.parametrize(
    ("accelerator_id", "declared"), [("huawei-ascend-910b", False), ("nvidia-h100-sxm", True)]
)
async def test_contradicting_domestic_flag_is_422_and_stores_nothing(
    client: AsyncClient, db: Database, accelerator_id: str, declared: bool
) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        json=offer_body(accelerator_id=accelerator_id, domestic=declared),
        headers=bearer(provider["api_key"]),
    )
    body = assert_problem(resp, 422)
    assert ["body", "domestic"] in error_locs(body)
    assert accelerator_id in body["detail"]
    assert await count_offers(db) == 0


async def test_unknown_accelerator_is_422(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        json=offer_body(accelerator_id="quantum-gpu-9000"),
        headers=bearer(provider["api_key"]),
    )
    body = assert_problem(resp, 422)
    assert ["body", "accelerator_id"] in error_locs(body)
    assert "quantum-gpu-9000" in body["detail"]
    assert await count_offers(db) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_per_card_hour", "0"),
        ("price_per_card_hour", "0.00"),
        ("price_per_card_hour", "-1"),
        ("price_per_card_hour", 1.5),
        ("price_per_card_hour", "abc"),
        ("price_per_card_hour", "1.234"),
        ("price_per_card_hour", ""),
        ("price_per_card_hour", "NaN"),
        ("price_per_card_hour", "Infinity"),
        ("price_per_card_hour", "1e30"),
        ("price_per_card_hour", True),
        # A JSON number is never an amount (docs/decisions.md), an integer included.
        ("price_per_card_hour", 12),
        ("price_per_card_hour", "1e3"),
        ("price_per_card_hour", "12."),
        ("price_per_card_hour", " 12.00"),
        ("cards_total", 0),
        ("cards_total", -4),
        ("cards_total", "many"),
        ("cards_total", "64"),
        ("cards_total", 64.0),
        ("free_migration_support", 0),
        ("free_migration_support", "true"),
        ("min_hours", 0),
        ("free_trial_hours", -1),
        ("region_code", "3301"),
        ("region_code", "330199"),  # no such Hangzhou district (GB/T 2260)
        ("workloads", []),
        ("workloads", ["training", "training"]),
        ("workloads", ["mining"]),
        ("status", "retired"),
        ("status", "sold"),
        ("external_id", ""),
        ("available_from", "2026-03-01T00:00:00"),
        ("available_until", "2027-03-01T00:00:00"),
        ("available_from", "2026-03-01"),
        ("available_from", "yesterday"),
        ("colour", "green"),
    ],
)
async def test_invalid_offer_fields_are_422_and_store_nothing(
    client: AsyncClient, db: Database, field: str, value: Any
) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers", json=offer_body(**{field: value}), headers=bearer(provider["api_key"])
    )
    body = assert_problem(resp, 422)
    if field != "status" or value != "retired":
        assert mentions_field(body, field), body
    assert await count_offers(db) == 0


@pytest.mark.parametrize("price", ["0.01", "1", "12.5", "12.50", "0012.00", "9999.99"])
async def test_valid_prices_are_stored_exactly(client: AsyncClient, price: Any) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, price_per_card_hour=price)
    assert offer["price_per_card_hour"] == f"{Decimal(str(price)):.2f}"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00"),
        ("2026-03-02T00:00:00+08:00", "2026-03-01T00:00:00+08:00"),
        # The same instant written in two offsets.
        ("2026-03-01T08:00:00+08:00", "2026-03-01T00:00:00+00:00"),
    ],
)
async def test_window_must_be_ordered(
    client: AsyncClient, db: Database, start: str, end: str
) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        json=offer_body(available_from=start, available_until=end),
        headers=bearer(provider["api_key"]),
    )
    body = assert_problem(resp, 422)
    assert "available_from" in body["detail"]
    assert await count_offers(db) == 0


async def test_instants_in_any_offset_are_stored_in_utc(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(
        client,
        provider,
        available_from="2026-03-01T08:00:00+08:00",
        available_until="2026-04-01T00:00:00-05:00",
    )
    assert datetime.fromisoformat(offer["available_from"]) == datetime(2026, 3, 1, tzinfo=UTC)
    assert datetime.fromisoformat(offer["available_until"]) == datetime(2026, 4, 1, 5, tzinfo=UTC)
    got = await client.get(f"/v1/offers/{offer['id']}", headers=bearer(provider["api_key"]))
    assert datetime.fromisoformat(got.json()["available_from"]) == datetime(2026, 3, 1, tzinfo=UTC)


async def test_duplicate_external_id_is_409(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    await create_offer(client, provider, external_id="rack-7")
    resp = await client.post(
        "/v1/offers", json=offer_body(external_id="rack-7"), headers=bearer(provider["api_key"])
    )
    assert "rack-7" in assert_problem(resp, 409)["detail"]
    assert await count_offers(db) == 1
    # The same external_id at another provider is its own offer.
    other = await create_provider(client)
    await create_offer(client, other, external_id="rack-7")
    assert await count_offers(db) == 2


async def test_who_may_create_offers(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    other = await create_provider(client)
    # A provider key cannot create for another provider.
    resp = await client.post(
        "/v1/offers",
        json=offer_body(provider_id=other["id"]),
        headers=bearer(provider["api_key"]),
    )
    assert_problem(resp, 403)
    # The operator must name the provider, and it must exist.
    assert mentions_field(
        assert_problem(await client.post("/v1/offers", json=offer_body(), headers=OPERATOR), 422),
        "provider_id",
    )
    assert mentions_field(
        assert_problem(
            await client.post(
                "/v1/offers", json=offer_body(provider_id="prv_nope"), headers=OPERATOR
            ),
            422,
        ),
        "provider_id",
    )
    assert await count_offers(db) == 0
    made = await client.post(
        "/v1/offers", json=offer_body(provider_id=other["id"]), headers=OPERATOR
    )
    assert made.status_code == 201, made.text
    assert made.json()["provider_id"] == other["id"]
    # An enterprise does not sell compute.
    enterprise_id = await make_enterprise(db)
    ent_key = (
        await client.post(
            "/v1/api-keys",
            json={"role": "enterprise", "enterprise_id": enterprise_id},
            headers=OPERATOR,
        )
    ).json()["key"]
    assert_problem(await client.post("/v1/offers", json=offer_body(), headers=bearer(ent_key)), 403)
    assert await count_offers(db) == 1


async def test_delisted_provider_cannot_create_offers(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    await client.post(
        f"/v1/providers/{provider['id']}/status", json={"status": "delisted"}, headers=OPERATOR
    )
    resp = await client.post("/v1/offers", json=offer_body(), headers=bearer(provider["api_key"]))
    assert_problem(resp, 409)
    assert await count_offers(db) == 0


async def test_another_provider_cannot_touch_an_offer(client: AsyncClient, db: Database) -> None:
    owner = await create_provider(client)
    intruder = await create_provider(client)
    offer = await create_offer(client, owner)
    key = bearer(intruder["api_key"])
    path = f"/v1/offers/{offer['id']}"

    assert_problem(await client.get(path, headers=key), 404)
    assert_problem(await client.patch(path, json={"price_per_card_hour": "0.01"}, headers=key), 404)
    assert_problem(await client.delete(path, headers=key), 404)

    row = await load_offer(db, offer["id"])
    assert row is not None
    assert row.price_per_card_hour == Decimal("12.00")
    assert row.status == "active"
    assert row.version == 1


async def test_owner_patches_with_if_match(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider)
    key = bearer(provider["api_key"])
    path = f"/v1/offers/{offer['id']}"
    etag = (await client.get(path, headers=key)).headers["etag"]

    ok = await client.patch(
        path,
        json={"price_per_card_hour": "10.50", "cards_total": 32},
        headers={**key, "If-Match": etag},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["price_per_card_hour"] == "10.50"
    assert ok.json()["cards_total"] == 32
    assert ok.headers["etag"] != etag

    stale = await client.patch(
        path, json={"price_per_card_hour": "9.00"}, headers={**key, "If-Match": etag}
    )
    assert_problem(stale, 412)
    assert (await client.get(path, headers=key)).json()["price_per_card_hour"] == "10.50"


async def test_patch_is_validated_like_create(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, accelerator_id="huawei-ascend-910b")
    key = bearer(provider["api_key"])
    path = f"/v1/offers/{offer['id']}"
    for body, field in (
        ({"price_per_card_hour": "0"}, "price_per_card_hour"),
        ({"price_per_card_hour": 3.5}, "price_per_card_hour"),
        ({"accelerator_id": "quantum-gpu-9000"}, "accelerator_id"),
        ({"domestic": False}, "domestic"),
        ({"accelerator_id": "nvidia-h100-sxm", "domestic": True}, "domestic"),
        ({"available_until": T0.isoformat()}, "available_until"),
        ({"available_from": "2026-01-01T00:00:00"}, "available_from"),
        ({"status": "retired"}, "status"),
        ({"external_id": "renamed"}, "external_id"),
        ({"provider_id": "prv_other"}, "provider_id"),
    ):
        resp = await client.patch(path, json=body, headers=key)
        problem = assert_problem(resp, 422)
        assert field in problem["detail"] or mentions_field(problem, field), (body, problem)
    row = await load_offer(db, offer["id"])
    assert row is not None
    assert row.version == 1
    assert row.accelerator_id == "huawei-ascend-910b"

    moved = await client.patch(path, json={"accelerator_id": "nvidia-h100-sxm"}, headers=key)
    assert moved.status_code == 200, moved.text
    assert moved.json()["domestic"] is False


async def test_operator_edits_any_offer(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider)
    path = f"/v1/offers/{offer['id']}"
    resp = await client.patch(path, json={"status": "paused", "min_hours": 8}, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "paused"
    assert resp.json()["min_hours"] == 8
    got = await client.get(path, headers=bearer(provider["api_key"]))
    assert got.json()["status"] == "paused"
    assert got.json()["provider_id"] == provider["id"]


async def test_delete_retires_and_patch_can_reopen(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider)
    key = bearer(provider["api_key"])
    path = f"/v1/offers/{offer['id']}"
    resp = await client.delete(path, headers=key)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "retired"
    again = await client.delete(path, headers=key)
    assert again.status_code == 200
    assert again.json()["status"] == "retired"

    assert (await client.get(path, headers=key)).json()["status"] == "retired"
    # A retired offer is off the market.
    other = await create_provider(client)
    market = await client.get("/v1/offers", headers=bearer(other["api_key"]))
    assert offer["id"] not in {o["id"] for o in market.json()["items"]}

    assert_problem(await client.patch(path, json={"cards_total": 8}, headers=key), 409)
    reopened = await client.patch(path, json={"status": "active"}, headers=key)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "active"


async def test_paused_offers_are_visible_only_to_their_owner(client: AsyncClient) -> None:
    owner = await create_provider(client)
    other = await create_provider(client)
    active = await create_offer(client, owner)
    paused = await create_offer(client, owner, status="paused")
    assert paused["status"] == "paused"

    theirs = await walk_pages(client, "/v1/offers", bearer(other["api_key"]))
    ids = {o["id"] for o in theirs}
    assert active["id"] in ids
    assert paused["id"] not in ids
    asked = await walk_pages(
        client, "/v1/offers", bearer(other["api_key"]), status="paused", provider_id=owner["id"]
    )
    assert asked == []

    mine = {o["id"] for o in await walk_pages(client, "/v1/offers", bearer(owner["api_key"]))}
    assert {active["id"], paused["id"]} <= mine
    everything = {o["id"] for o in await walk_pages(client, "/v1/offers", OPERATOR)}
    assert {active["id"], paused["id"]} <= everything


async def test_offers_of_unlisted_providers_are_hidden_from_others(client: AsyncClient) -> None:
    pending = await create_provider(client, status="pending")
    other = await create_provider(client)
    offer = await create_offer(client, pending)
    market = {o["id"] for o in await walk_pages(client, "/v1/offers", bearer(other["api_key"]))}
    assert offer["id"] not in market
    own = {o["id"] for o in await walk_pages(client, "/v1/offers", bearer(pending["api_key"]))}
    assert offer["id"] in own


@pytest.fixture
async def market(client: AsyncClient) -> dict[str, Any]:
    """Two listed providers with a spread of offers, and a third key that only searches."""
    a = await create_provider(client, region_code="330108")
    b = await create_provider(client, region_code="310101")
    viewer = await create_provider(client)
    offers = {
        "a_ascend": await create_offer(
            client,
            a,
            accelerator_id="huawei-ascend-910b",
            cards_total=64,
            price_per_card_hour="12.00",
        ),
        "a_h100": await create_offer(
            client, a, accelerator_id="nvidia-h100-sxm", cards_total=8, price_per_card_hour="25.00"
        ),
        "a_paused": await create_offer(
            client, a, accelerator_id="huawei-ascend-910b", cards_total=512, status="paused"
        ),
        "b_ascend": await create_offer(
            client,
            b,
            accelerator_id="huawei-ascend-910b",
            cards_total=256,
            price_per_card_hour="9.99",
            region_code="310101",
        ),
        "b_h20": await create_offer(
            client,
            b,
            accelerator_id="nvidia-h20",
            cards_total=16,
            price_per_card_hour="10.00",
            region_code="330106",
        ),
    }
    return {"a": a, "b": b, "viewer": viewer, "offers": offers}


SEARCHES: list[tuple[dict[str, str], set[str]]] = [
    ({}, {"a_ascend", "a_h100", "b_ascend", "b_h20"}),
    ({"accelerator_id": "huawei-ascend-910b"}, {"a_ascend", "b_ascend"}),
    ({"domestic": "true"}, {"a_ascend", "b_ascend"}),
    ({"domestic": "false"}, {"a_h100", "b_h20"}),
    ({"min_cards": "16"}, {"a_ascend", "b_ascend", "b_h20"}),
    ({"min_cards": "65"}, {"b_ascend"}),
    ({"max_price_per_card_hour": "10.00"}, {"b_ascend", "b_h20"}),
    ({"max_price_per_card_hour": "9.99"}, {"b_ascend"}),
    ({"max_price_per_card_hour": "9.98"}, set()),
    ({"region_prefix": "33"}, {"a_ascend", "a_h100", "b_h20"}),
    ({"region_prefix": "3301"}, {"a_ascend", "a_h100", "b_h20"}),
    ({"region_prefix": "330106"}, {"b_h20"}),
    ({"region_prefix": "31"}, {"b_ascend"}),
    ({"provider_id": "b"}, {"b_ascend", "b_h20"}),
    ({"status": "active"}, {"a_ascend", "a_h100", "b_ascend", "b_h20"}),
    ({"status": "paused"}, set()),
    ({"domestic": "true", "max_price_per_card_hour": "11", "region_prefix": "31"}, {"b_ascend"}),
]


@pytest.mark.parametrize(("params", "expected"), SEARCHES, ids=[str(p) for p, _ in SEARCHES])
async def test_search_filters(
    client: AsyncClient, market: dict[str, Any], params: dict[str, str], expected: set[str]
) -> None:
    query = dict(params)
    if "provider_id" in query:
        query["provider_id"] = market[query["provider_id"]]["id"]
    items = await walk_pages(
        client, "/v1/offers", bearer(market["viewer"]["api_key"]), limit=2, **query
    )
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    names = {name for name, offer in market["offers"].items() if offer["id"] in ids}
    assert names == expected
    assert len(ids) == len(expected)


async def test_owner_searches_its_paused_offers(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    items = await walk_pages(client, "/v1/offers", bearer(market["a"]["api_key"]), status="paused")
    assert [item["id"] for item in items] == [market["offers"]["a_paused"]["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"min_cards": "0"},
        {"min_cards": "lots"},
        {"max_price_per_card_hour": "0"},
        {"max_price_per_card_hour": "-3"},
        {"max_price_per_card_hour": "1.234"},
        {"max_price_per_card_hour": "cheap"},
        {"region_prefix": "3"},
        {"region_prefix": "33%"},
        {"region_prefix": "3301081"},
        {"domestic": "maybe"},
        {"status": "sold"},
    ],
)
async def test_bad_search_parameters_are_422(client: AsyncClient, params: dict[str, str]) -> None:
    resp = await client.get("/v1/offers", params=params, headers=OPERATOR)
    body = assert_problem(resp, 422)
    assert mentions_field(body, next(iter(params)))


async def test_unknown_offer_is_404(client: AsyncClient) -> None:
    assert_problem(await client.get("/v1/offers/off_nope", headers=OPERATOR), 404)
    assert_problem(await client.delete("/v1/offers/off_nope", headers=OPERATOR), 404)
    assert_problem(
        await client.patch("/v1/offers/off_nope", json={"cards_total": 1}, headers=OPERATOR), 404
    )


async def test_offer_far_in_time_is_refused(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    far = datetime(2150, 1, 1, tzinfo=UTC)
    resp = await client.post(
        "/v1/offers",
        json=offer_body(available_until=far.isoformat()),
        headers=bearer(provider["api_key"]),
    )
    assert mentions_field(assert_problem(resp, 422), "available_until")
    near = T0 + timedelta(days=1)
    ok = await client.post(
        "/v1/offers",
        json=offer_body(available_until=near.isoformat()),
        headers=bearer(provider["api_key"]),
    )
    assert ok.status_code == 201
    assert await count_offers(db) == 1


async def test_suspending_a_provider_takes_its_offers_off_the_market(
    client: AsyncClient, db: Database
) -> None:
    seller = await create_provider(client)
    buyer_id = await make_enterprise(db)
    buyer = (
        await client.post(
            "/v1/api-keys", json={"role": "enterprise", "enterprise_id": buyer_id}, headers=OPERATOR
        )
    ).json()["key"]
    offer = await create_offer(client, seller)
    paused = await create_offer(client, seller, status="paused")

    def ids(items: list[dict[str, Any]]) -> set[str]:
        return {item["id"] for item in items}

    market = ids(await walk_pages(client, "/v1/offers", bearer(buyer)))
    assert offer["id"] in market
    assert paused["id"] not in market
    assert_problem(await client.get(f"/v1/offers/{offer['id']}", headers=bearer(buyer)), 404)

    await client.post(
        f"/v1/providers/{seller['id']}/status", json={"status": "suspended"}, headers=OPERATOR
    )
    assert offer["id"] not in ids(await walk_pages(client, "/v1/offers", bearer(buyer)))
    # The seller still sees and manages its own.
    own = ids(await walk_pages(client, "/v1/offers", bearer(seller["api_key"])))
    assert {offer["id"], paused["id"]} <= own

    await client.post(
        f"/v1/providers/{seller['id']}/status", json={"status": "listed"}, headers=OPERATOR
    )
    assert offer["id"] in ids(await walk_pages(client, "/v1/offers", bearer(buyer)))


async def test_region_codes_are_checked_against_the_gbt2260_table(client: AsyncClient) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    # Hangzhou's districts of 2021 (Linping, Qiantang) are real codes.
    for code in ("330113", "330114", "330108", "330106", "310115"):
        resp = await client.post("/v1/offers", json=offer_body(region_code=code), headers=key)
        assert resp.status_code == 201, resp.text
    resp = await client.post("/v1/offers", json=offer_body(region_code="330199"), headers=key)
    assert resp.status_code == 422, resp.text
    [error] = resp.json()["errors"]
    assert error["loc"] == ["body", "region_code"]
    assert "330199 is not a GB/T 2260 county-level code" in error["msg"]
    # A sync is checked the same way, row by row.
    resp = await client.put(
        f"/v1/providers/{provider['id']}/offers:sync",
        json={"offers": [offer_body(external_id="x1", region_code="330199")]},
        headers=key,
    )
    assert resp.status_code == 422, resp.text
    assert ["body", "offers", 0, "region_code"] in [e["loc"] for e in resp.json()["errors"]]
    # And a PATCH.
    [offer] = (await client.get("/v1/offers", headers=key)).json()["items"][:1]
    resp = await client.patch(
        f"/v1/offers/{offer['id']}", json={"region_code": "330199"}, headers=key
    )
    assert resp.status_code == 422, resp.text
