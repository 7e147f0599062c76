"""Requests' node, network and software constraints, honoured by matching and quotes."""

from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import (
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
    request_body,
)
from tests.helpers import assert_problem, mentions_field
from tests.matching.test_endpoints import matches


@pytest.fixture
async def fleet(client: AsyncClient) -> dict[str, Any]:
    provider = await create_provider(client)
    return {
        "nvl": await create_offer(
            client,
            provider,
            accelerator_id="nvidia-h20",
            price_per_card_hour="9.00",
            cards_per_node=8,
            interconnect="nvlink",
            network="infiniband",
            software=[{"stack": "cuda", "version": "12.4"}],
        ),
        "pcie": await create_offer(
            client,
            provider,
            accelerator_id="nvidia-l20",
            price_per_card_hour="5.00",
            cards_per_node=4,
            interconnect="pcie",
            network="ethernet",
            software=[{"stack": "cuda", "version": "12.2"}],
        ),
        "hccs": await create_offer(
            client,
            provider,
            price_per_card_hour="11.00",
            cards_per_node=16,
            interconnect="hccs",
            network="roce",
            software=[{"stack": "cann", "version": "8.0"}],
        ),
        "bare": await create_offer(client, provider, price_per_card_hour="4.00"),
    }


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["bare", "pcie", "nvl", "hccs"]),
    ({"min_cards_per_node": 8}, ["nvl", "hccs"]),
    ({"min_cards_per_node": 16}, ["hccs"]),
    ({"interconnect": "nvlink"}, ["nvl"]),
    ({"network": "ethernet"}, ["pcie"]),
    ({"software_stacks": ["cann"]}, ["hccs"]),
    ({"software_stacks": ["cann", "cuda"]}, ["pcie", "nvl", "hccs"]),
    ({"software_stacks": ["bang"]}, []),
    ({"software_stacks": ["cuda"], "min_cards_per_node": 8}, ["nvl"]),
]


@pytest.mark.parametrize(("constraints", "expected"), CASES, ids=[str(c) for c, _ in CASES])
async def test_matches_honour_node_network_and_software(
    client: AsyncClient, fleet: dict[str, Any], constraints: dict[str, Any], expected: list[str]
) -> None:
    enterprise = await create_enterprise(client, region_code="310115")  # no voucher
    request = await create_request(client, enterprise, **constraints)
    for key, value in constraints.items():
        assert request[key] == value
    found = [m["offer_id"] for m in await matches(client, enterprise, request)]
    assert found == [fleet[name]["id"] for name in expected]


async def test_a_quote_on_an_offer_outside_the_constraints_is_refused(
    client: AsyncClient, fleet: dict[str, Any]
) -> None:
    enterprise = await create_enterprise(client)
    request = await create_request(client, enterprise, interconnect="nvlink")
    resp = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": fleet["pcie"]["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    assert assert_problem(resp, 409)["reason"] == "offer_unavailable"


@pytest.mark.parametrize(
    "field",
    [
        {"min_cards_per_node": 0},
        {"interconnect": "ethernet"},
        {"network": "hccs"},
        {"software_stacks": ["cuda", "cuda"]},
        {"software_stacks": ["opencl"]},
    ],
)
async def test_bad_constraints_are_422(client: AsyncClient, field: dict[str, Any]) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.post(
        "/v1/compute-requests", json=request_body(**field), headers=bearer(enterprise["api_key"])
    )
    assert mentions_field(assert_problem(resp, 422), next(iter(field)))
