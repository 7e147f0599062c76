"""API7 SSRF, API8 Security misconfiguration, API10 Unsafe consumption of APIs.

The service makes no outbound call, whatever it is sent; every response
carries the security headers, errors included; CORS is closed unless origins
are configured; errors never show a stack trace or SQL; /docs, /redoc and
/openapi.json can be switched off.
"""

import ast
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.offers import service as offer_service
from tests.factories import OPERATOR, bearer, create_enterprise, create_provider, credit_code
from tests.factories import offer_body as make_offer_body
from tests.helpers import assert_problem
from tests.subsidies.test_endpoints import district_program

APP = Path(__file__).resolve().parents[2] / "app"
OUTBOUND_MODULES = {
    "aiohttp",
    "ftplib",
    "http.client",
    "httpx",
    "poplib",
    "requests",
    "smtplib",
    "socket",
    "telnetlib",
    "urllib.request",
    "urllib3",
    "websockets",
    "xmlrpc.client",
}
URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:6379/",
    "file:///etc/passwd",
    "gopher://internal.example:70/",
    "https://attacker.example/callback",
]
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


# ------------------------------------------------------------------ API7 / API10


def test_no_module_of_the_app_can_make_an_outbound_call() -> None:
    found: list[str] = []
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if any(name == m or name.startswith(m + ".") for m in OUTBOUND_MODULES):
                    found.append(f"{path.relative_to(APP.parent)}: {name}")
    assert not found, found


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, database_url: str) -> list[Any]:
    """Every name lookup and socket connect the process attempts, but the database's."""
    url = make_url(database_url)
    allowed_hosts = {url.host, "127.0.0.1", "::1", "localhost"} if url.host else set()
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def to_database(address: Any) -> bool:
        return (
            isinstance(address, tuple)
            and address[0] in allowed_hosts
            and address[1] == (url.port or 5432)
        )

    def connect(self: socket.socket, address: Any) -> Any:
        if not to_database(address):
            attempts.append(("connect", address))
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not to_database(address):
            attempts.append(("connect", address))
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not to_database((host, port)):
            attempts.append(("getaddrinfo", host, port))
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


async def test_urls_in_any_input_are_never_fetched(
    client: AsyncClient, connections: list[Any]
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    for url in URLS:
        named = await client.patch(
            f"/v1/providers/{provider['id']}", json={"name": url[:100]}, headers=key
        )
        assert named.status_code == 200, named.text
        listing = await client.post(
            f"/v1/providers/{provider['id']}/listings",
            json={
                "list": "hz-planned-icc",
                "since": "2020-01-01",
                "until": "2020-01-02",
                "reference": url,
            },
            headers=OPERATOR,
        )
        assert listing.status_code in (201, 409), listing.text
        await client.post("/v1/offers", json=make_offer_body(external_id=url), headers=key)
        await client.post(
            "/v1/accelerators",
            json={
                "id": "url-test",
                "vendor": url[:100],
                "model": "m",
                "domestic": True,
                "memory_gb": 1,
                "bf16_tflops": 1.0,
                "source": url,
            },
            headers=OPERATOR,
        )
        await client.post(
            "/v1/subsidy-programs",
            json=district_program(source={"document": url, "clause": url}),
            headers=OPERATOR,
        )
        await client.post(
            "/v1/enterprises",
            json={
                "name": url[:100],
                "unified_social_credit_code": credit_code(),
                "region_code": "330108",
                "filed_models": [
                    {"filing_number": url[:100], "name": url[:100], "filed_on": "2025-01-01"}
                ],
            },
        )
        # Headers a proxy-confused service might follow.
        await client.get(
            "/v1/offers",
            headers={**key, "X-Forwarded-Host": url, "Referer": url, "X-Callback-Url": url},
        )
    assert connections == []


# ------------------------------------------------------------------ API8: headers


def assert_security_headers(resp: Response, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, f"{what}: {name} is {resp.headers.get(name)!r}"
    assert resp.headers.get("x-request-id"), what


async def test_every_kind_of_response_carries_the_security_headers(
    client: AsyncClient,
    other_app: Callable[..., AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    answers = {
        "200": await client.get("/v1/offers", headers=key),
        "201": await client.post("/v1/offers", json=make_offer_body(), headers=key),
        "401": await client.get("/v1/offers"),
        "403": await client.get("/v1/audit-log", headers=key),
        "404 object": await client.get("/v1/offers/off_missing", headers=key),
        "404 route": await client.get("/v1/nowhere", headers=key),
        "405": await client.put("/v1/offers", headers=key),
        "422": await client.post("/v1/offers", json={}, headers=key),
        "healthz": await client.get("/healthz"),
        "readyz": await client.get("/readyz"),
        "metrics": await client.get("/metrics"),
        "openapi": await client.get("/openapi.json"),
    }
    async with other_app(max_body_bytes=1024, rate_limit_per_minute=1) as small:
        answers["413"] = await small.post(
            "/v1/offers", json=make_offer_body(padding="x" * 2048), headers=key
        )
        await small.get("/v1/offers", headers=bearer((await create_enterprise(client))["api_key"]))
        answers["429"] = await small.get("/v1/offers", headers=OPERATOR)
    monkeypatch.setattr(offer_service, "search_statement", _database_failure)
    async with other_app(raise_errors=False) as crashing:
        answers["500"] = await crashing.get("/v1/offers", headers=key)
    for what, resp in answers.items():
        expected = what.split()[0]
        if expected.isdigit():
            assert resp.status_code == int(expected), (what, resp.text)
        assert_security_headers(resp, what)


async def test_the_docs_pages_keep_the_headers_their_scripts_allow(client: AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/static-docs/swagger-ui.css"):
        resp = await client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"


# ------------------------------------------------------------------ API8: CORS


async def test_cors_is_closed_unless_configured(client: AsyncClient) -> None:
    origin = {"Origin": "https://attacker.example"}
    preflight = await client.options(
        "/v1/offers",
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    simple = await client.get("/v1/offers", headers={**origin, **OPERATOR})
    for resp in (preflight, simple):
        assert not [h for h in resp.headers if h.startswith("access-control-")], resp.headers


async def test_configured_origins_and_only_those_are_allowed(
    client: AsyncClient, other_app: Callable[..., AsyncClient]
) -> None:
    allowed = "https://console.example.com"
    async with other_app(cors_origins=[allowed], rate_limit_per_minute=1) as browser:
        preflight = await browser.options(
            "/v1/offers",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == allowed
        assert "access-control-allow-credentials" not in preflight.headers
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        simple = await browser.get("/v1/offers", headers={"Origin": allowed, **OPERATOR})
        assert simple.headers["access-control-allow-origin"] == allowed
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        assert_security_headers(simple, "CORS response")
        # Preflights carry no key and are never rate limited.
        for _ in range(3):
            again = await browser.options(
                "/v1/offers",
                headers={"Origin": allowed, "Access-Control-Request-Method": "GET"},
            )
            assert again.status_code == 200
        other = await browser.options(
            "/v1/offers",
            headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers
        stolen = await browser.get("/healthz", headers={"Origin": "https://attacker.example"})
        assert "access-control-allow-origin" not in stolen.headers


def test_cors_origins_are_checked_when_configured() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    assert Settings().cors_origins == []
    assert Settings(cors_origins="https://a.example, http://localhost:3000").cors_origins == [
        "https://a.example",
        "http://localhost:3000",
    ]
    for wrong in ("https://a.example/", "a.example", "https://a.example/path"):
        with pytest.raises(ValidationError):
            Settings(cors_origins=wrong)


# ------------------------------------------------------------------ API8: errors


def _database_failure(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError(
        "SELECT api_keys.key_hash FROM api_keys WHERE api_keys.id = $1",
        ("key_secret_param",),
        Exception("connection to server at 10.0.0.5 failed"),
    )


async def test_an_unexpected_error_shows_no_stack_trace_or_sql(
    client: AsyncClient,
    other_app: Callable[..., AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = await create_provider(client)
    monkeypatch.setattr(offer_service, "search_statement", _database_failure)
    async with other_app(raise_errors=False) as crashing:
        resp = await crashing.get(
            "/v1/offers", headers={**bearer(provider["api_key"]), "X-Request-ID": "crash-1"}
        )
    body = assert_problem(resp, 500)
    assert body["detail"] == "An unexpected error occurred; it has been logged."
    assert body["request_id"] == "crash-1"
    for leak in ("SELECT", "api_keys", "key_secret_param", "10.0.0.5", "Traceback", "File "):
        assert leak not in resp.text
    # The whole error is in the log, joined to the request by its id.
    [logged] = [r for r in caplog.records if r.name == "computematch.errors"]
    assert logged.exc_info is not None
    assert getattr(logged, "request_id", None) == "crash-1"


async def test_validation_errors_name_the_field_not_the_internals(client: AsyncClient) -> None:
    enterprise = await create_enterprise(client)
    resp = await client.post(
        "/v1/compute-requests",
        json={"cards": "1; DROP TABLE offers", "hours": {"$gt": 1}},
        headers=bearer(enterprise["api_key"]),
    )
    body = assert_problem(resp, 422)
    assert "DROP TABLE" not in resp.text
    assert "$gt" not in resp.text
    for error in body["errors"]:
        assert set(error) == {"loc", "msg"}
    assert "Traceback" not in resp.text
    assert "pydantic" not in resp.text.lower()


async def test_conflicts_from_the_database_are_told_in_words(client: AsyncClient) -> None:
    code = credit_code()
    body = {
        "name": "Twice",
        "kind": "matchmaking_partner",
        "unified_social_credit_code": code,
        "region_code": "330110",
    }
    assert (await client.post("/v1/providers", json=body, headers=OPERATOR)).status_code == 201
    twice = await client.post("/v1/providers", json=body, headers=OPERATOR)
    problem = assert_problem(twice, 409)
    for leak in ("UNIQUE", "constraint", "INSERT", "IntegrityError", "providers."):
        assert leak not in twice.text, problem


# ------------------------------------------------------------------ API8: docs


async def test_docs_can_be_switched_off(
    other_app: Callable[..., AsyncClient], app: FastAPI
) -> None:
    assert not app.debug
    async with other_app(docs_enabled=False) as production:
        for path in (
            "/docs",
            "/redoc",
            "/openapi.json",
            "/static-docs/swagger-ui.css",
            "/docs/oauth2-redirect",
        ):
            resp = await production.get(path)
            assert resp.status_code == 404, path
            assert_security_headers(resp, path)
        # The API itself is unaffected.
        assert (await production.get("/v1/offers", headers=OPERATOR)).status_code == 200
