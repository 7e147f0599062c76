"""The accelerator catalog: seeded, readable by any key, kept by the operator."""

from typing import Any

import pytest
from httpx import AsyncClient

from app.core.db import Database
from app.models import Accelerator
from tests.factories import OPERATOR, bearer, create_offer, create_provider
from tests.helpers import assert_problem, count, mentions_field, walk_pages


def new_accelerator(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "testvendor-x1",
        "vendor": "TestVendor",
        "model": "X1",
        "domestic": True,
        "memory_gb": 96,
        "bf16_tflops": 400.0,
        "source": "test datasheet",
    }
    body.update(overrides)
    return body


async def test_seeded_catalog_has_both_kinds(client: AsyncClient) -> None:
    items = await walk_pages(client, "/v1/accelerators", OPERATOR, limit=7)
    by_id = {item["id"]: item for item in items}
    assert len(items) == len(by_id) >= 20
    ascend = by_id["huawei-ascend-910b"]
    assert ascend["domestic"] is True
    assert ascend["vendor"] == "Huawei"
    assert ascend["memory_gb"] > 0
    assert ascend["bf16_tflops"] > 0
    assert ascend["source"]
    nvidia = [item for item in items if item["id"].startswith("nvidia-")]
    assert len(nvidia) >= 3
    assert all(item["domestic"] is False for item in nvidia)


async def test_any_key_reads_the_catalog(client: AsyncClient) -> None:
    provider = await create_provider(client)
    resp = await client.get(
        "/v1/accelerators/huawei-ascend-910b", headers=bearer(provider["api_key"])
    )
    assert resp.status_code == 200
    assert resp.json()["domestic"] is True
    assert resp.headers["etag"]
    assert_problem(await client.get("/v1/accelerators/huawei-ascend-910b"), 401)
    assert_problem(await client.get("/v1/accelerators/no-such-chip", headers=OPERATOR), 404)


@pytest.mark.parametrize("domestic", [True, False])
async def test_filter_by_domestic(client: AsyncClient, domestic: bool) -> None:
    items = await walk_pages(
        client, "/v1/accelerators", OPERATOR, domestic=str(domestic).lower(), limit=500
    )
    assert items
    assert all(item["domestic"] is domestic for item in items)
    ids = {item["id"] for item in items}
    assert ("huawei-ascend-910b" in ids) is domestic
    assert ("nvidia-h100-sxm" in ids) is not domestic


async def test_filter_by_vendor(client: AsyncClient) -> None:
    items = await walk_pages(client, "/v1/accelerators", OPERATOR, vendor="NVIDIA")
    assert items
    assert all(item["vendor"] == "NVIDIA" for item in items)


async def test_operator_adds_an_accelerator(client: AsyncClient, db: Database) -> None:
    resp = await client.post("/v1/accelerators", json=new_accelerator(), headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    assert resp.headers["etag"]
    assert resp.json()["domestic"] is True
    got = await client.get("/v1/accelerators/testvendor-x1", headers=OPERATOR)
    assert got.json()["model"] == "X1"
    assert got.headers["etag"] == resp.headers["etag"]

    before = await count(db, Accelerator)
    assert_problem(
        await client.post("/v1/accelerators", json=new_accelerator(), headers=OPERATOR), 409
    )
    assert await count(db, Accelerator) == before


@pytest.mark.parametrize(
    "overrides",
    [
        {"id": "Bad Slug"},
        {"memory_gb": 0},
        {"bf16_tflops": -1},
        {"vendor": ""},
        {"surprise": 1},
        # Found by schemathesis: lax parsing took these for a boolean and numbers.
        {"domestic": 0},
        {"memory_gb": "80"},
        {"bf16_tflops": "312.5"},
    ],
)
async def test_invalid_accelerator_is_422(
    client: AsyncClient, db: Database, overrides: dict[str, Any]
) -> None:
    before = await count(db, Accelerator)
    resp = await client.post(
        "/v1/accelerators", json=new_accelerator(**overrides), headers=OPERATOR
    )
    body = assert_problem(resp, 422)
    assert mentions_field(body, next(iter(overrides)))
    assert await count(db, Accelerator) == before


async def test_provider_cannot_write_the_catalog(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    before = await count(db, Accelerator)
    assert_problem(await client.post("/v1/accelerators", json=new_accelerator(), headers=key), 403)
    assert await count(db, Accelerator) == before
    patch = await client.patch(
        "/v1/accelerators/huawei-ascend-910b", json={"domestic": False}, headers=key
    )
    assert_problem(patch, 403)
    got = await client.get("/v1/accelerators/huawei-ascend-910b", headers=key)
    assert got.json()["domestic"] is True


async def test_patch_honours_if_match(client: AsyncClient) -> None:
    path = "/v1/accelerators/nvidia-h20"
    first = await client.get(path, headers=OPERATOR)
    etag = first.headers["etag"]

    ok = await client.patch(
        path, json={"source": "corrected"}, headers={**OPERATOR, "If-Match": etag}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["source"] == "corrected"
    new_etag = ok.headers["etag"]
    assert new_etag != etag

    stale = await client.patch(
        path, json={"source": "again"}, headers={**OPERATOR, "If-Match": etag}
    )
    assert_problem(stale, 412)
    assert (await client.get(path, headers=OPERATOR)).json()["source"] == "corrected"

    weak = await client.patch(
        path, json={"memory_gb": 96}, headers={**OPERATOR, "If-Match": f"W/{new_etag}"}
    )
    assert weak.status_code == 200, weak.text
    assert weak.json()["memory_gb"] == 96

    unknown = await client.patch(path, json={"colour": "green"}, headers=OPERATOR)
    assert mentions_field(assert_problem(unknown, 422), "colour")
    assert_problem(
        await client.patch("/v1/accelerators/no-such-chip", json={"source": "x"}, headers=OPERATOR),
        404,
    )


async def test_patch_domestic_reflags_existing_offers(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, accelerator_id="nvidia-h20")
    other = await create_offer(client, provider, accelerator_id="huawei-ascend-910b")
    assert offer["domestic"] is False
    key = bearer(provider["api_key"])
    etag_before = (await client.get(f"/v1/offers/{offer['id']}", headers=key)).headers["etag"]

    resp = await client.patch(
        "/v1/accelerators/nvidia-h20", json={"domestic": True}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["domestic"] is True

    reread = await client.get(f"/v1/offers/{offer['id']}", headers=key)
    assert reread.json()["domestic"] is True
    # The offer changed, so a client holding the old ETag must not overwrite it blindly.
    assert reread.headers["etag"] != etag_before
    found = await client.get(
        "/v1/offers", params={"domestic": "true", "accelerator_id": "nvidia-h20"}, headers=key
    )
    assert [item["id"] for item in found.json()["items"]] == [offer["id"]]
    untouched = await client.get(f"/v1/offers/{other['id']}", headers=key)
    assert untouched.json()["domestic"] is True

    # The provider may now declare the corrected flag, and not the old one.
    agree = await client.post(
        "/v1/offers",
        json={**_body_for("nvidia-h20"), "domestic": True},
        headers=key,
    )
    assert agree.status_code == 201, agree.text
    disagree = await client.post(
        "/v1/offers", json={**_body_for("nvidia-h20"), "domestic": False}, headers=key
    )
    assert mentions_field(assert_problem(disagree, 422), "domestic")


def _body_for(accelerator_id: str) -> dict[str, Any]:
    from tests.factories import offer_body

    return offer_body(accelerator_id=accelerator_id)
