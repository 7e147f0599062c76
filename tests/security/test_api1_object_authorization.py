"""API1 Broken object level authorization.

Every path with an id, from the OpenAPI document, called by every party that
does not own the object: reads answer 404 (as if it did not exist), actions
403 or 404, and nothing in the database changes. Ids inside bodies and query
strings are tried the same way.
"""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.db import Database
from tests.factories import OPERATOR, offer_body, request_body
from tests.security.conftest import PARTIES, World, changed_tables, snapshot
from tests.security.operations import OPERATIONS, call, document_operations, unclassified


def id_paths(app: FastAPI) -> list[tuple[str, str]]:
    return [(m, p) for m, p in document_operations(app.openapi()) if "{" in p]


def test_every_path_with_an_id_has_a_case(app: FastAPI) -> None:
    missing = [f"{m} {p}" for m, p in id_paths(app) if (m, p) not in OPERATIONS]
    assert not missing, (
        "paths with an id but no case in tests/security/operations.py OPERATIONS "
        f"(say who may call them and how): {missing}"
    )
    assert not unclassified(app.openapi())
    # The matrix below is not vacuous: these are the kinds of object it covers.
    names = {name for _, p in id_paths(app) for name in p.split("{")[1:]}
    for kind in ("offer_id}", "provider_id}", "enterprise_id}", "request_id}", "quote_id}"):
        assert kind in names
    assert "order_id}" in names
    assert "key_id}" in names


async def owner_views(client: AsyncClient, world: World) -> dict[str, Any]:
    """What the owners see of their objects: bodies and ETags."""
    reads = {
        "offer": (f"/v1/offers/{world.offer_a['id']}", "provider_a"),
        "provider": (f"/v1/providers/{world.provider_a['id']}", "provider_a"),
        "enterprise": (f"/v1/enterprises/{world.enterprise_a['id']}", "enterprise_a"),
        "request": (f"/v1/compute-requests/{world.request_a['id']}", "enterprise_a"),
        "quote": (f"/v1/quotes/{world.quote_a['id']}", "enterprise_a"),
        "order": (f"/v1/orders/{world.order_a['id']}", "enterprise_a"),
        "usage": (f"/v1/enterprises/{world.enterprise_a['id']}/voucher-usage", "enterprise_a"),
    }
    out: dict[str, Any] = {}
    for name, (path, owner) in reads.items():
        resp = await client.get(path, headers=world.headers(owner))
        assert resp.status_code == 200, (path, resp.text)
        out[name] = (resp.json(), resp.headers.get("etag"))
    return out


async def test_no_party_reaches_another_partys_objects(
    client: AsyncClient, db: Database, app: FastAPI, world: World
) -> None:
    views = await owner_views(client, world)
    before = await snapshot(db)
    failures: list[str] = []
    tried = 0
    for method, template in id_paths(app):
        op = OPERATIONS[(method, template)]
        if op.operator_only:
            continue  # API5: refused to every key, owners included (test_api5_*)
        for party in PARTIES:
            if party in op.allowed:
                continue
            resp = await call(client, world, method, template, world.headers(party))
            tried += 1
            expected = {404} if method == "GET" else {403, 404}
            if resp.status_code not in expected:
                failures.append(f"{party}: {method} {template} -> {resp.status_code} {resp.text}")
            elif not resp.headers["content-type"].startswith("application/problem+json"):
                failures.append(f"{party}: {method} {template} answered no problem")
            changed = changed_tables(before, await snapshot(db))
            if changed:
                failures.append(f"{party}: {method} {template} changed {changed}")
                before = await snapshot(db)
    assert not failures, "\n".join(failures)
    assert tried >= 30
    assert await owner_views(client, world) == views


async def test_an_unknown_id_and_a_foreign_id_answer_alike(
    client: AsyncClient, world: World
) -> None:
    # Nothing tells another tenant that an id exists: same status, same problem type.
    for path, party in (
        (f"/v1/offers/{world.offer_a['id']}", "provider_b"),
        (f"/v1/orders/{world.order_a['id']}", "enterprise_b"),
        (f"/v1/compute-requests/{world.request_a['id']}", "enterprise_b"),
        (f"/v1/quotes/{world.quote_a['id']}", "provider_a"),
    ):
        foreign = await client.get(path, headers=world.headers(party))
        unknown = await client.get(
            path[: path.rindex("/") + 1] + "x_0", headers=world.headers(party)
        )
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["type"] == unknown.json()["type"]
        assert foreign.json()["title"] == unknown.json()["title"]


async def test_ids_in_bodies_are_checked_too(
    client: AsyncClient, db: Database, world: World
) -> None:
    before = await snapshot(db)
    attempts = [
        # provider B creates an offer for provider A
        (
            "provider_b",
            "POST",
            "/v1/offers",
            {**offer_body(), "provider_id": world.provider_a["id"]},
            {403, 404},
        ),
        # enterprise B posts a request in enterprise A's name
        (
            "enterprise_b",
            "POST",
            "/v1/compute-requests",
            {**request_body(), "enterprise_id": world.enterprise_a["id"]},
            {403, 404},
        ),
        # enterprise B quotes enterprise A's request
        (
            "enterprise_b",
            "POST",
            "/v1/quotes",
            {"request_id": world.request_a["id"], "offer_id": world.offer_a["id"]},
            {403, 404},
        ),
        # enterprise B orders on enterprise A's open quote
        (
            "enterprise_b",
            "POST",
            "/v1/orders",
            {"quote_id": world.open_quote_a["id"]},
            {403, 404},
        ),
    ]
    for party, method, path, body, expected in attempts:
        resp = await client.request(method, path, json=body, headers=world.headers(party))
        assert resp.status_code in expected, (party, path, resp.text)
        assert changed_tables(before, await snapshot(db)) == [], (party, path)


async def test_ids_in_query_strings_only_narrow_what_one_may_see(
    client: AsyncClient, world: World
) -> None:
    # Filters never widen a list: another tenant's id finds nothing.
    requests = await client.get(
        "/v1/compute-requests",
        params={"enterprise_id": world.enterprise_a["id"]},
        headers=world.headers("enterprise_b"),
    )
    assert requests.status_code == 200
    assert requests.json()["items"] == []
    orders = await client.get(
        "/v1/orders",
        params={"request_id": world.request_a["id"]},
        headers=world.headers("enterprise_b"),
    )
    assert orders.status_code == 200
    assert orders.json()["items"] == []
    provider_b_orders = await client.get("/v1/orders", headers=world.headers("provider_b"))
    assert provider_b_orders.json()["items"] == []
    for party in ("provider_b", "enterprise_a", "enterprise_b"):
        providers = await client.get("/v1/providers", headers=world.headers(party))
        assert world.provider_a["id"] not in {p["id"] for p in providers.json()["items"]}
    enterprises = await client.get("/v1/enterprises", headers=world.headers("enterprise_b"))
    assert {e["id"] for e in enterprises.json()["items"]} == {world.enterprise_b["id"]}
    # A paused offer is the owner's business: others do not find it, even by provider id.
    paused = await client.patch(
        f"/v1/offers/{world.offer_a['id']}", json={"status": "paused"}, headers=OPERATOR
    )
    assert paused.status_code == 200, paused.text
    for party in ("provider_b", "enterprise_b"):
        offers = await client.get(
            "/v1/offers",
            params={"provider_id": world.provider_a["id"], "status": "paused"},
            headers=world.headers(party),
        )
        assert offers.status_code == 200
        assert offers.json()["items"] == []
    own = await client.get(
        "/v1/offers",
        params={"provider_id": world.provider_a["id"], "status": "paused"},
        headers=world.headers("provider_a"),
    )
    assert [o["id"] for o in own.json()["items"]] == [world.offer_a["id"]]
