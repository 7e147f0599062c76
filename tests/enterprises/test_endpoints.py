"""Enterprises: registration, visibility, updates with If-Match, cap relaxations, audit."""

from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select

from app.core.db import Database
from app.core.timeutil import today_shanghai
from app.core.validators import make_credit_code
from app.models import AuditEntry, CapRelaxation, Enterprise
from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_provider,
    create_request,
    credit_code,
)

HZ_CITY = "hz-city-compute-2024"  # cap 8,000,000.00, relaxable for foundation-model enterprises
ZJ_PROVINCE = "zj-province-compute-2025"  # not relaxable
FILED = {
    "filing_number": "Zhejiang-Model-2024-0001",
    "name": "West Lake LLM",
    "filed_on": "2024-05-01",
}


def problem(resp: Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body["errors"]]


async def count_rows(db: Database, model: Any, *where: Any) -> int:
    async with db.sessionmaker() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(await session.scalar(stmt) or 0)


async def audit_actions(db: Database, resource_id: str) -> list[str]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.resource_id == resource_id)
            .order_by(AuditEntry.id)
        )
        return list(rows)


def new_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Hangzhou Model Works",
        "unified_social_credit_code": credit_code("330108"),
        "region_code": "330108",
        "filed_models": [],
    }
    body.update(overrides)
    return body


# --------------------------------------------------------------------------- create


async def test_operator_creates_an_enterprise(client: AsyncClient, db: Database) -> None:
    body = new_body(is_foundation_model_enterprise=True, filed_models=[FILED])
    resp = await client.post("/v1/enterprises", json=body, headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["id"].startswith("ent_")
    assert created["name"] == body["name"]
    assert created["unified_social_credit_code"] == body["unified_social_credit_code"]
    assert created["region_code"] == "330108"
    assert created["is_foundation_model_enterprise"] is True
    assert created["filed_models"] == [FILED]
    assert created["relaxed_caps"] == {}
    assert created["api_key"] is None
    assert created["created_at"]
    assert created["updated_at"]
    assert resp.headers["etag"]
    assert await audit_actions(db, created["id"]) == ["enterprise.created"]


async def test_foundation_flag_defaults_to_false(client: AsyncClient) -> None:
    resp = await client.post("/v1/enterprises", json=new_body(), headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    assert resp.json()["is_foundation_model_enterprise"] is False


async def test_credit_code_is_normalised_to_upper_case(client: AsyncClient) -> None:
    code = make_credit_code("330106", 10**12)  # 9133010615APDCNA4X: has letters
    resp = await client.post(
        "/v1/enterprises",
        json=new_body(unified_social_credit_code=f"  {code.lower()} "),
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["unified_social_credit_code"] == code


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unified_social_credit_code": "91330108MA2H2XWL3"}, "unified_social_credit_code"),
        ({"unified_social_credit_code": "91330108MA2H2XWL3X"}, "unified_social_credit_code"),
        ({"unified_social_credit_code": "not-a-code"}, "unified_social_credit_code"),
        ({"region_code": "33010"}, "region_code"),
        ({"region_code": "990108"}, "region_code"),
        ({"region_code": "330199"}, "region_code"),
        ({"region_code": "ABCDEF"}, "region_code"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"nickname": "extra"}, "nickname"),
        ({"filed_models": [{**FILED, "filing_number": ""}]}, "filing_number"),
        ({"filed_models": [{**FILED, "filing_number": "x" * 101}]}, "filing_number"),
        ({"filed_models": [{**FILED, "filed_on": 1714521600}]}, "filed_on"),
        ({"filed_models": [{**FILED, "filed_on": "2024-02-30"}]}, "filed_on"),
        ({"filed_models": [{**FILED, "extra": 1}]}, "extra"),
        ({"filed_models": [FILED, {**FILED, "name": "Other"}]}, "filed_models"),
        ({"is_foundation_model_enterprise": "yes"}, "is_foundation_model_enterprise"),
    ],
)
async def test_bad_input_is_422_and_stores_nothing(
    client: AsyncClient, db: Database, overrides: dict[str, Any], field: str
) -> None:
    resp = await client.post("/v1/enterprises", json=new_body(**overrides), headers=OPERATOR)
    body = problem(resp, 422)
    assert any(field in [str(p) for p in loc] for loc in locs(body)), body
    assert await count_rows(db, Enterprise) == 0


async def test_filing_date_in_the_future_is_refused(client: AsyncClient, db: Database) -> None:
    tomorrow = (today_shanghai() + timedelta(days=1)).isoformat()
    resp = await client.post(
        "/v1/enterprises",
        json=new_body(filed_models=[{**FILED, "filed_on": tomorrow}]),
        headers=OPERATOR,
    )
    assert "future" in problem(resp, 422)["detail"]
    assert await count_rows(db, Enterprise) == 0


async def test_duplicate_credit_code_is_409(client: AsyncClient, db: Database) -> None:
    body = new_body()
    assert (await client.post("/v1/enterprises", json=body, headers=OPERATOR)).status_code == 201
    again = await client.post("/v1/enterprises", json={**body, "name": "Other"}, headers=OPERATOR)
    assert body["unified_social_credit_code"] in problem(again, 409)["detail"]
    assert await count_rows(db, Enterprise) == 1


async def test_enterprise_and_provider_keys_may_not_create(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    provider = await create_provider(client)
    for key in (enterprise["api_key"], provider["api_key"]):
        resp = await client.post("/v1/enterprises", json=new_body(), headers=bearer(key))
        problem(resp, 403)


async def test_unknown_key_is_401(client: AsyncClient) -> None:
    problem(await client.get("/v1/enterprises", headers=bearer("cm_nope")), 401)
    problem(await client.get("/v1/enterprises"), 401)


# --------------------------------------------------------------------------- self-registration


async def test_self_registration_returns_a_working_key_that_sees_only_itself(
    client: AsyncClient, db: Database
) -> None:
    other = await create_enterprise(client)
    resp = await client.post("/v1/enterprises", json=new_body(filed_models=[FILED]))
    assert resp.status_code == 201, resp.text
    me = resp.json()
    assert me["api_key"].startswith("cm_")
    assert me["is_foundation_model_enterprise"] is False
    key = bearer(me["api_key"])

    mine = await client.get(f"/v1/enterprises/{me['id']}", headers=key)
    assert mine.status_code == 200, mine.text
    assert "api_key" not in mine.json()
    listed = await client.get("/v1/enterprises", headers=key)
    assert [e["id"] for e in listed.json()["items"]] == [me["id"]]
    problem(await client.get(f"/v1/enterprises/{other['id']}", headers=key), 404)

    audit = await audit_actions(db, me["id"])
    assert audit == ["enterprise.created"]
    async with db.sessionmaker() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.resource_id == me["id"]))
        assert entry is not None
        assert entry.principal_role == "anonymous"


@pytest.mark.parametrize("flag", [True, False])
async def test_self_registration_may_not_set_the_foundation_flag(
    client: AsyncClient, db: Database, flag: bool
) -> None:
    resp = await client.post("/v1/enterprises", json=new_body(is_foundation_model_enterprise=flag))
    body = problem(resp, 422)
    assert "only by the operator" in body["detail"]
    assert locs(body) == [["body", "is_foundation_model_enterprise"]]
    assert await count_rows(db, Enterprise) == 0


# --------------------------------------------------------------------------- reading


async def test_operator_lists_all_with_pagination(client: AsyncClient) -> None:
    made = [await create_enterprise(client) for _ in range(3)]
    first = await client.get("/v1/enterprises", params={"limit": 2}, headers=OPERATOR)
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    second = await client.get(
        "/v1/enterprises", params={"limit": 2, "cursor": page["next_cursor"]}, headers=OPERATOR
    )
    rest = second.json()
    assert rest["next_cursor"] is None
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in made]


async def test_list_filters(client: AsyncClient) -> None:
    binjiang = await create_enterprise(client, region_code="330108")
    ningbo = await create_enterprise(
        client, region_code="330203", is_foundation_model_enterprise=True
    )
    by_city = await client.get(
        "/v1/enterprises", params={"region_prefix": "3301"}, headers=OPERATOR
    )
    assert [e["id"] for e in by_city.json()["items"]] == [binjiang["id"]]
    foundation = await client.get(
        "/v1/enterprises", params={"is_foundation_model_enterprise": "true"}, headers=OPERATOR
    )
    assert [e["id"] for e in foundation.json()["items"]] == [ningbo["id"]]


async def test_provider_key_sees_no_enterprise(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    listed = await client.get("/v1/enterprises", headers=key)
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None}
    problem(await client.get(f"/v1/enterprises/{enterprise['id']}", headers=key), 404)


async def test_enterprise_cannot_read_another_enterprise(client: AsyncClient) -> None:
    mine = await create_enterprise(client)
    theirs = await create_enterprise(client)
    key = bearer(mine["api_key"])
    hidden = problem(await client.get(f"/v1/enterprises/{theirs['id']}", headers=key), 404)
    missing = problem(await client.get("/v1/enterprises/ent_missing", headers=key), 404)
    # Someone else's enterprise and a missing one answer alike.
    assert hidden["title"] == missing["title"]


async def test_missing_enterprise_is_404_for_the_operator(client: AsyncClient) -> None:
    problem(await client.get("/v1/enterprises/ent_missing", headers=OPERATOR), 404)


# --------------------------------------------------------------------------- updates


async def test_enterprise_updates_itself_and_the_etag_moves(
    client: AsyncClient, db: Database
) -> None:
    enterprise = await create_enterprise(client)
    key = bearer(enterprise["api_key"])
    read = await client.get(f"/v1/enterprises/{enterprise['id']}", headers=key)
    etag = read.headers["etag"]
    resp = await client.patch(
        f"/v1/enterprises/{enterprise['id']}",
        json={"name": "Renamed", "region_code": "330106", "filed_models": [FILED]},
        headers={**key, "If-Match": etag},
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["name"] == "Renamed"
    assert updated["region_code"] == "330106"
    assert updated["filed_models"] == [FILED]
    assert resp.headers["etag"] != etag
    assert (await audit_actions(db, enterprise["id"]))[-1] == "enterprise.updated"


async def test_stale_if_match_is_412_and_changes_nothing(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    path = f"/v1/enterprises/{enterprise['id']}"
    stale = (await client.get(path, headers=OPERATOR)).headers["etag"]
    first = await client.patch(
        path, json={"name": "First"}, headers={**OPERATOR, "If-Match": stale}
    )
    assert first.status_code == 200, first.text
    second = await client.patch(
        path, json={"name": "Second"}, headers={**OPERATOR, "If-Match": stale}
    )
    problem(second, 412)
    assert (await client.get(path, headers=OPERATOR)).json()["name"] == "First"
    fresh = await client.patch(
        path, json={"name": "Third"}, headers={**OPERATOR, "If-Match": first.headers["etag"]}
    )
    assert fresh.status_code == 200, fresh.text


async def test_enterprise_may_not_patch_its_foundation_flag(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    path = f"/v1/enterprises/{enterprise['id']}"
    resp = await client.patch(
        path,
        json={"name": "Sneaky", "is_foundation_model_enterprise": True},
        headers=bearer(enterprise["api_key"]),
    )
    assert "only by the operator" in problem(resp, 422)["detail"]
    after = (await client.get(path, headers=OPERATOR)).json()
    assert after["is_foundation_model_enterprise"] is False
    assert after["name"] == enterprise["name"]


async def test_operator_sets_the_foundation_flag(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.patch(
        f"/v1/enterprises/{enterprise['id']}",
        json={"is_foundation_model_enterprise": True},
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["is_foundation_model_enterprise"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"unified_social_credit_code": "91330108MA2H2XWL3T"},
        {"region_code": "3301"},
        {"filed_models": [FILED, FILED]},
        {"status": "listed"},
    ],
)
async def test_bad_patch_is_422(client: AsyncClient, body: dict[str, Any]) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.patch(
        f"/v1/enterprises/{enterprise['id']}", json=body, headers=bearer(enterprise["api_key"])
    )
    problem(resp, 422)


async def test_enterprise_cannot_patch_another(client: AsyncClient) -> None:
    mine = await create_enterprise(client)
    theirs = await create_enterprise(client)
    resp = await client.patch(
        f"/v1/enterprises/{theirs['id']}",
        json={"name": "Mine now"},
        headers=bearer(mine["api_key"]),
    )
    problem(resp, 404)


async def test_a_filed_model_an_open_request_relies_on_cannot_be_removed(
    client: AsyncClient,
) -> None:
    enterprise = await create_enterprise(client, filed_models=[FILED])
    request = await create_request(
        client, enterprise, purpose="maas", filed_model=FILED["filing_number"]
    )
    path = f"/v1/enterprises/{enterprise['id']}"
    key = bearer(enterprise["api_key"])
    refused = await client.patch(path, json={"filed_models": []}, headers=key)
    assert FILED["filing_number"] in problem(refused, 409)["detail"]
    await client.delete(f"/v1/compute-requests/{request['id']}", headers=key)
    allowed = await client.patch(path, json={"filed_models": []}, headers=key)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["filed_models"] == []


# --------------------------------------------------------------------------- cap relaxations


def relaxation_path(enterprise: dict[str, Any], program_id: str = HZ_CITY) -> str:
    return f"/v1/enterprises/{enterprise['id']}/cap-relaxations/{program_id}"


async def test_operator_grants_lists_replaces_and_revokes_a_relaxation(
    client: AsyncClient, db: Database
) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    before_etag = (
        await client.get(f"/v1/enterprises/{enterprise['id']}", headers=OPERATOR)
    ).headers["etag"]
    resp = await client.put(
        relaxation_path(enterprise),
        json={"annual_cap": "20000000.00", "reference": "杭数资〔2025〕3号"},
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text
    granted = resp.json()
    assert granted["program_id"] == HZ_CITY
    assert granted["enterprise_id"] == enterprise["id"]
    assert granted["annual_cap"] == "20000000.00"
    assert granted["reference"] == "杭数资〔2025〕3号"

    read = await client.get(f"/v1/enterprises/{enterprise['id']}", headers=OPERATOR)
    assert read.json()["relaxed_caps"] == {HZ_CITY: "20000000.00"}
    assert read.headers["etag"] != before_etag
    # The enterprise sees its own relaxed caps on itself.
    own = await client.get(
        f"/v1/enterprises/{enterprise['id']}", headers=bearer(enterprise["api_key"])
    )
    assert own.json()["relaxed_caps"] == {HZ_CITY: "20000000.00"}

    listed = await client.get(
        f"/v1/enterprises/{enterprise['id']}/cap-relaxations", headers=OPERATOR
    )
    assert [r["program_id"] for r in listed.json()["items"]] == [HZ_CITY]

    replaced = await client.put(
        relaxation_path(enterprise), json={"annual_cap": "12000000"}, headers=OPERATOR
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["annual_cap"] == "12000000.00"
    assert replaced.json()["reference"] is None
    assert await count_rows(db, CapRelaxation) == 1

    revoked = await client.delete(relaxation_path(enterprise), headers=OPERATOR)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["annual_cap"] == "12000000.00"
    after = await client.get(f"/v1/enterprises/{enterprise['id']}", headers=OPERATOR)
    assert after.json()["relaxed_caps"] == {}
    problem(await client.delete(relaxation_path(enterprise), headers=OPERATOR), 404)

    assert (await audit_actions(db, enterprise["id"]))[-3:] == [
        "cap_relaxation.granted",
        "cap_relaxation.granted",
        "cap_relaxation.revoked",
    ]


async def test_relaxation_of_a_program_that_is_not_relaxable_is_422(
    client: AsyncClient, db: Database
) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    resp = await client.put(
        relaxation_path(enterprise, ZJ_PROVINCE),
        json={"annual_cap": "20000000.00"},
        headers=OPERATOR,
    )
    assert "does not allow cap relaxation" in problem(resp, 422)["detail"]
    assert await count_rows(db, CapRelaxation) == 0


async def test_relaxation_of_an_unknown_program_is_422(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    resp = await client.put(
        relaxation_path(enterprise, "no-such-program"),
        json={"annual_cap": "20000000.00"},
        headers=OPERATOR,
    )
    assert locs(problem(resp, 422)) == [["path", "program_id"]]


async def test_relaxation_for_an_enterprise_that_is_not_foundation_is_409(
    client: AsyncClient, db: Database
) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.put(
        relaxation_path(enterprise), json={"annual_cap": "20000000.00"}, headers=OPERATOR
    )
    assert "not a foundation-model enterprise" in problem(resp, 409)["detail"]
    assert await count_rows(db, CapRelaxation) == 0


@pytest.mark.parametrize("cap", ["8000000.00", "7999999.99", "0"])
async def test_relaxed_cap_must_exceed_the_program_cap(
    client: AsyncClient, db: Database, cap: str
) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    resp = await client.put(relaxation_path(enterprise), json={"annual_cap": cap}, headers=OPERATOR)
    body = problem(resp, 422)
    assert locs(body) == [["body", "annual_cap"]]
    assert "8000000.00" in body["detail"]
    assert await count_rows(db, CapRelaxation) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"annual_cap": 20000000.5},
        {"annual_cap": "-1.00"},
        {"annual_cap": "1.001"},
        {},
        {"annual_cap": "20000000.00", "note": "extra"},
    ],
)
async def test_bad_relaxation_body_is_422(client: AsyncClient, body: dict[str, Any]) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    problem(await client.put(relaxation_path(enterprise), json=body, headers=OPERATOR), 422)


async def test_enterprise_key_may_not_manage_relaxations(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    key = bearer(enterprise["api_key"])
    body = {"annual_cap": "20000000.00"}
    problem(await client.put(relaxation_path(enterprise), json=body, headers=key), 403)
    problem(await client.delete(relaxation_path(enterprise), headers=key), 403)
    problem(
        await client.get(f"/v1/enterprises/{enterprise['id']}/cap-relaxations", headers=key), 403
    )


async def test_relaxation_for_a_missing_enterprise_is_404(client: AsyncClient) -> None:
    resp = await client.put(
        "/v1/enterprises/ent_missing/cap-relaxations/" + HZ_CITY,
        json={"annual_cap": "20000000.00"},
        headers=OPERATOR,
    )
    problem(resp, 404)


async def test_foundation_flag_cannot_be_dropped_while_a_relaxation_stands(
    client: AsyncClient,
) -> None:
    enterprise = await create_enterprise(client, is_foundation_model_enterprise=True)
    await client.put(
        relaxation_path(enterprise), json={"annual_cap": "20000000.00"}, headers=OPERATOR
    )
    path = f"/v1/enterprises/{enterprise['id']}"
    resp = await client.patch(
        path, json={"is_foundation_model_enterprise": False}, headers=OPERATOR
    )
    assert HZ_CITY in problem(resp, 409)["detail"]
    await client.delete(relaxation_path(enterprise), headers=OPERATOR)
    resp = await client.patch(
        path, json={"is_foundation_model_enterprise": False}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text


async def test_national_level_credit_code_is_accepted(client: AsyncClient) -> None:
    # A national-level registration code (positions 3-8 = 100000) is accepted too.
    body = new_body(unified_social_credit_code="911000001000013428")
    assert (await client.post("/v1/enterprises", json=body, headers=OPERATOR)).status_code == 201
    body = new_body(unified_social_credit_code=make_credit_code("330106", 99))
    assert (await client.post("/v1/enterprises", json=body, headers=OPERATOR)).status_code == 201
