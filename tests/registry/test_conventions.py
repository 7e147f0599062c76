"""Cross-cutting conventions of api.md: problems, pagination, idempotency, body limits."""

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from app.config import Settings
from app.core.db import Database
from app.core.middleware import PENDING_TIMEOUT
from app.core.timeutil import utcnow
from app.main import create_app
from app.models import IdempotencyRecord
from tests.factories import OPERATOR, bearer, create_offer, create_provider, credit_code, offer_body
from tests.registry.helpers import assert_problem, count_offers, error_locs, walk_pages

# ---------------------------------------------------------------- problem+json


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/no-such-thing", 404),
        ("GET", "/v1/offers/off_missing", 404),
        ("GET", "/v1/providers/prv_missing", 404),
        ("GET", "/v1/accelerators/none-such", 404),
        ("DELETE", "/v1/accelerators/huawei-ascend-910b", 405),
        ("PUT", "/v1/offers", 405),
    ],
)
async def test_errors_are_problem_json(
    client: AsyncClient, method: str, path: str, status: int
) -> None:
    resp = await client.request(method, path, headers=OPERATOR)
    body = assert_problem(resp, status)
    assert body["instance"] == path


async def test_validation_errors_list_loc_and_msg(client: AsyncClient) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        json=offer_body(cards_total=0, price_per_card_hour="abc", region_code="x"),
        headers=bearer(provider["api_key"]),
    )
    body = assert_problem(resp, 422)
    locs = error_locs(body)
    assert ["body", "cards_total"] in locs
    assert ["body", "price_per_card_hour"] in locs
    assert ["body", "region_code"] in locs
    assert body["detail"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'"a string"', b"null"],
)
async def test_malformed_bodies_are_422_problems(client: AsyncClient, content: bytes) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        content=content,
        headers={**bearer(provider["api_key"]), "Content-Type": "application/json"},
    )
    assert_problem(resp, 422)


async def test_a_problem_carries_the_request_id(client: AsyncClient) -> None:
    resp = await client.get(
        "/v1/offers/off_missing", headers={**OPERATOR, "X-Request-ID": "req-42"}
    )
    assert assert_problem(resp, 404)["request_id"] == "req-42"
    assert resp.headers["x-request-id"] == "req-42"


# ---------------------------------------------------------------- pagination


@pytest.mark.parametrize(
    "path", ["/v1/offers", "/v1/providers", "/v1/accelerators", "/v1/api-keys"]
)
@pytest.mark.parametrize("limit", ["501", "0", "-1", "ten"])
async def test_limit_out_of_range_is_422(client: AsyncClient, path: str, limit: str) -> None:
    resp = await client.get(path, params={"limit": limit}, headers=OPERATOR)
    assert ["query", "limit"] in error_locs(assert_problem(resp, 422))


@pytest.mark.parametrize(
    "cursor", ["garbage!!", "bm90LWEtY3Vyc29y", "%%%", "k:off_1", "____", "x" * 201, "\u00ff\u00fe"]
)
async def test_bad_cursor_is_422(client: AsyncClient, cursor: str) -> None:
    resp = await client.get("/v1/offers", params={"cursor": cursor}, headers=OPERATOR)
    assert ["query", "cursor"] in error_locs(assert_problem(resp, 422))


async def test_pages_walk_without_gaps_or_repeats(client: AsyncClient) -> None:
    provider = await create_provider(client)
    made = [await create_offer(client, provider) for _ in range(7)]
    first = await client.get("/v1/offers", params={"limit": 3}, headers=OPERATOR)
    page = first.json()
    assert len(page["items"]) == 3
    assert page["next_cursor"]
    items = await walk_pages(client, "/v1/offers", OPERATOR, limit=3)
    assert [o["id"] for o in items] == sorted(o["id"] for o in made)
    exact = await client.get("/v1/offers", params={"limit": 7}, headers=OPERATOR)
    assert exact.json()["next_cursor"] is None
    default = await client.get("/v1/offers", headers=OPERATOR)
    assert len(default.json()["items"]) == 7


async def test_default_page_is_fifty_and_max_is_five_hundred(client: AsyncClient) -> None:
    resp = await client.get("/v1/accelerators", headers=OPERATOR)
    assert len(resp.json()["items"]) <= 50
    full = await client.get("/v1/accelerators", params={"limit": 500}, headers=OPERATOR)
    assert full.status_code == 200
    assert full.json()["next_cursor"] is None


# ---------------------------------------------------------------- idempotency


async def test_same_idempotency_key_and_body_answers_the_first_response(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    headers = {**bearer(provider["api_key"]), "Idempotency-Key": "offer-create-1"}
    body = offer_body()
    first = await client.post("/v1/offers", json=body, headers=headers)
    assert first.status_code == 201, first.text
    second = await client.post("/v1/offers", json=body, headers=headers)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["content-type"] == first.headers["content-type"]
    assert await count_offers(db) == 1


async def test_same_idempotency_key_with_another_body_is_422(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    headers = {**bearer(provider["api_key"]), "Idempotency-Key": "offer-create-2"}
    first = await client.post("/v1/offers", json=offer_body(external_id="a"), headers=headers)
    assert first.status_code == 201
    other = await client.post("/v1/offers", json=offer_body(external_id="b"), headers=headers)
    body = assert_problem(other, 422)
    assert "Idempotency-Key" in body["detail"]
    assert await count_offers(db) == 1


async def test_idempotency_keys_are_per_caller(client: AsyncClient, db: Database) -> None:
    a = await create_provider(client)
    b = await create_provider(client)
    body = offer_body(external_id="shared")
    ra = await client.post(
        "/v1/offers", json=body, headers={**bearer(a["api_key"]), "Idempotency-Key": "k1"}
    )
    rb = await client.post(
        "/v1/offers", json=body, headers={**bearer(b["api_key"]), "Idempotency-Key": "k1"}
    )
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["provider_id"] == a["id"]
    assert rb.json()["provider_id"] == b["id"]
    assert await count_offers(db) == 2


async def test_a_replayed_failure_does_not_hide_a_later_fix(client: AsyncClient) -> None:
    provider = await create_provider(client)
    headers = {**bearer(provider["api_key"]), "Idempotency-Key": "bad-then-good"}
    bad = offer_body(price_per_card_hour="0")
    first = await client.post("/v1/offers", json=bad, headers=headers)
    assert_problem(first, 422)
    again = await client.post("/v1/offers", json=bad, headers=headers)
    assert again.status_code == 422
    assert again.json()["errors"] == first.json()["errors"]


async def test_idempotent_self_registration_does_not_register_twice(client: AsyncClient) -> None:
    body = {
        "name": "Retry Compute",
        "kind": "matchmaking_partner",
        "unified_social_credit_code": credit_code(),
        "region_code": "330106",
    }
    headers = {"Idempotency-Key": "register-once"}
    first = await client.post("/v1/providers", json=body, headers=headers)
    assert first.status_code == 201, first.text
    second = await client.post("/v1/providers", json=body, headers=headers)
    assert second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]
    providers = await walk_pages(client, "/v1/providers", OPERATOR)
    assert [p["id"] for p in providers].count(first.json()["id"]) == 1


async def test_secrets_are_not_stored_in_idempotency_records(
    client: AsyncClient, db: Database
) -> None:
    made = await client.post(
        "/v1/api-keys",
        json={"role": "operator"},
        headers={**OPERATOR, "Idempotency-Key": "new-operator-key"},
    )
    assert made.status_code == 201
    registered = await client.post(
        "/v1/providers",
        json={
            "name": "Self Registered",
            "kind": "intelligent_computing_center",
            "unified_social_credit_code": credit_code(),
            "region_code": "330108",
        },
        headers={"Idempotency-Key": "self-register"},
    )
    assert registered.status_code == 201
    secrets = [made.json()["key"], registered.json()["api_key"]]
    async with db.sessionmaker() as session:
        records = (await session.scalars(select(IdempotencyRecord))).all()
    assert records
    stored = json.dumps(
        [[r.key, r.response_body, r.response_headers, r.fingerprint] for r in records]
    )
    for secret in secrets:
        assert secret not in stored
    # ... and a retry still answers the same key (shown to the one who asked).
    again = await client.post(
        "/v1/api-keys",
        json={"role": "operator"},
        headers={**OPERATOR, "Idempotency-Key": "new-operator-key"},
    )
    assert again.status_code == 201
    assert again.json() == made.json()


async def _pending_record(
    db: Database, authorization: str, key: str, body: bytes, *, age: timedelta
) -> None:
    """A record as the claim of a request to POST /v1/offers leaves it, `age` ago: what a
    process killed in the middle of that request leaves behind."""
    fingerprint = hashlib.sha256(b"POST /v1/offers\n" + body).hexdigest()
    async with db.sessionmaker() as session:
        session.add(
            IdempotencyRecord(
                scope=hashlib.sha256(authorization.encode()).hexdigest(),
                key=hashlib.sha256(key.encode()).hexdigest(),
                fingerprint=fingerprint,
                state="pending",
                created_at=utcnow() - age,
            )
        )
        await session.commit()


async def test_a_request_still_in_progress_answers_409(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    auth = bearer(provider["api_key"])
    body = json.dumps(offer_body()).encode()
    await _pending_record(db, auth["Authorization"], "in-flight", body, age=timedelta(seconds=1))
    resp = await client.post(
        "/v1/offers",
        content=body,
        headers={**auth, "Idempotency-Key": "in-flight", "Content-Type": "application/json"},
    )
    problem = assert_problem(resp, 409)
    assert problem["type"].endswith("idempotency-in-progress")
    assert resp.headers["retry-after"] == "1"
    assert await count_offers(db) == 0


async def test_a_pending_record_left_by_a_dead_process_is_taken_over(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    auth = bearer(provider["api_key"])
    body = json.dumps(offer_body()).encode()
    stale = PENDING_TIMEOUT + timedelta(seconds=5)
    await _pending_record(db, auth["Authorization"], "orphaned", body, age=stale)
    headers = {**auth, "Idempotency-Key": "orphaned", "Content-Type": "application/json"}
    first = await client.post("/v1/offers", content=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/v1/offers", content=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await count_offers(db) == 1
    # Another body under the same key is still refused, stale or not.
    await _pending_record(db, auth["Authorization"], "orphaned-2", body, age=stale)
    other = json.dumps(offer_body(cards_total=3)).encode()
    resp = await client.post(
        "/v1/offers", content=other, headers={**headers, "Idempotency-Key": "orphaned-2"}
    )
    assert_problem(resp, 422)
    assert await count_offers(db) == 1


async def test_idempotency_key_header_is_bounded(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        json=offer_body(),
        headers={**bearer(provider["api_key"]), "Idempotency-Key": "k" * 256},
    )
    assert_problem(resp, 422)
    assert await count_offers(db) == 0


# ---------------------------------------------------------------- body limit


@pytest.fixture
async def small_client(settings: Settings, app: Any) -> AsyncIterator[AsyncClient]:
    # `app` resets the database; this second app shares it with a 2 KiB body limit.
    small = create_app(settings.model_copy(update={"max_body_bytes": 2048}))
    async with AsyncClient(transport=ASGITransport(app=small), base_url="http://test") as c:
        yield c
    await small.state.db.dispose()


async def test_body_over_the_limit_is_413(
    small_client: AsyncClient, client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    offers = [offer_body(external_id=f"big-{i}") for i in range(20)]
    resp = await small_client.put(
        f"/v1/providers/{provider['id']}/offers:sync", json={"offers": offers}, headers=key
    )
    assert_problem(resp, 413)
    post = await small_client.post(
        "/v1/offers", json=offer_body(external_id="x" * 200, padding="y" * 3000), headers=key
    )
    assert_problem(post, 413)
    with_key = await small_client.post(
        "/v1/offers",
        json=offer_body(padding="y" * 3000),
        headers={**key, "Idempotency-Key": "too-big"},
    )
    assert_problem(with_key, 413)
    assert await count_offers(db) == 0
    # A small body still passes.
    ok = await small_client.post("/v1/offers", json=offer_body(), headers=key)
    assert ok.status_code == 201, ok.text


async def test_streamed_body_over_the_limit_is_413(
    small_client: AsyncClient, client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client)
    payload = json.dumps({"offers": [offer_body(external_id=f"s-{i}") for i in range(20)]}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 512):
            yield payload[start : start + 512]

    for extra in ({}, {"Idempotency-Key": "streamed"}):
        resp = await small_client.put(
            f"/v1/providers/{provider['id']}/offers:sync",
            content=chunks(),
            headers={**bearer(provider["api_key"]), "Content-Type": "application/json", **extra},
        )
        assert "content-length" not in {k.lower() for k in resp.request.headers}
        assert_problem(resp, 413)
        post = await small_client.post(
            "/v1/offers",
            content=chunks(),
            headers={**bearer(provider["api_key"]), "Content-Type": "application/json", **extra},
        )
        assert_problem(post, 413)
    assert await count_offers(db) == 0


# ---------------------------------------------------------------- ETag / If-Match


async def test_if_match_star_and_lists(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider)
    path = f"/v1/offers/{offer['id']}"
    key = bearer(provider["api_key"])
    etag = (await client.get(path, headers=key)).headers["etag"]
    star = await client.patch(path, json={"cards_total": 10}, headers={**key, "If-Match": "*"})
    assert star.status_code == 200
    listed = await client.patch(
        path,
        json={"cards_total": 11},
        headers={**key, "If-Match": f'"nope", {star.headers["etag"]}'},
    )
    assert listed.status_code == 200, listed.text
    assert_problem(
        await client.patch(path, json={"cards_total": 12}, headers={**key, "If-Match": etag}), 412
    )


# ---------------------------------------------------------------- operation ids


async def test_registry_operation_ids_are_readable(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ids = {
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {
        "list_api_keys",
        "create_api_key",
        "revoke_api_key",
        "list_accelerators",
        "create_accelerator",
        "update_accelerator",
        "list_providers",
        "create_provider",
        "update_provider",
        "change_provider_status",
        "grant_listing",
        "end_listing",
        "list_offers",
        "create_offer",
        "update_offer",
        "retire_offer",
        "sync_offers",
    } <= ids


async def test_schema_examples_of_identifiers_are_valid(client: AsyncClient) -> None:
    """SDK users copy the examples: a credit code example must pass its own check."""
    from app.core.validators import is_valid_credit_code, is_valid_region_code

    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    credit_examples = [
        example
        for schema in schemas.values()
        for name, prop in schema.get("properties", {}).items()
        if name == "unified_social_credit_code"
        for example in prop.get("examples", [])
    ]
    region_examples = [
        example
        for schema in schemas.values()
        for name, prop in schema.get("properties", {}).items()
        if name == "region_code"
        for example in prop.get("examples", [])
    ]
    assert credit_examples
    assert region_examples
    assert all(is_valid_credit_code(code) for code in credit_examples), credit_examples
    assert all(is_valid_region_code(code) for code in region_examples), region_examples
    # ... and the example registers.
    resp = await client.post(
        "/v1/providers",
        json={
            "name": "Example",
            "kind": "intelligent_computing_center",
            "unified_social_credit_code": credit_examples[0],
            "region_code": region_examples[0],
        },
    )
    assert resp.status_code == 201, resp.text
