"""GET /metrics: Prometheus text, request counters by route and status, market figures."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from tests.factories import OPERATOR, bearer, create_request
from tests.orders.test_flow import market, order, quote_for


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: AsyncClient, **headers: str) -> dict[Any, float]:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return samples(resp.text)


@pytest.fixture
async def other_app(settings: Settings) -> AsyncIterator[Any]:
    """Build another app on the same database with changed settings."""
    made: list[Any] = []

    def build(**changes: Any) -> AsyncClient:
        application = create_app(settings.model_copy(update=changes))
        made.append(application)
        return AsyncClient(transport=ASGITransport(app=application), base_url="http://test")

    yield build
    for application in made:
        await application.state.db.dispose()


async def test_an_order_moves_the_counters_and_the_market_figures(client: AsyncClient) -> None:
    before = await scrape(client)
    assert value(before, "computematch_orders", status="reserved") == 0
    budget = {"program_id": "binjiang-compute-2025"}
    assert value(before, "computematch_subsidy_annual_budget_yuan", **budget) == 1e8

    _, offer, enterprise = await market(client, cards_total=64)
    request = await create_request(client, enterprise, cards=64, hours=720)
    matches = await client.get(
        f"/v1/compute-requests/{request['id']}/matches", headers=bearer(enterprise["api_key"])
    )
    assert matches.status_code == 200
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    refused = await client.post("/v1/orders", json={"quote_id": "quo_nope"}, headers=OPERATOR)
    assert refused.status_code == 404

    after = await scrape(client)
    orders_201 = {"handler": "/v1/orders", "method": "POST", "status": "201"}

    # The app is shared by the whole test run: request counters are compared
    # before and after; the market figures come from this test's database.
    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("http_requests_total", **orders_201) == 1
    assert moved("http_requests_total", **{**orders_201, "status": "404"}) == 1
    # Latency by route template and status, never by the ids in the URL.
    assert moved("http_request_duration_seconds_count", **orders_201) == 1
    matches_200 = {
        "handler": "/v1/compute-requests/{request_id}/matches",
        "method": "GET",
        "status": "200",
    }
    assert moved("http_requests_total", **matches_200) == 1
    assert value(after, "computematch_orders", status="reserved") == 1
    assert value(after, "computematch_orders", status="completed") == 0
    year = next(
        dict(labels)["year"]
        for name, labels in after
        if name == "computematch_subsidy_reserved_yuan"
    )
    binjiang = {"program_id": "binjiang-compute-2025", "year": year}
    assert value(after, "computematch_subsidy_reserved_yuan", **binjiang) == 331776.0
    assert value(after, "computematch_subsidy_settled_yuan", **binjiang) == 0.0
    assert moved("computematch_match_duration_seconds_count") >= 1
    # Scrapes are not counted themselves.
    assert not any(dict(labels).get("handler") == "/metrics" for _, labels in after)


async def test_metrics_need_no_api_key_and_stay_out_of_the_openapi_document(
    client: AsyncClient,
) -> None:
    assert (await client.get("/metrics")).status_code == 200
    document = (await client.get("/openapi.json")).json()
    assert "/metrics" not in document["paths"]


async def test_a_metrics_token_protects_the_endpoint(other_app: Any) -> None:
    async with other_app(metrics_token=SecretStr("scrape-secret-123")) as client:
        missing = await client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        # An API key is not the metrics token.
        assert (await client.get("/metrics", headers=OPERATOR)).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
        assert ok.status_code == 200
        assert "computematch_orders" in ok.text


async def test_metrics_can_be_switched_off(other_app: Any) -> None:
    async with other_app(metrics_enabled=False) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


async def test_two_apps_in_one_process_keep_their_own_counts(
    client: AsyncClient, other_app: Any
) -> None:
    healthz = {"handler": "/healthz", "method": "GET", "status": "200"}
    before = value(await scrape(client), "http_requests_total", **healthz)
    await client.get("/healthz")
    async with other_app() as second:
        assert value(await scrape(second), "http_requests_total", **healthz) == 0
    assert value(await scrape(client), "http_requests_total", **healthz) == before + 1


async def test_paths_no_route_matches_are_counted_under_one_label(client: AsyncClient) -> None:
    # A label per unknown URL would let any client grow the metrics without bound.
    unknown = {"handler": "none", "method": "GET", "status": "404"}
    before = value(await scrape(client), "http_requests_total", **unknown)
    for path in ("/no/such/page", "/v1/nothing-here", "/v1/offers/x/y/z"):
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    assert value(after, "http_requests_total", **unknown) == before + 3
    assert not any("/no/such/page" in str(labels) for _, labels in after)
