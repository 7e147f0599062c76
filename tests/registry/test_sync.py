"""PUT /v1/providers/{id}/offers:sync: an idempotent, all-or-nothing upsert by external_id."""

from typing import Any

from httpx import AsyncClient

from app.core.db import Database
from tests.factories import OPERATOR, T0, bearer, create_offer, create_provider, offer_body
from tests.registry.helpers import (
    assert_problem,
    count_offers,
    error_locs,
    load_offer,
    make_enterprise,
    walk_pages,
)


def inventory(n: int, prefix: str = "node", **overrides: Any) -> list[dict[str, Any]]:
    return [offer_body(external_id=f"{prefix}-{i}", **overrides) for i in range(n)]


def sync_url(provider: dict[str, Any]) -> str:
    return f"/v1/providers/{provider['id']}/offers:sync"


async def sync(
    client: AsyncClient, provider: dict[str, Any], offers: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    resp = await client.put(
        sync_url(provider), json={"offers": offers, **extra}, headers=bearer(provider["api_key"])
    )
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def test_counts_created_updated_unchanged(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    offers = inventory(5)
    assert await sync(client, provider, offers) == {
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "retired": 0,
    }
    assert await count_offers(db, provider["id"]) == 5

    # The same body again: nothing changes.
    assert await sync(client, provider, offers) == {
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "retired": 0,
    }

    # One changed price, one new offer.
    offers[2]["price_per_card_hour"] = "11.00"
    offers.append(offer_body(external_id="node-new"))
    assert await sync(client, provider, offers) == {
        "created": 1,
        "updated": 1,
        "unchanged": 4,
        "retired": 0,
    }
    assert await count_offers(db, provider["id"]) == 6

    items = await walk_pages(client, "/v1/offers", bearer(provider["api_key"]))
    by_ext = {item["external_id"]: item for item in items}
    assert by_ext["node-2"]["price_per_card_hour"] == "11.00"
    assert by_ext["node-1"]["price_per_card_hour"] == "12.00"
    assert all(item["domestic"] is True for item in items)


async def test_unchanged_is_by_value_not_by_spelling(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offers = inventory(2)
    await sync(client, provider, offers)
    respelled = [
        {
            **offers[0],
            "price_per_card_hour": "12",
            # T0 (midnight UTC) spelt in Shanghai time.
            "available_from": f"{T0.date().isoformat()}T08:00:00+08:00",
            "domestic": True,
        },
        {**offers[1], "workloads": ["inference", "training"]},
    ]
    assert (await sync(client, provider, respelled))["unchanged"] == 2


async def test_update_bumps_the_version_and_changes_every_field(client: AsyncClient) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    offers = inventory(1)
    await sync(client, provider, offers)
    [offer] = await walk_pages(client, "/v1/offers", key)
    etag = (await client.get(f"/v1/offers/{offer['id']}", headers=key)).headers["etag"]

    changed = {
        **offers[0],
        "accelerator_id": "nvidia-h20",
        "cards_total": 3,
        "workloads": ["inference"],
        "free_trial_hours": 10,
        "free_migration_support": True,
        "status": "paused",
        "region_code": "330106",
    }
    assert (await sync(client, provider, [changed]))["updated"] == 1
    got = await client.get(f"/v1/offers/{offer['id']}", headers=key)
    body = got.json()
    assert got.headers["etag"] != etag
    assert body["id"] == offer["id"]
    assert body["accelerator_id"] == "nvidia-h20"
    assert body["domestic"] is False
    assert body["cards_total"] == 3
    assert body["workloads"] == ["inference"]
    assert body["free_trial_hours"] == 10
    assert body["free_migration_support"] is True
    assert body["status"] == "paused"
    assert body["region_code"] == "330106"


async def test_sync_adopts_offers_created_by_post(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    posted = await create_offer(client, provider, external_id="rack-1")
    result = await sync(
        client, provider, [offer_body(external_id="rack-1", price_per_card_hour="8.00")]
    )
    assert result["updated"] == 1
    assert result["created"] == 0
    assert await count_offers(db, provider["id"]) == 1
    row = await load_offer(db, posted["id"])
    assert row is not None
    assert str(row.price_per_card_hour) == "8.00"


async def test_duplicate_external_id_in_one_batch_is_422_at_the_item(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    offers = inventory(4)
    offers[3]["external_id"] = "node-1"
    resp = await client.put(
        sync_url(provider), json={"offers": offers}, headers=bearer(provider["api_key"])
    )
    body = assert_problem(resp, 422)
    assert ["body", "offers", 3, "external_id"] in error_locs(body)
    assert "node-1" in body["detail"]
    assert await count_offers(db) == 0


async def test_one_bad_item_rejects_the_whole_batch(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    await sync(client, provider, inventory(3))
    bad_items: list[tuple[dict[str, Any], str]] = [
        ({"accelerator_id": "quantum-gpu-9000"}, "accelerator_id"),
        ({"domestic": False}, "domestic"),
        ({"price_per_card_hour": "0"}, "price_per_card_hour"),
        ({"price_per_card_hour": 1.5}, "price_per_card_hour"),
        ({"available_from": "2026-03-01T00:00:00"}, "available_from"),
        ({"status": "retired"}, ""),
    ]
    for override, field in bad_items:
        offers = inventory(3, price_per_card_hour="99.00") + inventory(3, prefix="fresh")
        offers[4] = {**offers[4], **override}
        resp = await client.put(
            sync_url(provider), json={"offers": offers}, headers=bearer(provider["api_key"])
        )
        body = assert_problem(resp, 422)
        locs = error_locs(body)
        assert any(loc[:3] == ["body", "offers", 4] for loc in locs), locs
        if field:
            assert any(field in loc for loc in locs), locs
    # Nothing of any rejected batch is stored: no new offers, no new prices.
    items = await walk_pages(client, "/v1/offers", bearer(provider["api_key"]))
    assert len(items) == 3
    assert {item["price_per_card_hour"] for item in items} == {"12.00"}
    assert await count_offers(db) == 3


async def test_another_provider_cannot_sync_your_inventory(
    client: AsyncClient, db: Database
) -> None:
    owner = await create_provider(client)
    intruder = await create_provider(client)
    await sync(client, owner, inventory(2))
    resp = await client.put(
        sync_url(owner),
        json={"offers": inventory(2, price_per_card_hour="0.01"), "retire_missing": True},
        headers=bearer(intruder["api_key"]),
    )
    assert_problem(resp, 404)
    items = await walk_pages(client, "/v1/offers", bearer(owner["api_key"]))
    assert {item["price_per_card_hour"] for item in items} == {"12.00"}
    assert await count_offers(db, intruder["id"]) == 0

    enterprise_id = await make_enterprise(db)
    ent = await client.post(
        "/v1/api-keys",
        json={"role": "enterprise", "enterprise_id": enterprise_id},
        headers=OPERATOR,
    )
    resp = await client.put(sync_url(owner), json={"offers": []}, headers=bearer(ent.json()["key"]))
    assert_problem(resp, 403)
    assert_problem(
        await client.put(sync_url(owner), json={"offers": []}),
        401,
    )


async def test_operator_syncs_for_a_provider(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    resp = await client.put(sync_url(provider), json={"offers": inventory(2)}, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 2
    assert await count_offers(db, provider["id"]) == 2
    missing = await client.put(
        "/v1/providers/prv_nope/offers:sync", json={"offers": inventory(1)}, headers=OPERATOR
    )
    assert_problem(missing, 404)


async def test_delisted_provider_cannot_sync(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    await client.post(
        f"/v1/providers/{provider['id']}/status", json={"status": "delisted"}, headers=OPERATOR
    )
    resp = await client.put(
        sync_url(provider), json={"offers": inventory(1)}, headers=bearer(provider["api_key"])
    )
    assert_problem(resp, 409)
    assert await count_offers(db) == 0


async def test_retire_missing(client: AsyncClient) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    offers = inventory(4)
    await sync(client, provider, offers)

    # Without the flag, missing offers stay.
    assert (await sync(client, provider, offers[:2]))["retired"] == 0
    statuses = {o["external_id"]: o["status"] for o in await walk_pages(client, "/v1/offers", key)}
    assert set(statuses.values()) == {"active"}

    result = await sync(client, provider, offers[:2], retire_missing=True)
    assert result == {"created": 0, "updated": 0, "unchanged": 2, "retired": 2}
    statuses = {o["external_id"]: o["status"] for o in await walk_pages(client, "/v1/offers", key)}
    assert statuses == {
        "node-0": "active",
        "node-1": "active",
        "node-2": "retired",
        "node-3": "retired",
    }

    # Already retired offers are not retired again; listing them again reopens them.
    assert (await sync(client, provider, offers[:2], retire_missing=True))["retired"] == 0
    result = await sync(client, provider, offers, retire_missing=True)
    assert result == {"created": 0, "updated": 2, "unchanged": 2, "retired": 0}

    # An empty full sync retires everything.
    assert (await sync(client, provider, [], retire_missing=True))["retired"] == 4
    statuses = {o["external_id"]: o["status"] for o in await walk_pages(client, "/v1/offers", key)}
    assert set(statuses.values()) == {"retired"}


async def test_retire_missing_leaves_other_providers_alone(client: AsyncClient) -> None:
    mine = await create_provider(client)
    theirs = await create_provider(client)
    await sync(client, theirs, inventory(2))
    await sync(client, mine, inventory(1), retire_missing=True)
    items = await walk_pages(
        client, "/v1/offers", bearer(theirs["api_key"]), provider_id=theirs["id"]
    )
    assert [item["status"] for item in items] == ["active", "active"]


async def test_batch_over_the_limit_is_refused(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    one = offer_body(external_id="x")
    offers = [{**one, "external_id": f"x{i}"} for i in range(10_001)]
    resp = await client.put(
        sync_url(provider), json={"offers": offers}, headers=bearer(provider["api_key"])
    )
    assert resp.status_code in (413, 422), resp.text
    assert_problem(resp, resp.status_code)
    assert await count_offers(db) == 0


async def test_sync_of_ten_thousand_offers_in_one_call(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    template = offer_body()
    offers = [
        {**template, "external_id": f"gpu-{i:05d}", "cards_total": 1 + i % 64}
        for i in range(10_000)
    ]
    resp = await client.put(sync_url(provider), json={"offers": offers}, headers=key)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"created": 10_000, "updated": 0, "unchanged": 0, "retired": 0}

    items = await walk_pages(client, "/v1/offers", key, limit=500)
    ids = [item["id"] for item in items]
    assert len(ids) == 10_000
    assert len(set(ids)) == 10_000
    assert {item["external_id"] for item in items} == {o["external_id"] for o in offers}
    assert await count_offers(db, provider["id"]) == 10_000

    again = await client.put(sync_url(provider), json={"offers": offers}, headers=key)
    assert again.status_code == 200, again.text
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 10_000, "retired": 0}
