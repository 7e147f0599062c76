"""Structured logs: one JSON line per request and per business event; never a key."""

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.logging import build_handler, json_formatter
from tests.conftest import OPERATOR_KEY
from tests.factories import OPERATOR, bearer, create_enterprise, create_provider, credit_code
from tests.ops.conftest import Cli
from tests.orders.test_flow import market, order, quote_for
from tests.subsidies.test_endpoints import district_program


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the app writes, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = build_handler(stream)
    logger = logging.getLogger("computematch")
    level = logger.level
    logger.setLevel(logging.INFO)  # a CLI test in the same run may have quietened it
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


async def test_one_json_line_per_request(client: AsyncClient, json_lines: io.StringIO) -> None:
    provider = await create_provider(client)
    resp = await client.get(
        f"/v1/providers/{provider['id']}", headers={**OPERATOR, "X-Request-ID": "trace-42"}
    )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "trace-42"
    enterprise = await create_enterprise(client)
    await client.get(
        f"/v1/enterprises/{enterprise['id']}",
        headers={**bearer(enterprise["api_key"]), "X-Request-ID": "trace-43"},
    )

    lines = parsed(json_lines)
    [line] = [x for x in lines if x.get("request_id") == "trace-42"]
    assert line["event"] == "http.request"
    assert line["logger"] == "computematch.access"
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["path"] == "/v1/providers/{provider_id}"  # the template, not the id
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["principal_role"] == "operator"
    assert line["principal_id"] == "bootstrap"
    assert datetime.fromisoformat(line["time"]).utcoffset() is not None
    [line] = [x for x in lines if x.get("request_id") == "trace-43"]
    assert line["principal_role"] == "enterprise"
    assert line["principal_id"] == enterprise["id"]
    assert line["api_key_id"].startswith("key_")


async def test_a_request_id_is_made_when_none_or_a_bad_one_is_sent(
    client: AsyncClient, json_lines: io.StringIO
) -> None:
    made = await client.get("/healthz")
    request_id = made.headers["x-request-id"]
    assert len(request_id) == 32
    bad = await client.get("/healthz", headers={"X-Request-ID": "no spaces\tor tabs"})
    assert bad.headers["x-request-id"] != "no spaces\tor tabs"
    lines = [x for x in parsed(json_lines) if x.get("event") == "http.request"]
    assert [x["request_id"] for x in lines] == [request_id, bad.headers["x-request-id"]]
    assert lines[0]["principal_role"] is None


async def test_business_events_are_logged_with_the_request_id(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="computematch")
    provider, offer, enterprise = await market(client, cards_total=64)
    key = bearer(enterprise["api_key"])
    from tests.factories import create_request

    request = await create_request(client, enterprise, cards=8, hours=10)
    placed = await client.post(
        "/v1/orders",
        json={"quote_id": (await quote_for(client, enterprise, request, offer))["id"]},
        headers={**key, "X-Request-ID": "place-1"},
    )
    assert placed.status_code == 201, placed.text
    cancelled = await client.post(f"/v1/orders/{placed.json()['id']}/cancel", headers=key)
    assert cancelled.status_code == 200
    request = await create_request(client, enterprise, cards=8, hours=10)
    second = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    done = await client.post(
        f"/v1/orders/{second.json()['id']}/complete",
        json={"executed_amount": "500.00"},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    await client.post(
        f"/v1/providers/{provider['id']}/listings",
        json={"list": "hz-matchmaking-partner", "since": "2025-01-01", "until": None},
        headers=OPERATOR,
    )
    ended = await client.delete(
        f"/v1/providers/{provider['id']}/listings/hz-matchmaking-partner", headers=OPERATOR
    )
    assert ended.status_code in (200, 204)
    assert (
        await client.post("/v1/subsidy-programs", json=district_program(), headers=OPERATOR)
    ).status_code == 201
    patched = await client.patch(
        "/v1/subsidy-programs/xihu-compute-2026", json={"status": "retired"}, headers=OPERATOR
    )
    assert patched.status_code == 200, patched.text

    [placed_event, _] = events(caplog, "order.placed")
    assert placed_event.order_id == placed.json()["id"]  # type: ignore[attr-defined]
    assert placed_event.request_id == "place-1"  # type: ignore[attr-defined]
    assert placed_event.enterprise_id == enterprise["id"]  # type: ignore[attr-defined]
    assert placed_event.subsidy_amount == placed.json()["subsidy"]["amount"]  # type: ignore[attr-defined]
    [cancel_event] = events(caplog, "order.cancelled")
    assert cancel_event.order_id == placed.json()["id"]  # type: ignore[attr-defined]
    [complete_event] = events(caplog, "order.completed")
    assert complete_event.executed_amount == "500.00"  # type: ignore[attr-defined]
    granted = events(caplog, "listing.granted")
    assert [r.list_id for r in granted] == [  # type: ignore[attr-defined]
        "binjiang-compute-partner",
        "hz-matchmaking-partner",
    ]
    [ended_event] = events(caplog, "listing.ended")
    assert ended_event.provider_id == provider["id"]  # type: ignore[attr-defined]
    [created_event] = events(caplog, "program.created")
    assert created_event.program_id == "xihu-compute-2026"  # type: ignore[attr-defined]
    [updated_event] = events(caplog, "program.updated")
    assert updated_event.changed_fields == ["status"]  # type: ignore[attr-defined]
    # Each is also one JSON object with its fields.
    line = json.loads(json_formatter().format(placed_event))
    assert line["event"] == "order.placed"
    assert line["gross_amount"] == placed.json()["gross_amount"]


async def test_no_api_key_ever_reaches_a_log_record(
    client: AsyncClient,
    run: Cli,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything, SQL and driver chatter included.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="computematch")
    made = await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
    assert made.status_code == 201
    operator_secret = made.json()["key"]
    registered = await client.post(
        "/v1/providers",
        json={
            "name": "自助注册算力",
            "kind": "matchmaking_partner",
            "unified_social_credit_code": credit_code(),
            "region_code": "330110",
        },
    )
    assert registered.status_code == 201, registered.text
    provider_secret = registered.json()["api_key"]
    for secret in (operator_secret, provider_secret):
        assert (await client.get("/v1/accelerators", headers=bearer(secret))).status_code == 200
    await client.delete(f"/v1/api-keys/{made.json()['id']}", headers=OPERATOR)
    assert (
        await client.get("/v1/accelerators", headers=bearer(operator_secret))
    ).status_code == 401
    cli_made = await run("--verbose", "create-key", "--role", "operator")
    assert cli_made.exit_code == 0
    cli_secret = cli_made.stdout.strip()

    assert any(getattr(r, "path", None) == "/v1/api-keys" for r in caplog.records)
    formatter = json_formatter()
    secrets = [operator_secret, provider_secret, cli_secret, OPERATOR_KEY]
    for record in caplog.records:
        text = record.getMessage() + formatter.format(record) + repr(vars(record))
        for secret in secrets:
            assert secret not in text, f"a key in {record.name}: {record.getMessage()[:200]}"
