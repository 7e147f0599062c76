"""Compute requests: who may post, validation, visibility, cancelling, the open-request cap."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select

from app.core.db import Database
from app.models import AuditEntry, ComputeRequest
from tests.factories import (
    OPERATOR,
    T0,
    bearer,
    create_enterprise,
    create_provider,
    create_request,
    request_body,
)

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


async def count_requests(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ComputeRequest)) or 0)


async def post(client: AsyncClient, enterprise: dict[str, Any], **overrides: Any) -> Response:
    return await client.post(
        "/v1/compute-requests",
        json=request_body(**overrides),
        headers=bearer(enterprise["api_key"]),
    )


# --------------------------------------------------------------------------- create


async def test_enterprise_posts_a_request(client: AsyncClient, db: Database) -> None:
    enterprise = await create_enterprise(client)
    # Midnight in Shanghai, the day after T0's: 16:00 UTC of T0's day.
    day1 = (T0 + timedelta(days=1)).date().isoformat()
    day15 = (T0 + timedelta(days=15)).date().isoformat()
    resp = await post(
        client,
        enterprise,
        accelerator_ids=["huawei-ascend-910b", "nvidia-h20"],
        min_memory_gb=64,
        domestic="preferred",
        cards=64,
        hours=720,
        earliest_start=f"{day1}T00:00:00+08:00",
        latest_start=f"{day15}T00:00:00+08:00",
        max_net_budget="250000.5",
        region_prefixes=["33", "3301"],
        allow_split=True,
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["id"].startswith("req_")
    assert made["enterprise_id"] == enterprise["id"]
    assert made["status"] == "open"
    assert made["accelerator_ids"] == ["huawei-ascend-910b", "nvidia-h20"]
    assert made["min_memory_gb"] == 64
    assert made["domestic"] == "preferred"
    assert (made["cards"], made["hours"]) == (64, 720)
    assert made["purpose"] == "training"
    assert made["filed_model"] is None
    assert made["relies_on_filed_model"] is False
    assert made["max_net_budget"] == "250000.50"
    assert made["region_prefixes"] == ["33", "3301"]
    assert made["allow_split"] is True
    assert made["created_at"]
    # Instants come back in UTC, the same instant as sent.
    assert made["earliest_start"].startswith(f"{T0.date().isoformat()}T16:00:00")
    assert made["latest_start"].startswith(
        f"{(T0 + timedelta(days=14)).date().isoformat()}T16:00:00"
    )

    read = await client.get(f"/v1/compute-requests/{made['id']}", headers=OPERATOR)
    assert read.json() == made
    async with db.sessionmaker() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.resource_id == made["id"])
            )
        )
    assert actions == ["compute_request.created"]


async def test_defaults(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.post(
        "/v1/compute-requests",
        json={
            "cards": 1,
            "hours": 1,
            "earliest_start": T0.isoformat(),
            "latest_start": T0.isoformat(),
            "purpose": "inference",
        },
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["accelerator_ids"] == []
    assert made["domestic"] == "any"
    assert made["min_memory_gb"] is None
    assert made["max_net_budget"] is None
    assert made["region_prefixes"] == []
    assert made["allow_split"] is False


@pytest.mark.parametrize("purpose", ["maas", "agent"])
async def test_maas_and_agent_rely_on_a_filed_model(client: AsyncClient, purpose: str) -> None:
    enterprise = await create_enterprise(client, filed_models=[FILED])
    made = await create_request(
        client, enterprise, purpose=purpose, filed_model=FILED["filing_number"]
    )
    assert made["filed_model"] == FILED["filing_number"]
    assert made["relies_on_filed_model"] is True
    without = await create_request(client, enterprise, purpose=purpose)
    assert without["relies_on_filed_model"] is False


async def test_filed_model_of_another_enterprise_is_422(client: AsyncClient, db: Database) -> None:
    await create_enterprise(client, filed_models=[FILED])
    mine = await create_enterprise(client)
    resp = await post(client, mine, purpose="maas", filed_model=FILED["filing_number"])
    body = problem(resp, 422)
    assert locs(body) == [["body", "filed_model"]]
    assert "not one of" in body["detail"]
    assert await count_requests(db) == 0


@pytest.mark.parametrize("purpose", ["training", "inference", "application"])
async def test_filed_model_with_another_purpose_is_422(
    client: AsyncClient, db: Database, purpose: str
) -> None:
    enterprise = await create_enterprise(client, filed_models=[FILED])
    resp = await post(client, enterprise, purpose=purpose, filed_model=FILED["filing_number"])
    body = problem(resp, 422)
    assert locs(body) == [["body", "filed_model"]]
    assert "only for the maas and agent purposes" in body["detail"]
    assert await count_requests(db) == 0


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"cards": 0}, ["body", "cards"]),
        ({"cards": 100_001}, ["body", "cards"]),
        ({"hours": 0}, ["body", "hours"]),
        ({"hours": 8760 * 3 + 1}, ["body", "hours"]),
        ({"latest_start": (T0 - timedelta(seconds=1)).isoformat()}, ["body", "latest_start"]),
        # A window that has passed (domain.md, "Compute requests").
        (
            {
                "earliest_start": (T0 - timedelta(days=30)).isoformat(),
                "latest_start": (T0 - timedelta(days=3)).isoformat(),
            },
            ["body", "latest_start"],
        ),
        ({"latest_start": (T0 + timedelta(days=367)).isoformat()}, ["body", "latest_start"]),
        ({"earliest_start": "2026-03-01T00:00:00"}, ["body", "earliest_start"]),
        ({"latest_start": "2026-03-20T00:00:00"}, ["body", "latest_start"]),
        ({"earliest_start": "next tuesday"}, ["body", "earliest_start"]),
        (
            {"accelerator_ids": ["huawei-ascend-910b", "no-such-chip"]},
            ["body", "accelerator_ids", 1],
        ),
        ({"accelerator_ids": ["nvidia-h20", "nvidia-h20"]}, ["body", "accelerator_ids"]),
        ({"accelerator_ids": [""]}, ["body", "accelerator_ids", 0]),
        ({"min_memory_gb": -1}, ["body", "min_memory_gb"]),
        ({"domestic": "sometimes"}, ["body", "domestic"]),
        ({"purpose": "mining"}, ["body", "purpose"]),
        ({"max_net_budget": 1000.5}, ["body", "max_net_budget"]),
        ({"max_net_budget": "-1"}, ["body", "max_net_budget"]),
        ({"region_prefixes": ["331"]}, ["body", "region_prefixes", 0]),
        ({"region_prefixes": ["3301", "3399"]}, ["body", "region_prefixes", 1]),
        ({"region_prefixes": ["33", "33"]}, ["body", "region_prefixes"]),
        ({"region_prefixes": [f"33{i:02d}" for i in range(21)]}, ["body", "region_prefixes"]),
        ({"allow_split": "yes"}, ["body", "allow_split"]),
        ({"filed_model": "x" * 101, "purpose": "maas"}, ["body", "filed_model"]),
        ({"colour": "blue"}, ["body", "colour"]),
    ],
)
async def test_invalid_request_is_422_and_stores_nothing(
    client: AsyncClient, db: Database, overrides: dict[str, Any], loc: list[Any]
) -> None:
    enterprise = await create_enterprise(client)
    body = problem(await post(client, enterprise, **overrides), 422)
    assert loc in locs(body), body
    assert await count_requests(db) == 0


async def test_unknown_accelerator_names_its_index(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    resp = await post(client, enterprise, accelerator_ids=["nvidia-h20", "tpu-v5"])
    body = problem(resp, 422)
    assert body["errors"] == [
        {"loc": ["body", "accelerator_ids", 1], "msg": body["errors"][0]["msg"]}
    ]
    assert "tpu-v5" in body["detail"]


async def test_latest_start_may_equal_earliest_and_the_window_may_be_366_days(
    client: AsyncClient,
) -> None:
    enterprise = await create_enterprise(client)
    await create_request(client, enterprise, latest_start=T0.isoformat())
    await create_request(client, enterprise, latest_start=(T0 + timedelta(days=366)).isoformat())


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (
            {"accelerator_ids": ["nvidia-h20", "nvidia-a100-sxm-80gb"], "domestic": "required"},
            "domestic",
        ),
        ({"accelerator_ids": ["huawei-ascend-910b4"], "min_memory_gb": 64}, "64 GB"),
    ],
)
async def test_a_request_none_of_its_accelerators_can_serve_is_422(
    client: AsyncClient, overrides: dict[str, Any], said: str
) -> None:
    enterprise = await create_enterprise(client)
    body = problem(await post(client, enterprise, **overrides), 422)
    assert said in body["detail"]
    # One fitting accelerator among several is enough.
    fine = await post(
        client, enterprise, **{**overrides, "accelerator_ids": ["huawei-ascend-910c"]}
    )
    assert fine.status_code == 201, fine.text


async def test_operator_posts_for_a_named_enterprise(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.post(
        "/v1/compute-requests", json=request_body(enterprise_id=enterprise["id"]), headers=OPERATOR
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["enterprise_id"] == enterprise["id"]


async def test_operator_must_name_an_existing_enterprise(client: AsyncClient, db: Database) -> None:
    missing = await client.post("/v1/compute-requests", json=request_body(), headers=OPERATOR)
    assert locs(problem(missing, 422)) == [["body", "enterprise_id"]]
    unknown = await client.post(
        "/v1/compute-requests", json=request_body(enterprise_id="ent_nope"), headers=OPERATOR
    )
    assert locs(problem(unknown, 422)) == [["body", "enterprise_id"]]
    assert await count_requests(db) == 0


async def test_enterprise_cannot_post_for_another(client: AsyncClient, db: Database) -> None:
    mine = await create_enterprise(client)
    theirs = await create_enterprise(client)
    problem(await post(client, mine, enterprise_id=theirs["id"]), 403)
    own = await post(client, mine, enterprise_id=mine["id"])
    assert own.status_code == 201, own.text
    assert await count_requests(db) == 1


async def test_provider_key_may_not_post_or_list(client: AsyncClient, db: Database) -> None:
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise)
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    problem(await client.post("/v1/compute-requests", json=request_body(), headers=key), 403)
    problem(await client.get("/v1/compute-requests", headers=key), 403)
    problem(await client.get(f"/v1/compute-requests/{request['id']}", headers=key), 404)
    problem(await client.delete(f"/v1/compute-requests/{request['id']}", headers=key), 404)
    assert await count_requests(db) == 1


async def test_no_key_is_401(client: AsyncClient) -> None:
    problem(await client.post("/v1/compute-requests", json=request_body()), 401)
    problem(await client.get("/v1/compute-requests"), 401)


async def test_idempotent_create(client: AsyncClient, db: Database) -> None:
    enterprise = await create_enterprise(client)
    headers = {**bearer(enterprise["api_key"]), "Idempotency-Key": "req-1"}
    first = await client.post("/v1/compute-requests", json=request_body(), headers=headers)
    again = await client.post("/v1/compute-requests", json=request_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert await count_requests(db) == 1


# --------------------------------------------------------------------------- open-request cap


async def test_open_requests_are_capped_per_enterprise(
    app: FastAPI, client: AsyncClient, db: Database
) -> None:
    app.state.settings.max_open_requests_per_enterprise = 2
    enterprise = await create_enterprise(client)
    other = await create_enterprise(client)
    first = await create_request(client, enterprise)
    await create_request(client, enterprise)
    refused = problem(await post(client, enterprise), 409)
    assert "open compute requests" in refused["detail"]
    # Another enterprise has its own allowance; a cancelled request frees a place.
    await create_request(client, other)
    key = bearer(enterprise["api_key"])
    assert (
        await client.delete(f"/v1/compute-requests/{first['id']}", headers=key)
    ).status_code == 200
    await create_request(client, enterprise)
    assert await count_requests(db) == 4


# --------------------------------------------------------------------------- reading


async def test_enterprise_lists_only_its_own(client: AsyncClient) -> None:
    mine = await create_enterprise(client)
    theirs = await create_enterprise(client)
    own = [await create_request(client, mine) for _ in range(2)]
    await create_request(client, theirs)
    listed = await client.get("/v1/compute-requests", headers=bearer(mine["api_key"]))
    assert [r["id"] for r in listed.json()["items"]] == [r["id"] for r in own]
    # Naming another enterprise does not widen the view.
    snooping = await client.get(
        "/v1/compute-requests",
        params={"enterprise_id": theirs["id"]},
        headers=bearer(mine["api_key"]),
    )
    assert snooping.json()["items"] == []


async def test_operator_lists_all_and_filters(client: AsyncClient) -> None:
    one = await create_enterprise(client)
    two = await create_enterprise(client)
    a = await create_request(client, one)
    b = await create_request(client, two)
    c = await create_request(client, two)
    await client.delete(f"/v1/compute-requests/{c['id']}", headers=OPERATOR)

    everything = await client.get("/v1/compute-requests", headers=OPERATOR)
    assert [r["id"] for r in everything.json()["items"]] == [a["id"], b["id"], c["id"]]
    of_two = await client.get(
        "/v1/compute-requests", params={"enterprise_id": two["id"]}, headers=OPERATOR
    )
    assert [r["id"] for r in of_two.json()["items"]] == [b["id"], c["id"]]
    open_ones = await client.get(
        "/v1/compute-requests", params={"status": "open"}, headers=OPERATOR
    )
    assert [r["id"] for r in open_ones.json()["items"]] == [a["id"], b["id"]]
    paged = await client.get("/v1/compute-requests", params={"limit": 2}, headers=OPERATOR)
    assert len(paged.json()["items"]) == 2
    assert paged.json()["next_cursor"]
    problem(
        await client.get("/v1/compute-requests", params={"status": "done"}, headers=OPERATOR), 422
    )


async def test_enterprise_cannot_see_or_cancel_anothers_request(
    client: AsyncClient,
) -> None:
    mine = await create_enterprise(client)
    theirs = await create_enterprise(client)
    request = await create_request(client, theirs)
    key = bearer(mine["api_key"])
    hidden = problem(await client.get(f"/v1/compute-requests/{request['id']}", headers=key), 404)
    missing = problem(await client.get("/v1/compute-requests/req_missing", headers=key), 404)
    assert hidden["title"] == missing["title"]
    problem(await client.delete(f"/v1/compute-requests/{request['id']}", headers=key), 404)
    still = await client.get(
        f"/v1/compute-requests/{request['id']}", headers=bearer(theirs["api_key"])
    )
    assert still.json()["status"] == "open"


# --------------------------------------------------------------------------- cancelling


async def test_cancel_then_cancel_again_is_409(client: AsyncClient, db: Database) -> None:
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise)
    key = bearer(enterprise["api_key"])
    path = f"/v1/compute-requests/{request['id']}"
    cancelled = await client.delete(path, headers=key)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["id"] == request["id"]
    assert "already cancelled" in problem(await client.delete(path, headers=key), 409)["detail"]
    assert (await client.get(path, headers=key)).json()["status"] == "cancelled"
    async with db.sessionmaker() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.resource_id == request["id"])
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["compute_request.created", "compute_request.cancelled"]


async def test_operator_cancels_any_request(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise)
    resp = await client.delete(f"/v1/compute-requests/{request['id']}", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled"


async def test_cancel_missing_request_is_404(client: AsyncClient) -> None:
    problem(await client.delete("/v1/compute-requests/req_missing", headers=OPERATOR), 404)
