from httpx import AsyncClient


async def test_healthz_needs_no_key(client: AsyncClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_readyz_reaches_the_database(client: AsyncClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


async def test_docs_are_served_without_a_cdn(client: AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/static-docs/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    asset = await client.get("/static-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.content) > 100_000


async def test_unknown_route_is_a_problem(client: AsyncClient) -> None:
    resp = await client.get("/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 404


async def test_request_id_is_echoed_and_security_headers_set(client: AsyncClient) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    assert resp.headers["x-content-type-options"] == "nosniff"
    fresh = await client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) >= 16
