"""Comparison across chips: the catalog's perf_index, effective card-hours, rank_by."""

from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from migrations.seed.accelerators import ACCELERATORS
from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.helpers import assert_problem, walk_pages
from tests.matching.test_endpoints import matches


async def test_the_seeded_index_is_a_vendor_figure_ratio_to_the_a100(client: AsyncClient) -> None:
    catalog = {a["id"]: a for a in await walk_pages(client, "/v1/accelerators", OPERATOR)}
    a100 = catalog["nvidia-a100-sxm-80gb"]
    assert a100["perf_index"] == {"training": "1.00", "inference": "1.00"}
    assert (a100["fp16_tflops"], a100["int8_tops"], a100["memory_bandwidth_gbps"]) == (
        312.0,
        624.0,
        2039.0,
    )
    # 989.5 / 312 = 3.1714…; 313 / 312 = 1.0032…
    assert catalog["nvidia-h100-sxm"]["perf_index"]["training"] == "3.17"
    assert catalog["huawei-ascend-910b"]["perf_index"]["inference"] == "1.00"
    for seed in ACCELERATORS:
        row = catalog[seed["id"]]
        assert row["perf_source"].startswith("vendor figure, no benchmark"), row
        expected = (Decimal(seed["bf16_tflops"]) / 312).quantize(Decimal("0.01"))
        assert abs(Decimal(row["perf_index"]["training"]) - expected) <= Decimal("0.01")
    # A figure nobody published stays null.
    assert catalog["amd-mi300x"]["fp16_tflops"] is None
    assert catalog["huawei-ascend-910b"]["memory_bandwidth_gbps"] is None


async def test_an_index_needs_its_source_and_can_be_cleared(client: AsyncClient) -> None:
    body = {
        "id": "test-chip-x1",
        "vendor": "Test",
        "model": "X1",
        "domestic": True,
        "memory_gb": 64,
        "bf16_tflops": 200.0,
        "source": "test",
        "perf_index": {"training": "0.64"},
    }
    assert_problem(await client.post("/v1/accelerators", json=body, headers=OPERATOR), 422)
    bad = {**body, "perf_source": "x", "perf_index": {"training": "0.0"}}
    assert_problem(await client.post("/v1/accelerators", json=bad, headers=OPERATOR), 422)
    zero = {**body, "perf_source": "x", "perf_index": {"training": "0.00"}}
    assert_problem(await client.post("/v1/accelerators", json=zero, headers=OPERATOR), 422)
    made = await client.post(
        "/v1/accelerators", json={**body, "perf_source": "MLPerf v4.0 (test)"}, headers=OPERATOR
    )
    assert made.status_code == 201, made.text
    assert made.json()["perf_index"] == {"training": "0.64", "inference": None}
    cleared = await client.patch(
        "/v1/accelerators/test-chip-x1",
        json={"perf_index": None, "perf_source": None},
        headers=OPERATOR,
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["perf_index"], cleared.json()["perf_source"]) == (None, None)
    # An index without a source is refused on update too.
    again = await client.patch(
        "/v1/accelerators/test-chip-x1", json={"perf_index": {"training": "1.00"}}, headers=OPERATOR
    )
    assert_problem(again, 422)


async def _fleet(client: AsyncClient) -> dict[str, Any]:
    provider = await create_provider(client)
    return {
        "a100": await create_offer(
            client, provider, accelerator_id="nvidia-a100-sxm-80gb", price_per_card_hour="10.00"
        ),
        "h100": await create_offer(
            client, provider, accelerator_id="nvidia-h100-sxm", price_per_card_hour="25.00"
        ),
        "l20": await create_offer(
            client, provider, accelerator_id="nvidia-l20", price_per_card_hour="4.00"
        ),
    }


async def test_matches_carry_effective_card_hours(client: AsyncClient) -> None:
    fleet = await _fleet(client)
    enterprise = await create_enterprise(client, region_code="310115")  # no voucher
    request = await create_request(client, enterprise, cards=8, hours=100)
    found = {m["offer_id"]: m for m in await matches(client, enterprise, request)}
    h100 = found[fleet["h100"]["id"]]
    # 8 × 100 × 3.17 = 2536.00; 20000.00 / 2536 = 7.886… → 7.89
    assert h100["effective_card_hours"] == "2536.00"
    assert h100["net_per_effective_card_hour"] == "7.89"
    a100 = found[fleet["a100"]["id"]]
    assert (a100["effective_card_hours"], a100["net_per_effective_card_hour"]) == (
        "800.00",
        "10.00",
    )


async def test_rank_by_net_per_effective_card_hour(client: AsyncClient) -> None:
    fleet = await _fleet(client)
    enterprise = await create_enterprise(client, region_code="310115")
    by_net = await create_request(client, enterprise, cards=8, hours=100)
    assert [m["offer_id"] for m in await matches(client, enterprise, by_net)] == [
        fleet[n]["id"] for n in ("l20", "a100", "h100")
    ]
    # L20: 4.00 / 0.38 = 10.53; A100 10.00; H100 7.89.
    ranked = await create_request(
        client, enterprise, cards=8, hours=100, rank_by="net_per_effective_card_hour"
    )
    assert ranked["rank_by"] == "net_per_effective_card_hour"
    found = await matches(client, enterprise, ranked)
    assert [m["offer_id"] for m in found] == [fleet[n]["id"] for n in ("h100", "a100", "l20")]
    assert [m["net_per_effective_card_hour"] for m in found] == ["7.89", "10.00", "10.53"]
    # A model without an index comes last, however cheap.
    resp = await client.patch(
        "/v1/accelerators/nvidia-a100-sxm-80gb",
        json={"perf_index": None, "perf_source": None},
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text
    found = await matches(client, enterprise, ranked)
    assert [m["offer_id"] for m in found] == [fleet[n]["id"] for n in ("h100", "l20", "a100")]
    assert found[-1]["net_per_effective_card_hour"] is None
    assert found[-1]["effective_card_hours"] is None
    # A quote keeps the figures of its match.
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": ranked["id"], "offer_id": fleet["h100"]["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    assert quote.status_code == 201, quote.text
    assert quote.json()["net_per_effective_card_hour"] == "7.89"


async def test_rank_by_keeps_to_k_and_to_the_request_models(client: AsyncClient) -> None:
    fleet = await _fleet(client)
    enterprise = await create_enterprise(client, region_code="310115")
    ranked = await create_request(
        client,
        enterprise,
        rank_by="net_per_effective_card_hour",
        accelerator_ids=["nvidia-a100-sxm-80gb", "nvidia-l20"],
    )
    found = await matches(client, enterprise, ranked, limit=1)
    assert [m["offer_id"] for m in found] == [fleet["a100"]["id"]]
    bad = await client.post(
        "/v1/compute-requests",
        json={**ranked, "rank_by": "cheapest"},
        headers=bearer(enterprise["api_key"]),
    )
    assert_problem(bad, 422)
