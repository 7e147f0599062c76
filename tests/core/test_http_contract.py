"""api.md's HTTP conventions on every operation of the OpenAPI document: unknown query
parameters (422 naming them), repeatable filters, `Location` on every 201, 415 for a
body that is not JSON, and `instance`/`request_id` on the problems middlewares answer."""

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from app.main import app as module_app
from tests.claims import helpers as claims_helpers
from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
    credit_code,
    offer_body,
    request_body,
)
from tests.registry.helpers import assert_problem, error_locs
from tests.registry.test_accelerators import new_accelerator
from tests.registry.test_listings import grant
from tests.subsidies.test_endpoints import district_program

DOCUMENT = module_app.openapi()
METHODS = ("get", "post", "put", "patch", "delete")
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in METHODS
]


def concrete(path: str) -> str:
    """A path of the template with every `{param}` filled (no such object needed)."""
    return re.sub(r"\{[^}]+\}", "x", path)


def op_id(operation: tuple[str, str, dict[str, Any]]) -> str:
    return str(operation[2]["operationId"])


# ---------------------------------------------------------------- unknown query parameters


@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
async def test_every_operation_names_an_unknown_query_parameter(
    client: AsyncClient, operation: tuple[str, str, dict[str, Any]]
) -> None:
    method, path, _ = operation
    resp = await client.request(method, concrete(path), params={"gpu_ram": "80"}, headers=OPERATOR)
    body = assert_problem(resp, 422)
    assert ["query", "gpu_ram"] in error_locs(body)
    assert "gpu_ram" in body["detail"]


@pytest.mark.parametrize(
    "operation",
    [op for op in OPERATIONS if any(p["in"] == "query" for p in op[2].get("parameters", []))],
    ids=op_id,
)
async def test_declared_query_parameters_are_not_called_unknown(
    client: AsyncClient, operation: tuple[str, str, dict[str, Any]]
) -> None:
    """The check knows every parameter the document declares (dependencies' included)."""
    method, path, spec = operation
    names = [p["name"] for p in spec["parameters"] if p["in"] == "query"]
    resp = await client.request(
        method, concrete(path), params=dict.fromkeys(names, "1"), headers=OPERATOR
    )
    if resp.status_code == 422:  # a value may be at fault ("1" is no status), never a name
        errors = resp.json()["errors"]
        assert not [e for e in errors if e["msg"].startswith("unknown query")], resp.text


async def test_search_refuses_what_it_cannot_do(client: AsyncClient) -> None:
    provider = await create_provider(client)
    await create_offer(client, provider)
    resp = await client.get(
        "/v1/offers", params={"order_by": "price", "gpu_ram": "80"}, headers=OPERATOR
    )
    body = assert_problem(resp, 422)
    assert error_locs(body) == [["query", "gpu_ram"], ["query", "order_by"]]
    assert "accelerator_id" in body["errors"][0]["msg"]  # what it takes instead
    # `sort` is a parameter it takes (market.md), but not with a key it does not know.
    resp = await client.get("/v1/offers", params={"sort": "price"}, headers=OPERATOR)
    body = assert_problem(resp, 422)
    assert error_locs(body) == [["query", "sort"]]


async def test_a_one_value_parameter_given_twice_is_refused(client: AsyncClient) -> None:
    resp = await client.get("/v1/offers?min_cards=1&min_cards=64", headers=OPERATOR)
    body = assert_problem(resp, 422)
    assert error_locs(body) == [["query", "min_cards"]]


async def test_an_unknown_parameter_without_a_key_is_still_401(client: AsyncClient) -> None:
    resp = await client.get("/v1/offers", params={"api_key": "cm_nope"})
    assert_problem(resp, 401)
    resp = await client.get("/v1/offers", params={"gpu_ram": "80"}, headers=bearer("cm_unknown"))
    assert_problem(resp, 401)


async def test_repeated_filters_or_their_values(client: AsyncClient) -> None:
    provider = await create_provider(client)
    ascend = await create_offer(client, provider, accelerator_id="huawei-ascend-910b")
    h100 = await create_offer(
        client, provider, accelerator_id="nvidia-a100-sxm-80gb", region_code="330106"
    )
    other = await create_offer(
        client, provider, accelerator_id="cambricon-mlu590", region_code="310115"
    )

    async def ids(query: str) -> set[str]:
        resp = await client.get(f"/v1/offers?{query}", headers=OPERATOR)
        assert resp.status_code == 200, resp.text
        return {item["id"] for item in resp.json()["items"]}

    both = "accelerator_id=huawei-ascend-910b&accelerator_id=nvidia-a100-sxm-80gb"
    assert await ids(both) == {ascend["id"], h100["id"]}
    assert await ids("accelerator_id=huawei-ascend-910b") == {ascend["id"]}
    assert await ids("region_prefix=330108&region_prefix=31") == {ascend["id"], other["id"]}
    assert await ids(f"{both}&region_prefix=330106&region_prefix=31") == {h100["id"]}
    bad = await client.get("/v1/offers?region_prefix=330108&region_prefix=x", headers=OPERATOR)
    assert ["query", "region_prefix", 1] in error_locs(assert_problem(bad, 422))


def test_the_document_shows_repeatable_filters_as_arrays() -> None:
    parameters = {
        p["name"]: p["schema"] for p in DOCUMENT["paths"]["/v1/offers"]["get"]["parameters"]
    }
    for name in ("accelerator_id", "region_prefix"):
        types = {branch.get("type") for branch in parameters[name]["anyOf"]}
        assert "array" in types, parameters[name]
    assert "array" not in {b.get("type") for b in parameters["min_cards"]["anyOf"]}


# ---------------------------------------------------------------- Location on 201

Creator = Callable[[AsyncClient], Awaitable[tuple[Any, str]]]


async def _market(client: AsyncClient) -> tuple[dict[str, Any], ...]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider)
    enterprise = await create_enterprise(client)
    return provider, offer, enterprise


async def _quote(client: AsyncClient) -> tuple[Any, dict[str, Any]]:
    _, offer, enterprise = await _market(client)
    request = await create_request(client, enterprise)
    resp = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    return resp, enterprise


async def create_each(client: AsyncClient, operation_id: str) -> tuple[Any, str]:
    """Create one resource through the operation: the response and the expected path."""
    if operation_id == "create_provider":
        resp = await client.post(
            "/v1/providers",
            json={
                "name": "Location Provider",
                "kind": "intelligent_computing_center",
                "unified_social_credit_code": credit_code(),
                "region_code": "330108",
            },
        )
        return resp, f"/v1/providers/{resp.json().get('id')}"
    if operation_id == "create_enterprise":
        enterprise = await client.post(
            "/v1/enterprises",
            json={
                "name": "Location Enterprise",
                "unified_social_credit_code": credit_code(),
                "region_code": "330108",
            },
            headers=OPERATOR,
        )
        return enterprise, f"/v1/enterprises/{enterprise.json().get('id')}"
    if operation_id == "create_api_key":
        resp = await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
        return resp, f"/v1/api-keys/{resp.json().get('id')}"
    if operation_id == "create_accelerator":
        resp = await client.post("/v1/accelerators", json=new_accelerator(), headers=OPERATOR)
        return resp, "/v1/accelerators/testvendor-x1"
    if operation_id == "grant_listing":
        provider = await create_provider(client)
        resp = await client.post(
            f"/v1/providers/{provider['id']}/listings", json=grant(), headers=OPERATOR
        )
        return resp, f"/v1/providers/{provider['id']}/listings/binjiang-compute-partner"
    if operation_id == "create_offer":
        provider = await create_provider(client)
        resp = await client.post(
            "/v1/offers", json=offer_body(), headers=bearer(provider["api_key"])
        )
        return resp, f"/v1/offers/{resp.json().get('id')}"
    if operation_id == "create_compute_request":
        enterprise = await create_enterprise(client)
        resp = await client.post(
            "/v1/compute-requests", json=request_body(), headers=bearer(enterprise["api_key"])
        )
        return resp, f"/v1/compute-requests/{resp.json().get('id')}"
    if operation_id == "create_quote":
        resp, _ = await _quote(client)
        return resp, f"/v1/quotes/{resp.json().get('id')}"
    if operation_id == "place_order":
        quote, enterprise = await _quote(client)
        resp = await client.post(
            "/v1/orders",
            json={"quote_id": quote.json()["id"]},
            headers=bearer(enterprise["api_key"]),
        )
        return resp, f"/v1/orders/{resp.json().get('id')}"
    if operation_id == "create_subsidy_program":
        resp = await client.post("/v1/subsidy-programs", json=district_program(), headers=OPERATOR)
        return resp, "/v1/subsidy-programs/xihu-compute-2026"
    if operation_id == "place_bid":
        provider, offer, enterprise = await _market(client)
        request = await create_request(
            client,
            enterprise,
            accept_bids=True,
            earliest_start=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
            latest_start=(datetime.now(UTC) + timedelta(days=2)).isoformat(),
        )
        resp = await client.post(
            f"/v1/compute-requests/{request['id']}/bids",
            json={
                "offer_id": offer["id"],
                "price_per_card_hour": offer["price_per_card_hour"],
                "valid_until": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            },
            headers=bearer(provider["api_key"]),
        )
        return resp, f"/v1/bids/{resp.json().get('id')}"
    if operation_id in ("file_voucher_claim", "disburse_voucher_claim", "upload_evidence"):
        provider, offer, enterprise = await claims_helpers.hz_market(client)
        if operation_id == "upload_evidence":
            resp = await claims_helpers.upload(client, bearer(enterprise["api_key"]))
            return resp, f"/v1/evidence/{resp.json().get('id')}"
        order = await claims_helpers.settled_order(client, provider, offer, enterprise)
        resp = await claims_helpers.file_claim(client, enterprise, [order])
        claim_path = f"/v1/voucher-claims/{resp.json().get('id')}"
        if operation_id == "file_voucher_claim":
            return resp, claim_path
        approved = await client.post(
            claim_path + "/review", json={"decision": "approve"}, headers=OPERATOR
        )
        assert approved.status_code == 200, approved.text
        resp = await client.post(
            claim_path + "/disbursements",
            json={"amount": "1.00", "paid_on": "2027-01-05", "bank_reference": "L-1"},
            headers=OPERATOR,
        )
        return resp, f"{claim_path}/disbursements/{resp.json().get('id')}"
    raise AssertionError(f"no test creates through {operation_id}: add it here")


CREATING = [op for op in OPERATIONS if "201" in op[2]["responses"]]


def test_the_document_declares_location_on_every_201() -> None:
    assert len(CREATING) >= 10
    for _, path, operation in CREATING:
        headers = operation["responses"]["201"].get("headers", {})
        assert "Location" in headers, path


@pytest.mark.parametrize("operation", CREATING, ids=op_id)
async def test_every_201_answers_the_new_resources_location(
    client: AsyncClient, operation: tuple[str, str, dict[str, Any]]
) -> None:
    resp, expected = await create_each(client, op_id(operation))
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == expected
    template = next(
        (p for p in DOCUMENT["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), expected)),
        None,
    )
    assert template is not None, f"{expected} is no path of the API"
    if "get" in DOCUMENT["paths"][template]:
        read = await client.get(expected, headers=OPERATOR)
        assert read.status_code == 200, read.text
        assert read.json()["id"] == resp.json()["id"]


async def test_a_replayed_201_answers_the_same_location(client: AsyncClient) -> None:
    quote, enterprise = await _quote(client)
    headers = {**bearer(enterprise["api_key"]), "Idempotency-Key": "located"}
    first = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=headers)
    again = await client.post("/v1/orders", json={"quote_id": quote.json()["id"]}, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert (
        again.headers["location"]
        == first.headers["location"]
        == (f"/v1/orders/{first.json()['id']}")
    )
    offer_key = {**OPERATOR, "Idempotency-Key": "located-accelerator"}
    one = await client.post("/v1/accelerators", json=new_accelerator(), headers=offer_key)
    two = await client.post("/v1/accelerators", json=new_accelerator(), headers=offer_key)
    assert one.headers["location"] == two.headers["location"] == "/v1/accelerators/testvendor-x1"


# ---------------------------------------------------------------- 415

# JSON bodies (an evidence upload is multipart: a missing file is its 422).
WITH_BODY = [
    op for op in OPERATIONS if "application/json" in op[2].get("requestBody", {}).get("content", {})
]


def test_the_document_declares_415_on_every_body() -> None:
    assert WITH_BODY
    for _, path, operation in WITH_BODY:
        assert "415" in operation["responses"], path


@pytest.mark.parametrize("operation", WITH_BODY, ids=op_id)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_json_is_415(
    client: AsyncClient,
    operation: tuple[str, str, dict[str, Any]],
    content_type: str | None,
) -> None:
    method, path, _ = operation
    headers = dict(OPERATOR)
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = await client.request(method, concrete(path), content=b'{"a": 1}', headers=headers)
    body = assert_problem(resp, 415)
    assert "application/json" in body["detail"]


async def test_json_media_types_are_still_read(client: AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        resp = await client.post(
            "/v1/accelerators",
            content=b'{"id": "x"}',
            headers={**OPERATOR, "Content-Type": content_type},
        )
        assert_problem(resp, 422)  # read as JSON: the fields are at fault, not the type


async def test_415_checks_the_key_first(client: AsyncClient) -> None:
    resp = await client.post(
        "/v1/accelerators", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert_problem(resp, 401)
