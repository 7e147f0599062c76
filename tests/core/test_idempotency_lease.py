"""An Idempotency-Key is held by a live request only: renewed while it runs, freed
within seconds of a crash or of a release that failed, never run twice.

Found under fault injection: a worker killed mid-request, or a 500 whose release of its
record itself failed on a dead connection, left the key answering 409 "in progress"
for two minutes, while the client told to retry did so at once.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from app.core import middleware
from app.core.db import Database, StatementRunner
from app.models import IdempotencyRecord, Order
from tests.factories import T0, bearer, create_enterprise, create_offer, create_provider
from tests.orders.test_concurrency import quote


async def _quoted(client: AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=10)
    enterprise = await create_enterprise(client)
    q = await quote(client, enterprise, offer, cards=1, hours=8, latest_start=T0.isoformat())
    return enterprise, q


async def _orders(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


def test_a_dead_requests_key_is_freed_within_seconds() -> None:
    assert middleware.PENDING_TIMEOUT <= timedelta(seconds=10)
    assert middleware.LEASE_RENEWAL * 2 < middleware.PENDING_TIMEOUT


async def test_a_request_outliving_the_lease_keeps_its_key(
    client: AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short lease, renewed often; the first order held well past it.
    monkeypatch.setattr(middleware, "PENDING_TIMEOUT", timedelta(seconds=1))
    monkeypatch.setattr(middleware, "LEASE_RENEWAL", timedelta(milliseconds=100))
    enterprise, q = await _quoted(client)
    started, release = asyncio.Event(), asyncio.Event()
    real = Database.transaction

    @asynccontextmanager
    async def held_once(self: Database) -> AsyncIterator[Any]:
        if not started.is_set():
            started.set()
            await release.wait()
        async with real(self) as tx:
            yield tx

    monkeypatch.setattr(Database, "transaction", held_once)
    headers = {**bearer(enterprise["api_key"]), "Idempotency-Key": "slow-order"}
    first = asyncio.create_task(
        client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    )
    await started.wait()
    # Three leases later the first still holds its key: a retry is told to wait.
    await asyncio.sleep(3 * middleware.PENDING_TIMEOUT.total_seconds())
    retry = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert retry.status_code == 409, retry.text
    assert retry.json()["type"].endswith("idempotency-in-progress")
    release.set()
    placed = await first
    assert placed.status_code == 201, placed.text
    again = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == placed.json()["id"]
    assert await _orders(db) == 1


async def test_a_failed_release_frees_the_key_once_the_lease_ends(
    client: AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    enterprise, q = await _quoted(client)
    failures = [RuntimeError("a bug in the order")]
    real = Database.transaction

    @asynccontextmanager
    async def failing_once(self: Database) -> AsyncIterator[Any]:
        if failures:
            raise failures.pop()
        async with real(self) as tx:
            yield tx

    real_run = StatementRunner.run

    async def release_fails(self: StatementRunner, statement: Any, params: Any) -> Any:
        if str(statement).startswith("DELETE FROM idempotency_keys"):
            raise OSError("the connection to the database was lost")
        return await real_run(self, statement, params)

    monkeypatch.setattr(Database, "transaction", failing_once)
    monkeypatch.setattr(StatementRunner, "run", release_fails)
    headers = {**bearer(enterprise["api_key"]), "Idempotency-Key": "release-fails"}
    failed = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert failed.status_code == 500  # the bug, answered as one; its record not released
    blocked = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert blocked.status_code == 409
    assert blocked.headers["retry-after"] == "1"
    # Nothing renews the dead request's lease: once it has run out, the retry runs.
    key = hashlib.sha256(b"release-fails").hexdigest()
    async with db.sessionmaker() as session:
        record = await session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
        assert record is not None
        assert record.state == "pending"
        record.created_at -= middleware.PENDING_TIMEOUT
        await session.commit()
    placed = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert placed.status_code == 201, placed.text
    assert await _orders(db) == 1
