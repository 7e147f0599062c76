"""Racing writers: uniqueness and one-of rules hold under concurrent requests (esp. PostgreSQL)."""

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import select, text

from app.core.db import Database
from app.models import Listing, Offer, Provider
from tests.factories import OPERATOR, bearer, create_provider, credit_code, offer_body
from tests.helpers import assert_problem, count, count_offers

RACERS = 6


async def race(*calls: Any) -> list[Response]:
    return list(await asyncio.gather(*calls))


def statuses(responses: list[Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


async def test_racing_creates_with_one_external_id_store_one_offer(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    body = offer_body(external_id="contested")
    responses = await race(
        *(
            client.post("/v1/offers", json=body, headers=bearer(provider["api_key"]))
            for _ in range(RACERS)
        )
    )
    assert statuses(responses) == [201] + [409] * (RACERS - 1)
    for resp in responses:
        if resp.status_code == 409:
            assert_problem(resp, 409)
    assert await count_offers(db, provider["id"]) == 1


async def test_racing_self_registrations_with_one_code_store_one_provider(
    client: AsyncClient, db: Database
) -> None:
    code = credit_code()
    responses = await race(
        *(
            client.post(
                "/v1/providers",
                json={
                    "name": f"Racer {i}",
                    "kind": "intelligent_computing_center",
                    "unified_social_credit_code": code,
                    "region_code": "330108",
                },
            )
            for i in range(RACERS)
        )
    )
    assert statuses(responses) == [201] + [409] * (RACERS - 1)
    assert await count(db, Provider, Provider.unified_social_credit_code == code) == 1


async def test_racing_overlapping_grants_store_one_listing(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    url = f"/v1/providers/{provider['id']}/listings"
    responses = await race(
        *(
            client.post(
                url,
                json={"list": "hz-planned-icc", "since": f"2025-0{1 + i}-01", "until": None},
                headers=OPERATOR,
            )
            for i in range(RACERS)
        )
    )
    assert statuses(responses) == [201] + [409] * (RACERS - 1)
    assert await count(db, Listing, Listing.provider_id == provider["id"]) == 1


async def test_racing_status_changes_follow_the_machine(client: AsyncClient) -> None:
    provider = await create_provider(client, status="pending")
    url = f"/v1/providers/{provider['id']}/status"
    responses = await race(
        *(client.post(url, json={"status": "listed"}, headers=OPERATOR) for _ in range(RACERS))
    )
    assert statuses(responses) == [200] + [409] * (RACERS - 1)


async def test_racing_sync_and_create_never_fail_with_500(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    offers = [offer_body(external_id=f"r-{i}") for i in range(20)]
    responses = await race(
        client.put(
            f"/v1/providers/{provider['id']}/offers:sync", json={"offers": offers}, headers=key
        ),
        *(client.post("/v1/offers", json=offers[i], headers=key) for i in range(0, 20, 4)),
    )
    sync, creates = responses[0], responses[1:]
    assert sync.status_code in (200, 409), sync.text
    for resp in creates:
        assert resp.status_code in (201, 409), resp.text
    assert await count_offers(db, provider["id"]) == 20 if sync.status_code == 200 else True
    # Whatever the interleaving, a retry of the sync converges on the 20 offers.
    again = await client.put(
        f"/v1/providers/{provider['id']}/offers:sync", json={"offers": offers}, headers=key
    )
    assert again.status_code == 200, again.text
    assert again.json()["created"] + again.json()["unchanged"] + again.json()["updated"] == 20
    assert await count_offers(db, provider["id"]) == 20


async def test_racing_idempotent_retries_store_one_offer(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    headers = {**bearer(provider["api_key"]), "Idempotency-Key": "retry-storm"}
    body = offer_body()
    responses = await race(
        *(client.post("/v1/offers", json=body, headers=headers) for _ in range(RACERS))
    )
    assert all(r.status_code in (201, 409) for r in responses), statuses(responses)
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.json()["id"] for r in created}) == 1
    assert await count_offers(db) == 1


async def _racing_patches(
    client: AsyncClient, path: str, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> list[Response]:
    etag = (await client.get(path, headers=headers)).headers["etag"]
    return await race(
        *(client.patch(path, json=body, headers={**headers, "If-Match": etag}) for body in bodies)
    )


async def test_racing_patches_with_one_etag_let_one_through_provider(
    client: AsyncClient,
) -> None:
    provider = await create_provider(client)
    path = f"/v1/providers/{provider['id']}"
    responses = await _racing_patches(
        client, path, OPERATOR, [{"name": f"Name {i}"} for i in range(RACERS)]
    )
    assert statuses(responses) == [200] + [412] * (RACERS - 1)
    [winner] = [r for r in responses if r.status_code == 200]
    assert (await client.get(path, headers=OPERATOR)).json()["name"] == winner.json()["name"]


async def test_racing_patches_with_one_etag_let_one_through_offer(client: AsyncClient) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    made = await client.post("/v1/offers", json=offer_body(), headers=key)
    path = f"/v1/offers/{made.json()['id']}"
    responses = await _racing_patches(
        client, path, key, [{"cards_total": 10 + i} for i in range(RACERS)]
    )
    assert statuses(responses) == [200] + [412] * (RACERS - 1)
    [winner] = [r for r in responses if r.status_code == 200]
    got = await client.get(path, headers=key)
    assert got.json()["cards_total"] == winner.json()["cards_total"]
    assert got.headers["etag"] == winner.headers["etag"]


async def test_racing_patches_with_one_etag_let_one_through_accelerator(
    client: AsyncClient,
) -> None:
    path = "/v1/accelerators/nvidia-l20"
    responses = await _racing_patches(
        client, path, OPERATOR, [{"source": f"source {i}"} for i in range(RACERS)]
    )
    assert statuses(responses) == [200] + [412] * (RACERS - 1)


async def test_racing_accelerator_creates_store_one(client: AsyncClient) -> None:
    body = {
        "id": "racevendor-r1",
        "vendor": "RaceVendor",
        "model": "R1",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": 500.0,
        "source": "test",
    }
    responses = await race(
        *(client.post("/v1/accelerators", json=body, headers=OPERATOR) for _ in range(RACERS))
    )
    assert statuses(responses) == [201] + [409] * (RACERS - 1)


async def test_a_sync_never_deadlocks_with_an_order_on_its_offers(
    client: AsyncClient, db: Database
) -> None:
    # Placing an order locks its offers, and its rows' foreign keys then take a key-share
    # lock on their provider; a sync locks the provider, then writes its offers. The
    # sync's provider lock must leave the key share free, or each waits for the other
    # and the database aborts one of them.
    if db.is_sqlite:
        pytest.skip("SQLite's writers take turns: there are no row locks to cycle")
    provider = await create_provider(client)
    body = offer_body(external_id="held", price_per_card_hour="12.00")
    created = await client.post("/v1/offers", json=body, headers=bearer(provider["api_key"]))
    assert created.status_code == 201, created.text
    async with db.sessionmaker() as order:
        await order.execute(
            select(Offer.id).where(Offer.id == created.json()["id"]).with_for_update()
        )
        sync = asyncio.create_task(
            client.put(
                f"/v1/providers/{provider['id']}/offers:sync",
                json={"offers": [{**body, "price_per_card_hour": "13.00"}]},
                headers=bearer(provider["api_key"]),
            )
        )
        await until_a_backend_waits_for_a_lock(db)  # the sync, for the offer
        await order.execute(
            select(Provider.id)
            .where(Provider.id == provider["id"])
            .with_for_update(read=True, key_share=True)  # what the foreign key check takes
        )
        await order.commit()
    synced = await sync
    assert synced.status_code == 200, synced.text
    assert synced.json()["updated"] == 1


async def until_a_backend_waits_for_a_lock(db: Database) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with db.engine.connect() as conn:
            if await conn.scalar(waiting):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("no request came to wait for a lock")
