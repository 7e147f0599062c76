"""API keys: issued by the operator, shown once, stored hashed, revocable at once."""

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from app.core.db import Database
from app.models import ApiKey
from tests.factories import OPERATOR, bearer, create_provider
from tests.helpers import assert_problem, count, make_enterprise, mentions_field


async def test_operator_creates_a_provider_key_shown_once_and_stored_hashed(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/api-keys",
        json={"role": "provider", "provider_id": provider["id"], "name": "platform"},
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    secret = created["key"]
    assert created["role"] == "provider"
    assert created["provider_id"] == provider["id"]
    assert created["enterprise_id"] is None
    assert created["revoked_at"] is None
    assert len(secret) >= 32
    assert secret.startswith(created["prefix"])

    async with db.sessionmaker() as session:
        row = await session.get(ApiKey, created["id"])
        assert row is not None
        assert row.key_hash != secret
        assert secret not in row.key_hash
        assert len(row.key_hash) == 64
        # No column of the row holds the secret.
        assert all(secret != getattr(row, column.key) for column in ApiKey.__table__.columns)

    listed = await client.get("/v1/api-keys", headers=OPERATOR)
    assert listed.status_code == 200
    assert secret not in listed.text
    items = {item["id"]: item for item in listed.json()["items"]}
    assert created["id"] in items
    assert "key" not in items[created["id"]]
    assert items[created["id"]]["prefix"] == created["prefix"]

    # The key works, as that provider.
    me = await client.get(f"/v1/providers/{provider['id']}", headers=bearer(secret))
    assert me.status_code == 200


async def test_operator_creates_an_operator_key(client: AsyncClient) -> None:
    resp = await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    key = resp.json()["key"]
    assert resp.json()["provider_id"] is None
    # An operator key may list keys.
    listed = await client.get("/v1/api-keys", headers=bearer(key))
    assert listed.status_code == 200
    assert key not in listed.text


async def test_operator_creates_an_enterprise_key(client: AsyncClient, db: Database) -> None:
    enterprise_id = await make_enterprise(db)
    resp = await client.post(
        "/v1/api-keys",
        json={"role": "enterprise", "enterprise_id": enterprise_id},
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["role"] == "enterprise"
    assert created["enterprise_id"] == enterprise_id
    # An enterprise key reads the catalog but may not manage keys.
    key = bearer(created["key"])
    assert (await client.get("/v1/accelerators", headers=key)).status_code == 200
    assert_problem(await client.get("/v1/api-keys", headers=key), 403)


async def test_list_filters_by_role(client: AsyncClient) -> None:
    provider = await create_provider(client)
    await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
    resp = await client.get("/v1/api-keys", params={"role": "provider"}, headers=OPERATOR)
    assert resp.status_code == 200
    items = resp.json()["items"]
    assert items
    assert all(item["role"] == "provider" for item in items)
    assert provider["id"] in {item["provider_id"] for item in items}


@pytest.mark.parametrize(
    "body",
    [
        {"role": "provider"},
        {"role": "provider", "enterprise_id": "ent_x"},
        {"role": "enterprise"},
        {"role": "enterprise", "provider_id": "prv_x"},
        {"role": "operator", "provider_id": "prv_x"},
        {"role": "operator", "enterprise_id": "ent_x"},
        {"role": "admin"},
        {"role": "operator", "key": "chosen-secret"},
        {},
    ],
)
async def test_invalid_combinations_are_422_and_store_nothing(
    client: AsyncClient, db: Database, body: dict[str, str]
) -> None:
    before = await count(db, ApiKey)
    resp = await client.post("/v1/api-keys", json=body, headers=OPERATOR)
    problem = assert_problem(resp, 422)
    assert problem["errors"]
    assert await count(db, ApiKey) == before


async def test_key_for_an_unknown_subject_is_422(client: AsyncClient, db: Database) -> None:
    before = await count(db, ApiKey)
    resp = await client.post(
        "/v1/api-keys", json={"role": "provider", "provider_id": "prv_nope"}, headers=OPERATOR
    )
    assert mentions_field(assert_problem(resp, 422), "provider_id")
    resp = await client.post(
        "/v1/api-keys",
        json={"role": "enterprise", "enterprise_id": "ent_nope"},
        headers=OPERATOR,
    )
    assert mentions_field(assert_problem(resp, 422), "enterprise_id")
    assert await count(db, ApiKey) == before


async def test_revoked_key_is_refused_at_once_and_revoking_twice_is_409(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    assert (await client.get(f"/v1/providers/{provider['id']}", headers=key)).status_code == 200

    async with db.sessionmaker() as session:
        key_id = await session.scalar(select(ApiKey.id).where(ApiKey.provider_id == provider["id"]))
    revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=OPERATOR)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None

    refused = await client.get(f"/v1/providers/{provider['id']}", headers=key)
    problem = assert_problem(refused, 401)
    assert refused.headers["www-authenticate"].lower().startswith("bearer")
    assert "revoked" in problem["detail"]

    assert_problem(await client.delete(f"/v1/api-keys/{key_id}", headers=OPERATOR), 409)
    assert_problem(await client.delete("/v1/api-keys/key_nope", headers=OPERATOR), 404)


async def test_revoked_operator_key_cannot_revive_itself(client: AsyncClient) -> None:
    made = await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
    key, key_id = made.json()["key"], made.json()["id"]
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=bearer(key))).status_code == 200
    assert_problem(
        await client.post("/v1/api-keys", json={"role": "operator"}, headers=bearer(key)), 401
    )


async def test_non_operator_is_forbidden(client: AsyncClient) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    assert_problem(await client.get("/v1/api-keys", headers=key), 403)
    assert_problem(await client.post("/v1/api-keys", json={"role": "operator"}, headers=key), 403)
    assert_problem(
        await client.post(
            "/v1/api-keys", json={"role": "provider", "provider_id": provider["id"]}, headers=key
        ),
        403,
    )
    assert_problem(await client.delete("/v1/api-keys/key_any", headers=key), 403)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer cm_unknownunknownunknownunknownunknown"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "cm_no_scheme"},
    ],
)
async def test_missing_or_unknown_key_is_401_problem_with_challenge(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in (
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/accelerators"),
        ("GET", "/v1/offers"),
        ("POST", "/v1/api-keys"),
    ):
        resp = await client.request(
            method, path, headers=headers, json={"role": "operator"} if method == "POST" else None
        )
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"].lower().startswith("bearer"), (method, path)


@pytest.mark.parametrize(
    "body",
    [
        # Found by schemathesis: an empty id passed as "none given" and then hit the
        # foreign key, a 500.
        {"role": "operator", "enterprise_id": ""},
        {"role": "operator", "provider_id": ""},
        {"role": "provider", "provider_id": ""},
        {"role": "enterprise", "enterprise_id": ""},
    ],
)
async def test_empty_ids_are_422_not_500(
    client: AsyncClient, db: Database, body: dict[str, str]
) -> None:
    before = await count(db, ApiKey)
    resp = await client.post("/v1/api-keys", json=body, headers=OPERATOR)
    assert_problem(resp, 422)
    assert await count(db, ApiKey) == before
