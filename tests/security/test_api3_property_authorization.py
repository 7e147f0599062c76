"""API3 Broken object property level authorization.

No mass assignment: a provider cannot set its status or listings, nor an
offer's domestic flag (the catalog decides it); an enterprise cannot set its
foundation-model flag or its cap relaxations; an unknown field anywhere in a
body is refused (422), never silently ignored. Responses show no secret but
the one a create answers once.
"""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.db import Database
from tests.factories import OPERATOR, bearer, create_enterprise, create_offer, credit_code
from tests.factories import offer_body as make_offer_body
from tests.registry.helpers import assert_problem, mentions_field
from tests.security.conftest import World, changed_tables, snapshot
from tests.security.operations import OPERATIONS

INTRUDER = "is_admin"


def _schema(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _open_objects(document: dict[str, Any], node: dict[str, Any], where: str) -> list[str]:
    """Object schemas reachable from `node` that would accept properties they do not name."""
    node = _schema(document, node)
    found: list[str] = []
    if node.get("type") == "object" or "properties" in node:
        if node.get("additionalProperties", True) is not False and "properties" in node:
            found.append(where)
        for name, child in node.get("properties", {}).items():
            found += _open_objects(document, child, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _open_objects(document, node[key], f"{where}[]")
    for key in ("anyOf", "oneOf", "allOf"):
        for child in node.get(key, []):
            found += _open_objects(document, child, where)
    return found


def request_bodies(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The JSON bodies (an evidence upload is a file, multipart: it has no properties)."""
    return {
        (method.upper(), path): op["requestBody"]["content"]["application/json"]["schema"]
        for path, item in document["paths"].items()
        for method, op in item.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    }


def test_the_document_declares_every_input_object_closed(app: FastAPI) -> None:
    document = app.openapi()
    bodies = request_bodies(document)
    assert len(bodies) >= 20
    open_ones = [
        f"{method} {path}: {where}"
        for (method, path), schema in bodies.items()
        for where in _open_objects(document, schema, "body")
    ]
    assert not open_ones, f"input objects that would ignore unknown fields: {open_ones}"


async def test_unknown_fields_are_refused_with_422_on_every_body(
    client: AsyncClient, db: Database, app: FastAPI, world: World
) -> None:
    before = await snapshot(db)
    bodies = request_bodies(app.openapi())
    for method, template in bodies:
        op = OPERATIONS[(method, template)]
        assert op.body is not None, f"{method} {template}: give a valid body in OPERATIONS"
        valid = op.body(world)
        # As the operator, who may do anything: the unknown field alone refuses it.
        path = template.format(**(op.ids(world) if op.ids else {}))
        resp = await client.request(method, path, json={**valid, INTRUDER: True}, headers=OPERATOR)
        body = assert_problem(resp, 422)
        assert mentions_field(body, INTRUDER), (method, template, body)
        assert changed_tables(before, await snapshot(db)) == [], (method, template)


async def test_nested_unknown_fields_are_refused_too(client: AsyncClient, world: World) -> None:
    provider = world.provider_a
    resp = await client.put(
        f"/v1/providers/{provider['id']}/offers:sync",
        json={"offers": [{**make_offer_body(), INTRUDER: True}]},
        headers=bearer(provider["api_key"]),
    )
    assert mentions_field(assert_problem(resp, 422), INTRUDER)
    resp = await client.patch(
        f"/v1/enterprises/{world.enterprise_b['id']}",
        json={
            "filed_models": [
                {"filing_number": "B1", "name": "m", "filed_on": "2025-01-01", INTRUDER: 1}
            ]
        },
        headers=bearer(world.enterprise_b["api_key"]),
    )
    assert mentions_field(assert_problem(resp, 422), INTRUDER)


async def self_registered_provider(client: AsyncClient) -> dict[str, Any]:
    resp = await client.post(
        "/v1/providers",
        json={
            "name": "自助注册",
            "kind": "matchmaking_partner",
            "unified_social_credit_code": credit_code(),
            "region_code": "330110",
        },
    )
    assert resp.status_code == 201, resp.text
    provider: dict[str, Any] = resp.json()
    assert provider["status"] == "pending"
    return provider


async def test_a_provider_cannot_set_its_status_or_listings(
    client: AsyncClient, db: Database
) -> None:
    provider = await self_registered_provider(client)
    key = bearer(provider["api_key"])
    path = f"/v1/providers/{provider['id']}"
    before = await snapshot(db)
    for body in (
        {"status": "listed"},
        {"name": "ok", "status": "listed"},
        {"listings": [{"list": "binjiang-compute-partner", "since": "2025-01-01"}]},
        {"id": "prv_other"},
        {"unified_social_credit_code": credit_code()},
    ):
        assert_problem(await client.patch(path, json=body, headers=key), 422)
    # Its own status change and listings are operator operations (API5): 403.
    assert_problem(await client.post(f"{path}/status", json={"status": "listed"}, headers=key), 403)
    grant = {"list": "binjiang-compute-partner", "since": "2025-01-01", "reference": "x"}
    assert_problem(await client.post(f"{path}/listings", json=grant, headers=key), 403)
    assert changed_tables(before, await snapshot(db)) == []
    # Nor can it choose them when it registers.
    for extra in ({"status": "listed"}, {"listings": [grant]}):
        resp = await client.post(
            "/v1/providers",
            json={
                "name": "Eager",
                "kind": "matchmaking_partner",
                "unified_social_credit_code": credit_code(),
                "region_code": "330110",
                **extra,
            },
        )
        assert_problem(resp, 422)
    assert changed_tables(before, await snapshot(db)) == []
    me = await client.get(path, headers=key)
    assert me.json()["status"] == "pending"
    assert me.json()["listings"] == []


async def test_an_offers_domestic_flag_comes_from_the_catalog(
    client: AsyncClient, db: Database, world: World
) -> None:
    provider = world.provider_a
    key = bearer(provider["api_key"])
    before = await snapshot(db)
    nvidia = make_offer_body(accelerator_id="nvidia-h100-sxm", domestic=True)
    assert_problem(await client.post("/v1/offers", json=nvidia, headers=key), 422)
    sync = f"/v1/providers/{provider['id']}/offers:sync"
    assert_problem(await client.put(sync, json={"offers": [nvidia]}, headers=key), 422)
    offer = f"/v1/offers/{world.offer_a['id']}"  # Huawei Ascend: domestic
    for body in (
        {"domestic": False},
        {"accelerator_id": "nvidia-h100-sxm", "domestic": True},
        {"provider_id": world.provider_b["id"]},
        {"external_id": "stolen"},
    ):
        assert_problem(await client.patch(offer, json=body, headers=key), 422)
    assert changed_tables(before, await snapshot(db)) == []
    # Left out, it is the catalog's; moved to other hardware, it follows the catalog.
    made = await create_offer(client, provider, accelerator_id="nvidia-h100-sxm")
    assert made["domestic"] is False
    moved = await client.patch(offer, json={"accelerator_id": "nvidia-h100-sxm"}, headers=key)
    assert moved.status_code == 200, moved.text
    assert moved.json()["domestic"] is False


async def test_an_enterprise_cannot_set_its_foundation_flag_or_cap_relaxations(
    client: AsyncClient, db: Database
) -> None:
    enterprise = await create_enterprise(client)
    key = bearer(enterprise["api_key"])
    path = f"/v1/enterprises/{enterprise['id']}"
    before = await snapshot(db)
    for body in (
        {"is_foundation_model_enterprise": True},
        {"is_foundation_model_enterprise": False},
        {"relaxed_caps": {"hz-city-compute-2024": "99000000.00"}},
        {"cap_relaxations": [{"program_id": "hz-city-compute-2024"}]},
        {"unified_social_credit_code": credit_code()},
    ):
        resp = await client.patch(path, json=body, headers=key)
        assert_problem(resp, 422)
    relax = await client.put(
        f"{path}/cap-relaxations/hz-city-compute-2024",
        json={"annual_cap": "99000000.00"},
        headers=key,
    )
    assert_problem(relax, 403)
    for extra in (
        {"is_foundation_model_enterprise": True},
        {"relaxed_caps": {"hz-city-compute-2024": "99000000.00"}},
    ):
        registered = await client.post(
            "/v1/enterprises",
            json={
                "name": "Eager",
                "unified_social_credit_code": credit_code(),
                "region_code": "330108",
                **extra,
            },
        )
        assert_problem(registered, 422)
    assert changed_tables(before, await snapshot(db)) == []
    me = (await client.get(path, headers=key)).json()
    assert me["is_foundation_model_enterprise"] is False
    assert me["relaxed_caps"] == {}
    # The operator may (the control: the refusals above are about who, not what).
    granted = await client.patch(
        path, json={"is_foundation_model_enterprise": True}, headers=OPERATOR
    )
    assert granted.status_code == 200, granted.text


def test_responses_show_no_secret_but_the_one_shown_once(app: FastAPI) -> None:
    document = app.openapi()
    schemas = document["components"]["schemas"]
    secret_fields = {"key", "api_key"}
    for name, schema in schemas.items():
        properties = set(schema.get("properties", {}))
        assert not properties & {"key_hash", "password", "secret", "token", "fingerprint"}, name
        if properties & secret_fields:
            assert name in {"ApiKeyCreated", "ProviderCreated", "EnterpriseCreated"}, name


async def test_listing_keys_never_shows_a_secret(client: AsyncClient, world: World) -> None:
    listed = await client.get("/v1/api-keys", params={"limit": 500}, headers=OPERATOR)
    assert listed.status_code == 200
    for party in ("provider_a", "provider_b", "enterprise_a", "enterprise_b"):
        assert getattr(world, party)["api_key"] not in listed.text
    for item in listed.json()["items"]:
        assert "key" not in item
        assert "key_hash" not in item
