"""Offer search: node, network and software facts, sorts with stable cursors, free cards."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.registry.helpers import assert_problem, mentions_field, walk_pages

# A future day, whole hours: windows here never start in the past.
DAY0 = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
FAR = DAY0 + timedelta(days=200)

NODE = {
    "cards_per_node": 8,
    "interconnect": "hccs",
    "network": "roce",
    "network_gbps": 200,
    "software": [{"stack": "cann", "version": "8.0.RC3"}],
}


def _window(**overrides: Any) -> dict[str, Any]:
    body = {"available_from": DAY0.isoformat(), "available_until": FAR.isoformat()}
    body.update(overrides)
    return body


async def test_node_network_and_software_are_stored_and_shown(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, **NODE)
    for key, value in NODE.items():
        assert offer[key] == value
    read = await client.get(f"/v1/offers/{offer['id']}", headers=bearer(provider["api_key"]))
    assert {k: read.json()[k] for k in NODE} == NODE
    # An offer that says nothing of them has nulls and no software.
    bare = await create_offer(client, provider)
    assert [bare[k] for k in NODE] == [None, None, None, None, []]


async def test_patch_changes_and_clears_node_facts(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, **NODE)
    headers = bearer(provider["api_key"])
    resp = await client.patch(
        f"/v1/offers/{offer['id']}",
        json={"network": None, "network_gbps": None, "software": [], "cards_per_node": 16},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["network"], body["network_gbps"], body["software"]) == (None, None, [])
    assert (body["cards_per_node"], body["interconnect"]) == (16, "hccs")
    # Cleared software no longer matches a software filter.
    found = await walk_pages(client, "/v1/offers", headers, software_stack="cann")
    assert offer["id"] not in {o["id"] for o in found}


@pytest.mark.parametrize(
    "field",
    [
        {"interconnect": "infinity-fabric"},
        {"network": "carrier-pigeon"},
        {"cards_per_node": 0},
        {"cards_per_node": "8"},
        {"network_gbps": -1},
        {"software": [{"stack": "opencl", "version": "3"}]},
        {"software": [{"stack": "cuda"}]},
        {"software": [{"stack": "cuda", "version": ""}]},
        {"software": [{"stack": "cuda", "version": "12.4"}, {"stack": "cuda", "version": "12.4"}]},
        {"software": [{"stack": "cuda", "version": "12.4", "extra": 1}]},
    ],
)
async def test_bad_node_facts_are_422(client: AsyncClient, field: dict[str, Any]) -> None:
    provider = await create_provider(client)
    resp = await client.post(
        "/v1/offers",
        json={
            "external_id": "x",
            "accelerator_id": "huawei-ascend-910b",
            "cards_total": 8,
            "price_per_card_hour": "10.00",
            "region_code": "330108",
            **_window(),
            **field,
        },
        headers=bearer(provider["api_key"]),
    )
    body = assert_problem(resp, 422)
    assert mentions_field(body, next(iter(field)))


async def test_sync_carries_node_facts_and_an_unchanged_resync_is_unchanged(
    client: AsyncClient,
) -> None:
    provider = await create_provider(client)
    item = {
        "external_id": "pool-1",
        "accelerator_id": "nvidia-h20",
        "cards_total": 16,
        "price_per_card_hour": "9.00",
        "region_code": "330108",
        **_window(),
        **NODE,
        "interconnect": "nvlink",
        "software": [{"stack": "cuda", "version": "12.4"}, {"stack": "other", "version": "1"}],
    }
    path = f"/v1/providers/{provider['id']}/offers:sync"
    headers = bearer(provider["api_key"])
    first = await client.put(path, json={"offers": [item]}, headers=headers)
    assert first.json()["created"] == 1
    again = await client.put(path, json={"offers": [item]}, headers=headers)
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (
        0,
        0,
        1,
    )
    changed = {**item, "network": "infiniband", "network_gbps": 400}
    third = await client.put(path, json={"offers": [changed]}, headers=headers)
    assert third.json()["updated"] == 1
    [offer] = await walk_pages(client, "/v1/offers", headers, provider_id=provider["id"])
    assert (offer["network"], offer["network_gbps"]) == ("infiniband", 400)
    assert offer["software"] == item["software"]


@pytest.fixture
async def nodes(client: AsyncClient) -> dict[str, Any]:
    provider = await create_provider(client)
    offers = {
        "ascend": await create_offer(
            client,
            provider,
            cards_per_node=8,
            interconnect="hccs",
            network="roce",
            software=[{"stack": "cann", "version": "8.0"}],
        ),
        "h20": await create_offer(
            client,
            provider,
            accelerator_id="nvidia-h20",
            cards_per_node=8,
            interconnect="nvlink",
            network="infiniband",
            software=[{"stack": "cuda", "version": "12.4"}],
        ),
        "l20": await create_offer(
            client,
            provider,
            accelerator_id="nvidia-l20",
            cards_per_node=4,
            interconnect="pcie",
            network="ethernet",
            software=[{"stack": "cuda", "version": "12.2"}, {"stack": "other", "version": "2"}],
        ),
        "dcu": await create_offer(
            client,
            provider,
            accelerator_id="hygon-dcu-k100",
            software=[{"stack": "dtk", "version": "24.04"}],
        ),
        "bare": await create_offer(client, provider),
    }
    return {"provider": provider, "offers": offers}


NODE_SEARCHES: list[tuple[list[tuple[str, str]], set[str]]] = [
    ([("cards_per_node", "8")], {"ascend", "h20"}),
    ([("cards_per_node", "4")], {"ascend", "h20", "l20"}),
    ([("cards_per_node", "9")], set()),
    ([("interconnect", "nvlink")], {"h20"}),
    ([("network", "roce")], {"ascend"}),
    ([("software_stack", "cuda")], {"h20", "l20"}),
    ([("software_stack", "cann"), ("software_stack", "dtk")], {"ascend", "dcu"}),
    ([("software_stack", "other")], {"l20"}),
    ([("software_stack", "bang")], set()),
    ([("software_stack", "cuda"), ("network", "ethernet")], {"l20"}),
]


@pytest.mark.parametrize(
    ("params", "expected"), NODE_SEARCHES, ids=[str(p) for p, _ in NODE_SEARCHES]
)
async def test_node_filters(
    client: AsyncClient,
    nodes: dict[str, Any],
    params: list[tuple[str, str]],
    expected: set[str],
) -> None:
    resp = await client.get(
        "/v1/offers",
        params=[*params, ("provider_id", nodes["provider"]["id"])],
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text
    ids = {o["id"] for o in resp.json()["items"]}
    assert ids == {nodes["offers"][name]["id"] for name in expected}


@pytest.mark.parametrize(
    "params",
    [
        {"cards_per_node": "0"},
        {"interconnect": "ethernet"},
        {"network": "nvlink"},
        {"software_stack": "opencl"},
        {"sort": "price"},
        {"sort": "free_cards"},
        {"min_free_cards": "1"},
        {"free_from": DAY0.isoformat()},
        {"free_until": DAY0.isoformat()},
        {"free_from": DAY0.isoformat(), "free_until": DAY0.isoformat()},
        {"free_from": "2027-01-01T00:00:00", "free_until": "2027-01-02T00:00:00+00:00"},
        {"cursor": "bm90IGEgY3Vyc29y"},
    ],
)
async def test_bad_search_parameters_are_422(client: AsyncClient, params: dict[str, str]) -> None:
    body = assert_problem(await client.get("/v1/offers", params=params, headers=OPERATOR), 422)
    assert body["errors"], body


async def test_a_cursor_is_kept_to_its_sort(client: AsyncClient) -> None:
    provider = await create_provider(client)
    for price in ("10.00", "11.00", "12.00"):
        await create_offer(client, provider, price_per_card_hour=price)
    page = await client.get("/v1/offers", params={"limit": 1}, headers=OPERATOR)
    cursor = page.json()["next_cursor"]
    resp = await client.get(
        "/v1/offers", params={"limit": 1, "cursor": cursor, "sort": "created_at"}, headers=OPERATOR
    )
    body = assert_problem(resp, 422)
    assert "sort=price_per_card_hour" in body["detail"]


# --------------------------------------------------------------------------- sorts


def _sort_value(sort: str, item: dict[str, Any]) -> Any:
    name = sort.lstrip("-")
    value = item[name]
    if name == "price_per_card_hour":
        return Decimal(value)
    if name in ("available_from", "created_at"):
        return datetime.fromisoformat(value)
    return value


def _assert_sorted(sort: str, items: list[dict[str, Any]]) -> None:
    keys = [(_sort_value(sort, item), item["id"]) for item in items]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


async def _hold(
    client: AsyncClient,
    offer: dict[str, Any],
    cards: int,
    start: datetime,
    hours: int,
) -> None:
    """An order holding `cards` of the offer from `start` for `hours`."""
    enterprise = await create_enterprise(client)
    request = await create_request(
        client,
        enterprise,
        cards=cards,
        hours=hours,
        earliest_start=start.isoformat(),
        latest_start=start.isoformat(),
        accelerator_ids=[offer["accelerator_id"]],
    )
    headers = bearer(enterprise["api_key"])
    quote = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": offer["id"]}, headers=headers
    )
    assert quote.status_code == 201, quote.text
    placed = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=headers)
    assert placed.status_code == 201, placed.text


SORTS = [
    "price_per_card_hour",
    "-price_per_card_hour",
    "free_cards",
    "-free_cards",
    "available_from",
    "created_at",
]


@pytest.mark.parametrize("sort", SORTS)
async def test_pagination_is_stable_under_every_sort_while_offers_change(
    client: AsyncClient, sort: str
) -> None:
    """Unchanged offers are seen exactly once, however others change between pages."""
    provider = await create_provider(client)
    offers = []
    for n in range(10):
        offers.append(
            await create_offer(
                client,
                provider,
                # Repeated keys: the id must break ties for the cursor to hold.
                price_per_card_hour=f"{10 + n % 4}.00",
                cards_total=8 + 8 * (n % 3),
                **_window(available_from=(DAY0 - timedelta(days=n % 3)).isoformat()),
            )
        )
    window = {"free_from": DAY0.isoformat(), "free_until": (DAY0 + timedelta(days=2)).isoformat()}
    await _hold(client, offers[0], 8, DAY0 + timedelta(hours=5), 10)
    await _hold(client, offers[4], 4, DAY0, 24)
    params = {"sort": sort, "limit": 3, "provider_id": provider["id"], **window}
    headers = bearer(provider["api_key"])

    seen: list[dict[str, Any]] = []
    changed: set[str] = set()
    cursor = None
    for turn in range(20):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        resp = await client.get("/v1/offers", params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        _assert_sorted(sort, page["items"])
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # Between pages: a new offer, and a changed one (price, and held cards).
        new = await create_offer(
            client, provider, price_per_card_hour=f"{9 + turn}.50", **_window()
        )
        changed.add(new["id"])
        victim = offers[(turn * 3 + 1) % len(offers)]
        if victim["id"] not in changed:
            resp = await client.patch(
                f"/v1/offers/{victim['id']}",
                json={"price_per_card_hour": f"{20 - turn}.25"},
                headers=headers,
            )
            assert resp.status_code == 200, resp.text
            await _hold(client, victim, 1, DAY0 + timedelta(hours=1), 2)
            changed.add(victim["id"])
    else:
        raise AssertionError("pagination did not end")

    ids = [item["id"] for item in seen]
    unchanged = [o["id"] for o in offers if o["id"] not in changed]
    assert unchanged, "the test must keep some offers unchanged"
    for offer_id in unchanged:
        assert ids.count(offer_id) == 1, (offer_id, ids)
    assert len(ids) == len(set(ids)) or set(ids) - set(unchanged) <= changed
    # Pages joined are in order, for the unchanged offers among them.
    _assert_sorted(sort, [item for item in seen if item["id"] in unchanged])


@pytest.mark.parametrize("sort", SORTS)
async def test_every_sort_orders_a_walk(client: AsyncClient, sort: str) -> None:
    provider = await create_provider(client)
    for n in range(7):
        await create_offer(
            client,
            provider,
            price_per_card_hour=f"{10 + n % 3}.00",
            cards_total=8 * (1 + n % 2),
            **_window(available_from=(DAY0 - timedelta(days=n % 4)).isoformat()),
        )
    items = await walk_pages(
        client,
        "/v1/offers",
        OPERATOR,
        sort=sort,
        limit=2,
        provider_id=provider["id"],
        free_from=DAY0.isoformat(),
        free_until=(DAY0 + timedelta(days=1)).isoformat(),
    )
    assert len(items) == len({i["id"] for i in items}) == 7
    _assert_sorted(sort, items)


# --------------------------------------------------------------------------- free cards


async def test_free_cards_count_the_peak_of_holds_over_the_window(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, cards_total=16, **_window())
    # 4 cards over hours 0-10, 6 over 5-20, 3 over 20-30: the peak over 0-30 is 10
    # (hours 5-10), over 10-30 it is 6, over 30-40 nothing.
    await _hold(client, offer, 4, DAY0, 10)
    await _hold(client, offer, 6, DAY0 + timedelta(hours=5), 15)
    await _hold(client, offer, 3, DAY0 + timedelta(hours=20), 10)

    async def free(h0: int, h1: int, **more: Any) -> list[int]:
        resp = await client.get(
            "/v1/offers",
            params={
                "provider_id": provider["id"],
                "free_from": (DAY0 + timedelta(hours=h0)).isoformat(),
                "free_until": (DAY0 + timedelta(hours=h1)).isoformat(),
                **more,
            },
            headers=OPERATOR,
        )
        assert resp.status_code == 200, resp.text
        return [item["free_cards"] for item in resp.json()["items"]]

    assert await free(0, 30) == [6]
    assert await free(10, 30) == [10]
    assert await free(20, 30) == [13]
    assert await free(30, 40) == [16]
    assert await free(6, 7) == [6]
    assert await free(0, 5) == [12]
    # min_free_cards keeps only offers with that many free over the whole window.
    assert await free(0, 30, min_free_cards=6) == [6]
    assert await free(0, 30, min_free_cards=7) == []
    assert await free(30, 40, min_free_cards=16) == [16]
    # A window the offer is not available over: nothing can be held there.
    before = (DAY0 - timedelta(days=1)).isoformat()
    resp = await client.get(
        "/v1/offers",
        params={"provider_id": provider["id"], "free_from": before, "free_until": DAY0.isoformat()},
        headers=OPERATOR,
    )
    assert [i["free_cards"] for i in resp.json()["items"]] == [0]
    # Without a window there is no free_cards figure.
    plain = await client.get("/v1/offers", params={"provider_id": provider["id"]}, headers=OPERATOR)
    assert [i["free_cards"] for i in plain.json()["items"]] == [None]


async def test_a_cancelled_order_frees_its_cards(client: AsyncClient) -> None:
    provider = await create_provider(client)
    offer = await create_offer(client, provider, cards_total=8, **_window())
    enterprise = await create_enterprise(client)
    request = await create_request(
        client,
        enterprise,
        cards=8,
        hours=24,
        earliest_start=DAY0.isoformat(),
        latest_start=DAY0.isoformat(),
    )
    headers = bearer(enterprise["api_key"])
    quote = await client.post(
        "/v1/quotes", json={"request_id": request["id"], "offer_id": offer["id"]}, headers=headers
    )
    placed = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=headers)
    params = {
        "provider_id": provider["id"],
        "free_from": DAY0.isoformat(),
        "free_until": (DAY0 + timedelta(hours=24)).isoformat(),
        "min_free_cards": 1,
    }
    assert (await client.get("/v1/offers", params=params, headers=OPERATOR)).json()["items"] == []
    cancel = await client.post(f"/v1/orders/{placed.json()['id']}/cancel", headers=headers)
    assert cancel.status_code == 200, cancel.text
    items = (await client.get("/v1/offers", params=params, headers=OPERATOR)).json()["items"]
    assert [i["free_cards"] for i in items] == [8]
