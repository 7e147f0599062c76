"""Providers: registration, validation, visibility, updates and the status machine."""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from app.core.db import Database
from app.core.validators import CREDIT_CODE_ALPHABET, make_credit_code
from app.models import ApiKey, Provider
from tests.factories import OPERATOR, bearer, create_provider, credit_code
from tests.registry.helpers import (
    assert_problem,
    count,
    count_providers,
    error_locs,
    mentions_field,
)


def provider_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Binjiang Intelligent Computing Center",
        "kind": "intelligent_computing_center",
        "unified_social_credit_code": credit_code(),
        "region_code": "330108",
    }
    body.update(overrides)
    return body


def wrong_check_character(code: str) -> str:
    for char in CREDIT_CODE_ALPHABET:
        if char != code[-1]:
            return code[:-1] + char
    raise AssertionError("unreachable")


async def test_operator_creates_listed_and_pending_providers(client: AsyncClient) -> None:
    listed = await client.post(
        "/v1/providers", json=provider_body(status="listed"), headers=OPERATOR
    )
    assert listed.status_code == 201, listed.text
    body = listed.json()
    assert body["status"] == "listed"
    assert body["listings"] == []
    assert body["api_key"] is None
    assert listed.headers["etag"]
    assert body["id"].startswith("prv_")

    pending = await client.post("/v1/providers", json=provider_body(), headers=OPERATOR)
    assert pending.status_code == 201
    assert pending.json()["status"] == "pending"


async def test_operator_cannot_create_in_a_later_status(client: AsyncClient, db: Database) -> None:
    before = await count_providers(db)
    for status in ("suspended", "rejected", "delisted"):
        resp = await client.post(
            "/v1/providers", json=provider_body(status=status), headers=OPERATOR
        )
        assert mentions_field(assert_problem(resp, 422), "status")
    assert await count_providers(db) == before


async def test_credit_code_with_a_wrong_check_character_is_422_and_stores_nothing(
    client: AsyncClient, db: Database
) -> None:
    before = await count_providers(db)
    bad = wrong_check_character(credit_code())
    resp = await client.post(
        "/v1/providers", json=provider_body(unified_social_credit_code=bad), headers=OPERATOR
    )
    body = assert_problem(resp, 422)
    assert ["body", "unified_social_credit_code"] in error_locs(body)
    assert "check character" in body["detail"]
    # The same on self-registration.
    resp = await client.post("/v1/providers", json=provider_body(unified_social_credit_code=bad))
    assert mentions_field(assert_problem(resp, 422), "unified_social_credit_code")
    assert await count_providers(db) == before


@pytest.mark.parametrize(
    "code",
    [
        "91330108MA2H2XWL3",  # 17 characters
        "91330108MA2H2XWL3TX",  # 19 characters
        "91330108MA2H2XWLIT",  # I is not in the alphabet
        "",
    ],
)
async def test_malformed_credit_codes_are_422(client: AsyncClient, db: Database, code: str) -> None:
    before = await count_providers(db)
    resp = await client.post(
        "/v1/providers", json=provider_body(unified_social_credit_code=code), headers=OPERATOR
    )
    assert mentions_field(assert_problem(resp, 422), "unified_social_credit_code")
    assert await count_providers(db) == before


async def test_lowercase_credit_code_is_normalised(client: AsyncClient) -> None:
    code = make_credit_code("330108", 10 * 31**8 + 12345)  # body starts with "A"
    assert code != code.lower()
    resp = await client.post(
        "/v1/providers",
        json=provider_body(unified_social_credit_code=code.lower()),
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["unified_social_credit_code"] == code
    again = await client.post(
        "/v1/providers", json=provider_body(unified_social_credit_code=code), headers=OPERATOR
    )
    assert_problem(again, 409)


@pytest.mark.parametrize(
    "region", ["33010", "3301080", "3301ab", "990108", "", "33O108", "330199", "330100"]
)
async def test_malformed_region_code_is_422(client: AsyncClient, db: Database, region: str) -> None:
    before = await count_providers(db)
    resp = await client.post(
        "/v1/providers", json=provider_body(region_code=region), headers=OPERATOR
    )
    assert ["body", "region_code"] in error_locs(assert_problem(resp, 422))
    assert await count_providers(db) == before


async def test_unknown_kind_and_blank_name_are_422(client: AsyncClient) -> None:
    resp = await client.post("/v1/providers", json=provider_body(kind="bank"), headers=OPERATOR)
    assert mentions_field(assert_problem(resp, 422), "kind")
    resp = await client.post("/v1/providers", json=provider_body(name="   "), headers=OPERATOR)
    assert mentions_field(assert_problem(resp, 422), "name")


async def test_duplicate_credit_code_is_409(client: AsyncClient, db: Database) -> None:
    code = credit_code()
    first = await client.post(
        "/v1/providers", json=provider_body(unified_social_credit_code=code), headers=OPERATOR
    )
    assert first.status_code == 201
    before = await count_providers(db)
    again = await client.post(
        "/v1/providers",
        json=provider_body(unified_social_credit_code=code, name="Another"),
        headers=OPERATOR,
    )
    assert_problem(again, 409)
    selfreg = await client.post(
        "/v1/providers", json=provider_body(unified_social_credit_code=code)
    )
    assert_problem(selfreg, 409)
    assert await count_providers(db) == before


async def test_self_registration_is_pending_with_a_working_key(
    client: AsyncClient, db: Database
) -> None:
    resp = await client.post("/v1/providers", json=provider_body())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "pending"
    assert body["api_key"]
    key = bearer(body["api_key"])

    me = await client.get(f"/v1/providers/{body['id']}", headers=key)
    assert me.status_code == 200
    assert me.json()["id"] == body["id"]
    assert "api_key" not in me.json()
    mine = await client.get("/v1/providers", headers=key)
    assert [p["id"] for p in mine.json()["items"]] == [body["id"]]

    async with db.sessionmaker() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.provider_id == body["id"]))
        assert row is not None
        assert row.role == "provider"
        assert row.key_hash != body["api_key"]


async def test_self_registration_cannot_choose_its_status(
    client: AsyncClient, db: Database
) -> None:
    before = await count_providers(db)
    keys_before = await count(db, ApiKey)
    for status in ("listed", "pending"):
        resp = await client.post("/v1/providers", json=provider_body(status=status))
        assert ["body", "status"] in error_locs(assert_problem(resp, 422))
    assert await count_providers(db) == before
    assert await count(db, ApiKey) == keys_before


async def test_a_provider_key_cannot_create_providers(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    before = await count_providers(db)
    resp = await client.post(
        "/v1/providers", json=provider_body(), headers=bearer(provider["api_key"])
    )
    assert_problem(resp, 403)
    bad_key = await client.post(
        "/v1/providers", json=provider_body(), headers=bearer("cm_not_a_real_key")
    )
    assert_problem(bad_key, 401)
    assert await count_providers(db) == before


async def test_another_provider_sees_404(client: AsyncClient) -> None:
    mine = await create_provider(client)
    theirs = await create_provider(client)
    key = bearer(mine["api_key"])
    path = f"/v1/providers/{theirs['id']}"
    assert_problem(await client.get(path, headers=key), 404)
    assert_problem(await client.patch(path, json={"name": "Mine now"}, headers=key), 404)
    assert_problem(await client.get(f"{path}/listings", headers=key), 404)
    unchanged = await client.get(path, headers=OPERATOR)
    assert unchanged.json()["name"] == theirs["name"]
    listed = await client.get("/v1/providers", headers=key)
    assert theirs["id"] not in {p["id"] for p in listed.json()["items"]}
    assert_problem(await client.get("/v1/providers/prv_nope", headers=OPERATOR), 404)


async def test_provider_patches_itself_but_not_status_or_listings(
    client: AsyncClient, db: Database
) -> None:
    provider = await create_provider(client, status="pending")
    key = bearer(provider["api_key"])
    path = f"/v1/providers/{provider['id']}"

    ok = await client.patch(
        path,
        json={"name": "Renamed", "region_code": "330106", "kind": "matchmaking_partner"},
        headers=key,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "Renamed"
    assert ok.json()["region_code"] == "330106"
    assert ok.json()["kind"] == "matchmaking_partner"

    for body in (
        {"status": "listed"},
        {"listings": [{"list": "hz-planned-icc", "since": "2025-01-01"}]},
        {"unified_social_credit_code": credit_code()},
        {"name": "x", "status": "listed"},
    ):
        resp = await client.patch(path, json=body, headers=key)
        problem = assert_problem(resp, 422)
        assert mentions_field(problem, next(k for k in body if k != "name"))

    assert_problem(await client.post(f"{path}/status", json={"status": "listed"}, headers=key), 403)
    grant = await client.post(
        f"{path}/listings",
        json={"list": "hz-planned-icc", "since": "2025-01-01", "until": None, "reference": "me"},
        headers=key,
    )
    assert_problem(grant, 403)

    after = (await client.get(path, headers=key)).json()
    assert after["status"] == "pending"
    assert after["listings"] == []
    assert after["name"] == "Renamed"


async def test_patch_validates_and_honours_if_match(client: AsyncClient) -> None:
    provider = await create_provider(client)
    path = f"/v1/providers/{provider['id']}"
    etag = (await client.get(path, headers=OPERATOR)).headers["etag"]

    assert mentions_field(
        assert_problem(
            await client.patch(path, json={"region_code": "12345"}, headers=OPERATOR), 422
        ),
        "region_code",
    )
    ok = await client.patch(path, json={"name": "First"}, headers={**OPERATOR, "If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] != etag

    stale = await client.patch(
        path, json={"name": "Second"}, headers={**OPERATOR, "If-Match": etag}
    )
    assert_problem(stale, 412)
    assert (await client.get(path, headers=OPERATOR)).json()["name"] == "First"

    fresh = await client.patch(
        path, json={"name": "Third"}, headers={**OPERATOR, "If-Match": ok.headers["etag"]}
    )
    assert fresh.status_code == 200
    assert fresh.json()["name"] == "Third"


# The status machine of domain.md.
LEGAL_PATHS = [
    ["listed"],
    ["rejected"],
    ["delisted"],
    ["listed", "suspended"],
    ["listed", "suspended", "listed"],
    ["listed", "suspended", "delisted"],
    ["listed", "delisted"],
    ["rejected", "delisted"],
]


@pytest.mark.parametrize("path", LEGAL_PATHS, ids=["-".join(p) for p in LEGAL_PATHS])
async def test_every_legal_transition_works(client: AsyncClient, path: list[str]) -> None:
    provider = await create_provider(client, status="pending")
    url = f"/v1/providers/{provider['id']}/status"
    etag = None
    for status in path:
        resp = await client.post(url, json={"status": status, "reason": "review"}, headers=OPERATOR)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == status
        assert resp.headers["etag"] != etag
        etag = resp.headers["etag"]
    got = await client.get(f"/v1/providers/{provider['id']}", headers=OPERATOR)
    assert got.json()["status"] == path[-1]


ILLEGAL = [
    ([], "pending"),
    ([], "suspended"),
    (["listed"], "listed"),
    (["listed"], "pending"),
    (["listed"], "rejected"),
    (["listed", "suspended"], "suspended"),
    (["listed", "suspended"], "pending"),
    (["rejected"], "listed"),
    (["rejected"], "pending"),
    (["delisted"], "listed"),
    (["delisted"], "pending"),
    (["delisted"], "delisted"),
    (["listed", "delisted"], "suspended"),
]


@pytest.mark.parametrize(
    ("setup", "target"), ILLEGAL, ids=[f"{'-'.join(s) or 'pending'}->{t}" for s, t in ILLEGAL]
)
async def test_illegal_transitions_are_409(
    client: AsyncClient, db: Database, setup: list[str], target: str
) -> None:
    provider = await create_provider(client, status="pending")
    url = f"/v1/providers/{provider['id']}/status"
    for status in setup:
        assert (
            await client.post(url, json={"status": status}, headers=OPERATOR)
        ).status_code == 200
    current = setup[-1] if setup else "pending"
    problem = assert_problem(await client.post(url, json={"status": target}, headers=OPERATOR), 409)
    assert current in problem["detail"]
    async with db.sessionmaker() as session:
        row = await session.get(Provider, provider["id"])
        assert row is not None
        assert row.status == current


async def test_status_change_validates_its_body(client: AsyncClient) -> None:
    provider = await create_provider(client, status="pending")
    url = f"/v1/providers/{provider['id']}/status"
    assert mentions_field(
        assert_problem(await client.post(url, json={"status": "archived"}, headers=OPERATOR), 422),
        "status",
    )
    assert_problem(
        await client.post(
            "/v1/providers/prv_nope/status", json={"status": "listed"}, headers=OPERATOR
        ),
        404,
    )


async def test_list_providers_filters(client: AsyncClient) -> None:
    listed = await create_provider(client, status="listed", region_code="330108")
    pending = await create_provider(client, status="pending", region_code="310101")
    partner = await create_provider(client, kind="matchmaking_partner", region_code="330106")

    def ids(resp: Any) -> set[str]:
        assert resp.status_code == 200, resp.text
        return {p["id"] for p in resp.json()["items"]}

    got = ids(await client.get("/v1/providers", params={"status": "pending"}, headers=OPERATOR))
    assert pending["id"] in got
    assert listed["id"] not in got
    got = ids(await client.get("/v1/providers", params={"region_prefix": "3301"}, headers=OPERATOR))
    assert {listed["id"], partner["id"]} <= got
    assert pending["id"] not in got
    got = ids(
        await client.get("/v1/providers", params={"kind": "matchmaking_partner"}, headers=OPERATOR)
    )
    assert partner["id"] in got
    assert listed["id"] not in got
    assert_problem(
        await client.get("/v1/providers", params={"region_prefix": "33%"}, headers=OPERATOR), 422
    )
