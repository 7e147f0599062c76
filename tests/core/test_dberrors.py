"""Database faults are answered 503 with Retry-After, never 500, never kept as a key's
answer; and a connection the server ended is not handed to the next request."""

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.core import dberrors
from app.core.db import Database
from app.core.dberrors import Fault
from tests.factories import T0, bearer, create_enterprise, create_offer, create_provider
from tests.orders.test_concurrency import quote


def _wrapped(error: Exception) -> DBAPIError:
    """As SQLAlchemy raises a driver's error: the driver's as `orig`."""
    return DBAPIError("SELECT 1", None, error)


def _caused(outer: Exception, cause: Exception) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), Fault.DISCONNECT),
        (asyncpg.AdminShutdownError("terminating connection"), Fault.DISCONNECT),
        (asyncpg.InterfaceError("connection is closed"), Fault.DISCONNECT),
        (
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
            Fault.BUSY,
        ),
        (asyncpg.InternalClientError("another operation is in progress"), Fault.BUSY),
        (asyncpg.SerializationError("could not serialize access"), Fault.CONFLICT),
        (asyncpg.DeadlockDetectedError("deadlock detected"), Fault.CONFLICT),
        (asyncpg.TooManyConnectionsError("too many clients"), Fault.BUSY),
        (_wrapped(asyncpg.DeadlockDetectedError("deadlock detected")), Fault.CONFLICT),
        (_wrapped(asyncpg.InterfaceError("connection is closed")), Fault.DISCONNECT),
        (
            _caused(RuntimeError("adapted"), asyncpg.ConnectionDoesNotExistError("gone")),
            Fault.DISCONNECT,
        ),
        (
            DBAPIError("SELECT 1", None, ValueError("x"), connection_invalidated=True),
            Fault.DISCONNECT,
        ),
        (sqlite3.OperationalError("database is locked"), Fault.BUSY),
        (
            OperationalError("SELECT 1", None, sqlite3.OperationalError("database is locked")),
            Fault.BUSY,
        ),
        (ConnectionResetError("reset by peer"), Fault.DISCONNECT),
    ],
)
def test_transient_faults_are_classified(error: Exception, fault: Fault) -> None:
    assert dberrors.classify(error) is fault


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed")),
        asyncpg.UndefinedColumnError("column does not exist"),
        sqlite3.OperationalError("no such table: offers"),
        asyncpg.InterfaceError("the server expects 2 arguments, 1 was passed"),
        ValueError("a bug"),
        OverflowError("int too big to convert"),
    ],
)
def test_bugs_are_not_transient(error: Exception) -> None:
    assert dberrors.classify(error) is None


async def _quoted(client: AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=10)
    enterprise = await create_enterprise(client)
    q = await quote(client, enterprise, offer, cards=1, hours=8, latest_start=T0.isoformat())
    return enterprise, q


@pytest.mark.parametrize(
    "fault",
    [
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["in-progress", "disconnect", "sqlite-locked"],
)
async def test_a_transient_fault_is_a_503_and_the_key_runs_again(
    client: AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    enterprise, q = await _quoted(client)
    real = Database.transaction
    failures = [fault]

    @asynccontextmanager
    async def failing_once(self: Database) -> AsyncIterator[Any]:
        if failures:
            raise failures.pop()
        async with real(self) as tx:
            yield tx

    monkeypatch.setattr(Database, "transaction", failing_once)
    headers = {**bearer(enterprise["api_key"]), "Idempotency-Key": "order-after-fault"}
    first = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert first.status_code == 503, first.text
    assert first.headers["content-type"] == "application/problem+json"
    assert first.headers["retry-after"] == "1"
    assert first.json()["type"].endswith("/service-unavailable")
    # Not kept as the key's answer: the retry runs the order, once.
    again = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert again.status_code == 201, again.text
    replay = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
    assert replay.status_code == 201
    assert replay.json()["id"] == again.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"


async def _terminate_other_backends(url: str) -> int:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        ended = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(ended)
    finally:
        await admin.close()


async def test_requests_recover_after_the_server_ends_every_connection(
    client: AsyncClient, db: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL ends connections; SQLite has none to end")
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=64)
    enterprise = await create_enterprise(client)
    quotes = [
        await quote(client, enterprise, offer, cards=1, hours=1, latest_start=T0.isoformat())
        for _ in range(24)
    ]
    # Every pool has connections open: the session's, the order's and both runners'.
    warm = await client.post(
        "/v1/orders",
        json={"quote_id": quotes.pop()["id"]},
        headers={**bearer(enterprise["api_key"]), "Idempotency-Key": "warm"},
    )
    assert warm.status_code == 201, warm.text
    assert await _terminate_other_backends(db.url) > 0

    statuses: list[int] = []
    for i, q in enumerate(quotes):
        headers = {**bearer(enterprise["api_key"]), "Idempotency-Key": f"after-{i}"}
        read = await client.get("/v1/accelerators", headers=headers)
        statuses.append(read.status_code)
        order = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
        statuses.append(order.status_code)
        if order.status_code == 503:  # retried as a client would: the key was not kept
            order = await client.post("/v1/orders", json={"quote_id": q["id"]}, headers=headers)
            statuses.append(order.status_code)
        assert order.status_code in (201, 503), order.text
    failed = [s for s in statuses if s not in (200, 201)]
    # At most one failed request per pool (the session's, the order's, the records'
    # and the counters'), each a 503; every request after them served.
    assert all(s == 503 for s in failed), statuses
    assert len(failed) <= 4, statuses
    assert all(s in (200, 201) for s in statuses[-20:]), statuses
