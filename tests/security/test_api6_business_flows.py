"""API6 Unrestricted access to sensitive business flows.

Quotes pin a price and a subsidy, so they expire; an enterprise's open quotes
and open compute requests are capped, also under concurrent requests; every
limit is a documented setting.
"""

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, update

from app.config import Settings
from app.core.db import Database
from app.core.timeutil import utcnow
from app.models import LedgerEntry, Order, Quote
from tests.factories import OPERATOR, bearer, create_request, request_body
from tests.helpers import assert_problem
from tests.orders.test_flow import market, order, quote_for

ROOT = Path(__file__).resolve().parents[2]


async def test_a_quote_expires_and_an_expired_quote_orders_nothing(
    app: FastAPI, client: AsyncClient, db: Database
) -> None:
    app.state.settings.quote_ttl_seconds = 120
    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    quote = await quote_for(client, enterprise, request, offer)
    created = datetime.fromisoformat(quote["created_at"])
    assert datetime.fromisoformat(quote["expires_at"]) - created == timedelta(seconds=120)
    async with db.sessionmaker() as session:
        await session.execute(
            update(Quote)
            .where(Quote.id == quote["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    refused = await order(client, enterprise, quote)
    assert assert_problem(refused, 409)["reason"] == "quote_expired"
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


async def test_open_quotes_are_capped_per_enterprise(
    app: FastAPI, client: AsyncClient, db: Database
) -> None:
    app.state.settings.max_open_quotes_per_enterprise = 2
    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise, cards=1, hours=10)
    first = await quote_for(client, enterprise, request, offer)
    await quote_for(client, enterprise, request, offer)
    body = {"request_id": request["id"], "offer_id": offer["id"]}
    third = await client.post("/v1/quotes", json=body, headers=bearer(enterprise["api_key"]))
    assert "2" in assert_problem(third, 409)["detail"]
    # The operator acting for the enterprise counts against the same cap.
    assert_problem(await client.post("/v1/quotes", json=body, headers=OPERATOR), 409)
    # An ordered quote is no longer open; nor is an expired one.
    assert (await order(client, enterprise, first)).status_code == 201
    again = await client.post("/v1/quotes", json=body, headers=bearer(enterprise["api_key"]))
    assert again.status_code == 201, again.text
    assert_problem(
        await client.post("/v1/quotes", json=body, headers=bearer(enterprise["api_key"])), 409
    )
    async with db.sessionmaker() as session:
        await session.execute(
            update(Quote)
            .where(Quote.id == again.json()["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    later = await client.post("/v1/quotes", json=body, headers=bearer(enterprise["api_key"]))
    assert later.status_code == 201, later.text


async def test_open_requests_are_capped_per_enterprise(app: FastAPI, client: AsyncClient) -> None:
    app.state.settings.max_open_requests_per_enterprise = 2
    _, _, enterprise = await market(client)
    key = bearer(enterprise["api_key"])
    first = await create_request(client, enterprise)
    await create_request(client, enterprise)
    assert_problem(await client.post("/v1/compute-requests", json=request_body(), headers=key), 409)
    cancelled = await client.delete(f"/v1/compute-requests/{first['id']}", headers=key)
    assert cancelled.status_code == 200
    again = await client.post("/v1/compute-requests", json=request_body(), headers=key)
    assert again.status_code == 201, again.text


async def test_the_caps_hold_under_concurrent_requests(
    app: FastAPI, client: AsyncClient, db: Database
) -> None:
    app.state.settings.max_open_quotes_per_enterprise = 3
    app.state.settings.max_open_requests_per_enterprise = 3
    _, offer, enterprise = await market(client)
    key = bearer(enterprise["api_key"])
    requests = await asyncio.gather(
        *(client.post("/v1/compute-requests", json=request_body(), headers=key) for _ in range(10))
    )
    assert sorted(r.status_code for r in requests) == [201] * 3 + [409] * 7
    request_id = next(r.json()["id"] for r in requests if r.status_code == 201)
    body = {"request_id": request_id, "offer_id": offer["id"]}
    quotes = await asyncio.gather(
        *(client.post("/v1/quotes", json=body, headers=key) for _ in range(10))
    )
    assert sorted(r.status_code for r in quotes) == [201] * 3 + [409] * 7
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Quote)) == 3


def test_the_limits_are_documented_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    security = (ROOT / "docs" / "security.md").read_text()
    for name, field in Settings.model_fields.items():
        variable = "DATABASE_URL" if name == "database_url" else f"COMPUTEMATCH_{name.upper()}"
        assert variable in readme, f"README.md does not document {variable}"
        del field
    for name in (
        "quote_ttl_seconds",
        "max_open_quotes_per_enterprise",
        "max_open_requests_per_enterprise",
        "rate_limit_per_minute",
        "registration_rate_limit_per_minute",
        "max_body_bytes",
        "max_sync_batch",
    ):
        variable = f"COMPUTEMATCH_{name.upper()}"
        assert re.search(rf"`{variable}`", security), f"docs/security.md: {variable}"
