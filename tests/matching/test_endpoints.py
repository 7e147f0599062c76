"""Matching through the API: constraints, windows, ranking by net price, splits."""

from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from app.matching import service as matching_service
from tests.factories import (
    OPERATOR,
    T0,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.subsidies.test_endpoints import district_program


async def matches(
    client: AsyncClient, enterprise: dict[str, Any], request: dict[str, Any], limit: int = 10
) -> list[dict[str, Any]]:
    resp = await client.get(
        f"/v1/compute-requests/{request['id']}/matches?limit={limit}",
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_the_voucher_reverses_the_sticker_price_order(client: AsyncClient) -> None:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    domestic = await create_offer(
        client, provider, accelerator_id="huawei-ascend-910b", price_per_card_hour="12.00"
    )
    foreign = await create_offer(
        client, provider, accelerator_id="nvidia-h20", price_per_card_hour="8.00"
    )
    enterprise = await create_enterprise(client, region_code="330108")
    request = await create_request(client, enterprise, cards=8, hours=100)
    found = await matches(client, enterprise, request)
    assert [m["offer_id"] for m in found] == [domestic["id"], foreign["id"]]
    # 12.00 with 60% off (4.80) beats 8.00 with 30% off (5.60).
    assert found[0]["net_price_per_card_hour"] == "4.80"
    assert found[1]["net_price_per_card_hour"] == "5.60"
    assert found[0]["subsidy"]["rate"] == "0.60"
    # Outside Binjiang (Shanghai) no voucher applies and the sticker price decides.
    shanghai = await create_enterprise(client, region_code="310115")
    request = await create_request(client, shanghai, cards=8, hours=100)
    assert [m["offer_id"] for m in await matches(client, shanghai, request)] == [
        foreign["id"],
        domestic["id"],
    ]


async def test_unlisted_and_suspended_providers_are_never_matched(client: AsyncClient) -> None:
    listed = await create_provider(client)
    pending = await create_provider(client, status="pending")
    suspended = await create_provider(client)
    ok = await create_offer(client, listed)
    await create_offer(client, pending)
    await create_offer(client, suspended)
    resp = await client.post(
        f"/v1/providers/{suspended['id']}/status", json={"status": "suspended"}, headers=OPERATOR
    )
    assert resp.status_code == 200
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise)
    assert [m["offer_id"] for m in await matches(client, enterprise, request)] == [ok["id"]]


async def test_domestic_required_and_constraints(client: AsyncClient) -> None:
    provider = await create_provider(client)
    ascend = await create_offer(
        client, provider, accelerator_id="huawei-ascend-910b", price_per_card_hour="20.00"
    )
    h100 = await create_offer(
        client,
        provider,
        accelerator_id="nvidia-h100-sxm",
        price_per_card_hour="10.00",
        region_code="330106",
    )
    await create_offer(
        client,
        provider,
        accelerator_id="nvidia-h20",
        price_per_card_hour="5.00",
        workloads=["inference"],
    )
    await create_offer(
        client, provider, accelerator_id="nvidia-l20", price_per_card_hour="3.00", min_hours=1000
    )
    enterprise = await create_enterprise(client, region_code="310115")
    required = await create_request(client, enterprise, domestic="required")
    assert [m["offer_id"] for m in await matches(client, enterprise, required)] == [ascend["id"]]
    # training excludes the inference-only H20; 720 h excludes min_hours 1000.
    anything = await create_request(client, enterprise)
    assert [m["offer_id"] for m in await matches(client, enterprise, anything)] == [
        h100["id"],
        ascend["id"],
    ]
    memory = await create_request(client, enterprise, min_memory_gb=80, region_prefixes=["330106"])
    assert [m["offer_id"] for m in await matches(client, enterprise, memory)] == [h100["id"]]


async def test_windows_outside_availability_or_full_are_refused(client: AsyncClient) -> None:
    provider = await create_provider(client)
    later = await create_offer(
        client,
        provider,
        cards_total=8,
        available_from=(T0 + timedelta(days=60)).isoformat(),
        available_until=(T0 + timedelta(days=120)).isoformat(),
    )
    enterprise = await create_enterprise(client)
    early = await create_request(
        client, enterprise, cards=8, hours=24, latest_start=(T0 + timedelta(days=30)).isoformat()
    )
    assert await matches(client, enterprise, early) == []
    fits = await create_request(
        client, enterprise, cards=8, hours=24, latest_start=(T0 + timedelta(days=61)).isoformat()
    )
    found = await matches(client, enterprise, fits)
    assert found[0]["offer_id"] == later["id"]
    assert found[0]["start"].startswith((T0 + timedelta(days=60)).date().isoformat())
    # Fill the only window that request can use, then it has no match.
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": fits["id"], "offer_id": later["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    order = await client.post(
        "/v1/orders", json={"quote_id": quote.json()["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert order.status_code == 201, order.text
    same = await create_request(
        client, enterprise, cards=1, hours=24, latest_start=(T0 + timedelta(days=60)).isoformat()
    )
    assert await matches(client, enterprise, same) == []
    # A later start in the window moves past the hold.
    wider = await create_request(
        client, enterprise, cards=1, hours=24, latest_start=(T0 + timedelta(days=62)).isoformat()
    )
    moved = await matches(client, enterprise, wider)
    assert moved[0]["start"].startswith((T0 + timedelta(days=61)).date().isoformat())


async def test_a_split_shares_the_enterprise_cap_across_parts(client: AsyncClient) -> None:
    created = await client.post(
        "/v1/subsidy-programs",
        json=district_program(
            enterprise_annual_cap="1000.00",
            effective_from="2024-01-01",
            effective_until="2030-12-31",
        ),
        headers=OPERATOR,
    )
    assert created.status_code == 201, created.text
    a = await create_provider(client, lists=("hz-planned-icc",), region_code="330106")
    b = await create_provider(client, lists=("hz-planned-icc",), region_code="330106")
    first = await create_offer(
        client, a, accelerator_id="nvidia-h20", cards_total=4, price_per_card_hour="9.50"
    )
    second = await create_offer(
        client, b, accelerator_id="nvidia-h20", cards_total=4, price_per_card_hour="9.50"
    )
    enterprise = await create_enterprise(client, region_code="330106")
    request = await create_request(client, enterprise, cards=8, hours=100, allow_split=True)
    found = await matches(client, enterprise, request)
    assert len(found) == 1
    split = found[0]
    assert split["offer_id"] is None
    assert {p["offer_id"] for p in split["parts"]} == {first["id"], second["id"]}
    one, two = split["parts"]
    # Each part: 4 × 100 × 9.50 = 3,800.00. The first takes the whole 1,000.00 cap of
    # the district program; the second can only use the city's 20% (760.00).
    assert one["subsidy"] == {
        "program_id": "xihu-compute-2026",
        "rate": "0.40",
        "amount": "1000.00",
        "base": "contract_amount",
        "capped_by": "enterprise_cap",
    }
    assert two["subsidy"]["program_id"] == "hz-city-compute-2024"
    assert two["subsidy"]["amount"] == "760.00"
    assert split["gross_amount"] == "7600.00"
    assert split["subsidy"]["amount"] == "1760.00"
    assert split["net_amount"] == "5840.00"

    quote = await client.post(
        "/v1/quotes",
        json={
            "request_id": request["id"],
            "parts": [{"offer_id": p["offer_id"], "cards": p["cards"]} for p in split["parts"]],
        },
        headers=bearer(enterprise["api_key"]),
    )
    assert quote.status_code == 201, quote.text
    order = await client.post(
        "/v1/orders", json={"quote_id": quote.json()["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert order.status_code == 201, order.text
    assert order.json()["offer_id"] is None
    assert len(order.json()["parts"]) == 2
    usage = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage", headers=bearer(enterprise["api_key"])
    )
    xihu = next(i for i in usage.json()["items"] if i["program_id"] == "xihu-compute-2026")
    assert xihu["reserved"] == "1000.00"
    assert xihu["remaining"] == "0.00"


async def test_an_enterprise_cannot_see_or_match_anothers_request(client: AsyncClient) -> None:
    owner = await create_enterprise(client)
    other = await create_enterprise(client)
    request = await create_request(client, owner)
    resp = await client.get(
        f"/v1/compute-requests/{request['id']}/matches", headers=bearer(other["api_key"])
    )
    assert resp.status_code == 404
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": "off_x"},
        headers=bearer(other["api_key"]),
    )
    assert quote.status_code == 404
    assert (
        await client.get(f"/v1/compute-requests/{request['id']}/matches", headers=OPERATOR)
    ).status_code == 200


async def test_match_limit_and_ranking_are_stable(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offers = [await create_offer(client, provider, price_per_card_hour="10.00") for _ in range(5)]
    enterprise = await create_enterprise(client, region_code="310115")
    request = await create_request(client, enterprise)
    found = await matches(client, enterprise, request, limit=3)
    assert [m["offer_id"] for m in found] == sorted(o["id"] for o in offers)[:3]
    bad = await client.get(
        f"/v1/compute-requests/{request['id']}/matches?limit=0",
        headers=bearer(enterprise["api_key"]),
    )
    assert bad.status_code == 422


async def test_candidates_are_paged_past_the_first_page(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two: the top 3 need a second page, which must start after the first
    # (the keyset bound compared in fen, as stored), never over again.
    monkeypatch.setattr(matching_service, "PAGE", 2)
    provider = await create_provider(client)
    prices = ["10.00", "11.50", "12.25", "13.00", "14.75"]
    offers = [await create_offer(client, provider, price_per_card_hour=p) for p in prices]
    enterprise = await create_enterprise(client, region_code="310115")
    request = await create_request(client, enterprise)
    found = await matches(client, enterprise, request, limit=3)
    assert [m["offer_id"] for m in found] == [o["id"] for o in offers[:3]]
    found = await matches(client, enterprise, request, limit=10)
    assert [m["offer_id"] for m in found] == [o["id"] for o in offers]


async def test_a_match_never_starts_before_it_is_computed(client: AsyncClient) -> None:
    from datetime import UTC, datetime

    provider = await create_provider(client)
    now = datetime.now(UTC)
    offer = await create_offer(
        client, provider, available_from=(now - timedelta(days=10)).isoformat()
    )
    enterprise = await create_enterprise(client)
    # A window that began three days ago and closes tomorrow.
    request = await create_request(
        client,
        enterprise,
        hours=10,
        earliest_start=(now - timedelta(days=3)).isoformat(),
        latest_start=(now + timedelta(days=1)).isoformat(),
    )
    before = datetime.now(UTC)
    [found] = await matches(client, enterprise, request)
    after = datetime.now(UTC)
    assert found["offer_id"] == offer["id"]
    start = datetime.fromisoformat(found["start"])
    # The next whole hour from the moment it was computed.
    assert (start.minute, start.second, start.microsecond) == (0, 0, 0)
    assert before - timedelta(hours=1) < start - timedelta(hours=1) <= after
    assert start >= before


async def test_a_request_whose_window_has_passed_is_422(client: AsyncClient) -> None:
    from datetime import UTC, datetime

    enterprise = await create_enterprise(client)
    now = datetime.now(UTC)
    resp = await client.post(
        "/v1/compute-requests",
        json={
            "cards": 1,
            "hours": 1,
            "earliest_start": (now - timedelta(days=8)).isoformat(),
            "latest_start": (now - timedelta(days=7)).isoformat(),
            "purpose": "training",
        },
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 422, resp.text
    assert [e["loc"] for e in resp.json()["errors"]] == [["body", "latest_start"]]
    assert "has passed" in resp.json()["errors"][0]["msg"]


async def test_min_memory_gb_zero_means_no_minimum(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider)
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise, min_memory_gb=0)
    assert request["min_memory_gb"] == 0
    assert [m["offer_id"] for m in await matches(client, enterprise, request)] == [offer["id"]]


async def test_at_an_equal_net_price_free_trial_hours_then_migration_support_rank_first(
    client: AsyncClient,
) -> None:
    provider = await create_provider(client)
    # Created in this order, so the offer id alone would rank them as created.
    plain = await create_offer(client, provider)
    migration = await create_offer(client, provider, free_migration_support=True)
    trial = await create_offer(client, provider, free_trial_hours=24)
    both = await create_offer(client, provider, free_trial_hours=24, free_migration_support=True)
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise)
    found = await matches(client, enterprise, request)
    assert len({m["net_amount"] for m in found}) == 1
    assert [m["offer_id"] for m in found] == [both["id"], trial["id"], migration["id"], plain["id"]]
