"""API4 Unrestricted resource consumption.

Bodies over the configured limit get 413 on every operation, declared or
streamed; the limit itself is capped; page sizes and sync batches are capped;
per-key rate limits answer 429 with Retry-After, counted in the database so
that every worker process shares them.
"""

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import ValidationError
from sqlalchemy import func, select

from app.config import Settings
from app.core import ratelimit
from app.core.db import Database
from app.models import IdempotencyRecord, RateLimitCounter
from tests.conftest import OPERATOR_KEY
from tests.factories import OPERATOR, bearer, create_enterprise, create_provider, credit_code
from tests.factories import offer_body as make_offer_body
from tests.helpers import assert_problem, count_offers
from tests.security.conftest import World, changed_tables, snapshot
from tests.security.operations import OPERATIONS, document_operations
from tests.security.test_api3_property_authorization import request_bodies

ROOT = Path(__file__).resolve().parents[2]
# A fixed instant 15.2 s into a minute, far from the real clock's windows.
T = 31_666_667 * 60 + 15.2


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The rate limiter's clock, frozen at T; assign `clock[0]` to move it."""
    now = [T]
    monkeypatch.setattr(ratelimit, "now", lambda: now[0])
    return now


# ------------------------------------------------------------------ body size


async def test_every_body_over_the_limit_is_refused_with_413(
    app: FastAPI,
    db: Database,
    world: World,
    other_app: Callable[..., AsyncClient],
) -> None:
    before = await snapshot(db)
    padding = "x" * 4096
    async with other_app(max_body_bytes=2048) as small:
        for method, template in request_bodies(app.openapi()):
            op = OPERATIONS[(method, template)]
            assert op.body is not None
            path = template.format(**(op.ids(world) if op.ids else {}))
            payload = json.dumps({**op.body(world), "padding": padding}).encode()
            declared = await small.request(method, path, content=payload, headers=OPERATOR)
            assert_problem(declared, 413)

            async def chunks(data: bytes = payload) -> AsyncIterator[bytes]:
                for start in range(0, len(data), 512):
                    yield data[start : start + 512]

            streamed = await small.request(
                method,
                path,
                content=chunks(),
                headers={**OPERATOR, "Content-Type": "application/json"},
            )
            assert "content-length" not in streamed.request.headers
            assert_problem(streamed, 413)
    assert changed_tables(before, await snapshot(db)) == []


def test_the_body_limit_is_configurable_and_capped() -> None:
    assert Settings().max_body_bytes == 5 * 1024 * 1024
    assert Settings(max_body_bytes=10 * 1024 * 1024).max_body_bytes == 10 * 1024 * 1024
    for wrong in (0, 100, 65 * 1024 * 1024):
        with pytest.raises(ValidationError):
            Settings(max_body_bytes=wrong)


# ------------------------------------------------------------------ page and batch sizes


async def test_every_list_caps_its_page_size(
    client: AsyncClient, app: FastAPI, world: World
) -> None:
    document = app.openapi()
    lists = [
        (path, param["schema"])
        for path, item in document["paths"].items()
        for method, op in item.items()
        for param in op.get("parameters", [])
        if method == "get" and param["name"] == "limit"
    ]
    assert len(lists) >= 12
    for template, schema in lists:
        op = OPERATIONS[("GET", template)]
        path = template.format(**(op.ids(world) if op.ids else {}))
        assert schema["maximum"] <= 500, template
        too_many = await client.get(path, params={"limit": schema["maximum"] + 1}, headers=OPERATOR)
        assert_problem(too_many, 422)
        at_most = await client.get(path, params={"limit": schema["maximum"]}, headers=OPERATOR)
        assert at_most.status_code == 200, (template, at_most.text)


async def test_top_k_matches_are_capped(client: AsyncClient, world: World) -> None:
    path = f"/v1/compute-requests/{world.request_a['id']}/matches"
    key = world.headers("enterprise_a")
    assert_problem(await client.get(path, params={"limit": 101}, headers=key), 422)
    assert (await client.get(path, params={"limit": 100}, headers=key)).status_code == 200


def test_every_array_in_an_input_is_bounded(app: FastAPI) -> None:
    document = app.openapi()
    schemas = document["components"]["schemas"]
    unbounded: list[str] = []

    def walk(node: dict[str, Any], where: str) -> None:
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        for child in node.get("anyOf", []):
            walk(child, where)
        if node.get("type") == "array":
            items = node.get("items", {})
            while "$ref" in items:
                items = schemas[items["$ref"].rsplit("/", 1)[1]]
            # An array of a small enum whose items may not repeat is bounded by the enum.
            if "maxItems" not in node and "enum" not in items:
                unbounded.append(where)
            walk(node.get("items", {}), where + "[]")
        for name, child in node.get("properties", {}).items():
            walk(child, f"{where}.{name}")

    for (method, path), schema in request_bodies(document).items():
        walk(schema, f"{method} {path}")
    assert not unbounded, unbounded


async def test_a_sync_batch_over_the_cap_is_refused_whole(
    app: FastAPI, client: AsyncClient, db: Database
) -> None:
    app.state.settings.max_sync_batch = 3  # the `app` fixture restores it
    provider = await create_provider(client)
    url = f"/v1/providers/{provider['id']}/offers:sync"
    key = bearer(provider["api_key"])
    offers = [make_offer_body(external_id=f"b-{i}") for i in range(4)]
    refused = await client.put(url, json={"offers": offers}, headers=key)
    assert refused.status_code in (413, 422)
    assert_problem(refused, refused.status_code)
    assert await count_offers(db) == 0
    accepted = await client.put(url, json={"offers": offers[:3]}, headers=key)
    assert accepted.status_code == 200, accepted.text
    assert await count_offers(db) == 3


# ------------------------------------------------------------------ rate limits


async def counters(db: Database) -> dict[str, int]:
    async with db.sessionmaker() as session:
        rows = await session.execute(select(RateLimitCounter.principal, RateLimitCounter.count))
        return {str(principal): int(count) for principal, count in rows.all()}


async def test_a_key_over_its_limit_gets_429_with_retry_after(
    client: AsyncClient,
    db: Database,
    other_app: Callable[..., AsyncClient],
    clock: list[float],
) -> None:
    provider = await create_provider(client)
    other = await create_provider(client)
    key = bearer(provider["api_key"])
    async with other_app(rate_limit_per_minute=3) as limited:
        for _ in range(3):
            assert (await limited.get("/v1/offers", headers=key)).status_code == 200
        refused = await limited.get("/v1/offers", headers=key)
        problem = assert_problem(refused, 429)
        assert problem["type"].endswith("/rate-limited")
        assert "3" in problem["detail"]
        # 15.2 s into the window: the window ends in 44.8 s, said in whole seconds.
        assert refused.headers["retry-after"] == "45"
        # Security headers and the request id on a 429 too.
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert problem["request_id"] == refused.headers["x-request-id"]
        # Writes are refused too, and change nothing.
        write = await limited.post("/v1/offers", json=make_offer_body(), headers=key)
        assert_problem(write, 429)
        assert await count_offers(db) == 0
        # Another key has its own count.
        assert (
            await limited.get("/v1/offers", headers=bearer(other["api_key"]))
        ).status_code == 200
        # The next window starts afresh.
        clock[0] = T + 45
        assert (await limited.get("/v1/offers", headers=key)).status_code == 200
    keys = await client.get("/v1/api-keys", params={"role": "provider"}, headers=OPERATOR)
    key_id = next(k["id"] for k in keys.json()["items"] if k["provider_id"] == provider["id"])
    # Counted by the key's id (never the key): one row per key and window.
    assert (await counters(db))[key_id] == 1


async def test_the_bootstrap_operator_key_is_limited_too(
    other_app: Callable[..., AsyncClient], db: Database, clock: list[float], app: FastAPI
) -> None:
    async with other_app(rate_limit_per_minute=2) as limited:
        statuses = [(await limited.get("/v1/offers", headers=OPERATOR)).status_code for _ in "abc"]
    assert statuses == [200, 200, 429]
    assert (await counters(db))["bootstrap"] == 3


async def test_workers_share_the_count(
    client: AsyncClient,
    db: Database,
    other_app: Callable[..., AsyncClient],
    clock: list[float],
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    # Two apps with their own engines and pools: two worker processes as far as the
    # database can tell. Their requests interleave, in turn and all at once.
    async with (
        other_app(rate_limit_per_minute=10) as one,
        other_app(rate_limit_per_minute=10) as two,
    ):
        in_turn = [
            (await worker.get("/v1/accelerators", headers=key)).status_code
            for worker in (one, two, one, two)
        ]
        assert in_turn == [200] * 4
        at_once = await asyncio.gather(
            *(worker.get("/v1/accelerators", headers=key) for worker in (one, two) * 8)
        )
    statuses = sorted(r.status_code for r in at_once)
    assert statuses == [200] * 6 + [429] * 10


def test_counters_are_atomic_across_processes(database_url: str, app: FastAPI) -> None:
    # Real processes, each its own interpreter, engine and pool, incrementing one
    # counter at once: every count from 1 to the total is handed out exactly once.
    script = (
        "import asyncio, sys\n"
        "from app.core.db import Database\n"
        "from app.core.ratelimit import RateLimitCounters\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    hits = RateLimitCounters(db)\n"
        "    got = [(await hits.hit('process-test', 60)).count for _ in range(25)]\n"
        "    await db.dispose()\n"
        "    print(' '.join(map(str, got)))\n"
        "asyncio.run(main())\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    counts: list[int] = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        counts += [int(n) for n in out.split()]
    assert sorted(counts) == list(range(1, 101))


async def test_self_registration_is_limited_per_client_address(
    other_app: Callable[..., AsyncClient], db: Database, clock: list[float], app: FastAPI
) -> None:
    def provider() -> dict[str, Any]:
        return {
            "name": "Self-registered",
            "kind": "matchmaking_partner",
            "unified_social_credit_code": credit_code(),
            "region_code": "330110",
        }

    def enterprise() -> dict[str, Any]:
        return {
            "name": "Self-registered",
            "unified_social_credit_code": credit_code(),
            "region_code": "330110",
        }

    async with (
        other_app(registration_rate_limit_per_minute=2, client=("203.0.113.7", 4000)) as first,
        other_app(registration_rate_limit_per_minute=2, client=("203.0.113.8", 4000)) as second,
    ):
        assert (await first.post("/v1/providers", json=provider())).status_code == 201
        assert (await first.post("/v1/enterprises", json=enterprise())).status_code == 201
        refused = await first.post("/v1/providers", json=provider())
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "45"
        # A header that is not a bearer key does not make a registration a keyed request.
        sneaky = await first.post(
            "/v1/enterprises", json=enterprise(), headers={"Authorization": "Basic x"}
        )
        assert_problem(sneaky, 429)
        # Another address has its own count.
        assert (await second.post("/v1/enterprises", json=enterprise())).status_code == 201
    registered = await counters(db)
    assert registered["register:203.0.113.7"] == 4
    assert registered["register:203.0.113.8"] == 1


async def test_health_docs_and_metrics_are_never_limited(
    client: AsyncClient, other_app: Callable[..., AsyncClient], clock: list[float], db: Database
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    async with other_app(rate_limit_per_minute=1) as limited:
        await limited.get("/v1/offers", headers=key)
        assert_problem(await limited.get("/v1/offers", headers=key), 429)
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"):
            for _ in range(3):
                resp = await limited.get(path, headers=key)
                assert resp.status_code == 200, path


async def test_requests_bound_for_a_401_write_no_counter(
    other_app: Callable[..., AsyncClient], db: Database, clock: list[float], app: FastAPI
) -> None:
    async with other_app(rate_limit_per_minute=1) as limited:
        for headers in ({}, bearer("cm_" + "Z" * 43), {"Authorization": "Basic abc"}):
            for _ in range(3):
                assert (await limited.get("/v1/offers", headers=headers)).status_code == 401
    assert await counters(db) == {}


async def test_zero_turns_rate_limiting_off(
    client: AsyncClient, other_app: Callable[..., AsyncClient], db: Database, clock: list[float]
) -> None:
    enterprise = await create_enterprise(client)
    async with other_app(rate_limit_per_minute=0, registration_rate_limit_per_minute=0) as free:
        for _ in range(5):
            resp = await free.get("/v1/accelerators", headers=bearer(enterprise["api_key"]))
            assert resp.status_code == 200
        for _ in range(3):
            registered = await free.post(
                "/v1/providers",
                json={
                    "name": "Unlimited",
                    "kind": "matchmaking_partner",
                    "unified_social_credit_code": credit_code(),
                    "region_code": "330110",
                },
            )
            assert registered.status_code == 201
    assert {p for p in await counters(db) if not p.startswith("key_")} <= {"bootstrap"}


async def test_old_windows_are_pruned(
    client: AsyncClient, other_app: Callable[..., AsyncClient], db: Database, clock: list[float]
) -> None:
    async with db.sessionmaker() as session:
        session.add_all(
            [
                RateLimitCounter(principal="key_old", window_start=60, count=7),
                RateLimitCounter(
                    principal="bootstrap", window_start=int(T) // 60 * 60 - 60, count=1
                ),
            ]
        )
        await session.commit()
    async with other_app(rate_limit_per_minute=100) as fresh:
        assert (await fresh.get("/v1/offers", headers=OPERATOR)).status_code == 200
    async with db.sessionmaker() as session:
        windows = (await session.scalars(select(RateLimitCounter.window_start))).all()
    assert set(windows) == {int(T) // 60 * 60}


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.PostgresConnectionError("INSERT INTO rate_limit_counters key_hash=h"),
        sqlite3.OperationalError("INSERT INTO rate_limit_counters key_hash=h: database is locked"),
        ConnectionRefusedError(111, "Connect call failed INSERT INTO rate_limit_counters"),
    ],
    ids=["postgresql", "sqlite", "network"],
)
async def test_a_failing_counter_lets_requests_through(
    client: AsyncClient,
    other_app: Callable[..., AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    async def broken(*args: Any) -> int:
        raise error

    monkeypatch.setattr(ratelimit.RateLimitCounters, "_run", broken)
    async with other_app(rate_limit_per_minute=1) as limited:
        for _ in range(3):
            assert (await limited.get("/v1/offers", headers=OPERATOR)).status_code == 200
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "rate_limit.unavailable"]
    assert warnings
    assert "INSERT" not in warnings[0].getMessage()


async def test_a_rate_limited_create_is_not_kept_as_its_idempotent_answer(
    client: AsyncClient, other_app: Callable[..., AsyncClient], clock: list[float], db: Database
) -> None:
    provider = await create_provider(client)
    headers = {**bearer(provider["api_key"]), "Idempotency-Key": "retry-me"}
    async with other_app(rate_limit_per_minute=1) as limited:
        await limited.get("/v1/offers", headers=headers)
        body = make_offer_body()
        assert_problem(await limited.post("/v1/offers", json=body, headers=headers), 429)
        clock[0] = T + 60
        retried = await limited.post("/v1/offers", json=body, headers=headers)
        assert retried.status_code == 201, retried.text
    assert await count_offers(db) == 1


async def test_a_keyed_post_is_counted_once_and_claims_nothing_over_the_limit(
    client: AsyncClient, other_app: Callable[..., AsyncClient], clock: list[float], db: Database
) -> None:
    # A POST with an Idempotency-Key is counted in the statement that claims its key
    # (one statement on PostgreSQL): once, replays included, and over the limit the
    # key is not claimed, so the same request runs once the window turns.
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    first, second = make_offer_body(), make_offer_body()
    async with other_app(rate_limit_per_minute=3) as limited:
        created = await limited.post(
            "/v1/offers", json=first, headers={**key, "Idempotency-Key": "a"}
        )
        assert created.status_code == 201, created.text
        replayed = await limited.post(
            "/v1/offers", json=first, headers={**key, "Idempotency-Key": "a"}
        )
        assert replayed.status_code == 201
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json() == created.json()
        other = await limited.post(
            "/v1/offers", json=second, headers={**key, "Idempotency-Key": "b"}
        )
        assert other.status_code == 201
        refused = await limited.post(
            "/v1/offers", json=make_offer_body(), headers={**key, "Idempotency-Key": "c"}
        )
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "45"
        keys = await client.get("/v1/api-keys", params={"role": "provider"}, headers=OPERATOR)
        key_id = next(k["id"] for k in keys.json()["items"] if k["provider_id"] == provider["id"])
        assert (await counters(db))[key_id] == 4
        async with db.sessionmaker() as session:
            records = await session.scalar(select(func.count()).select_from(IdempotencyRecord))
        assert records == 2  # "a" and "b"; "c" was refused before its claim
        assert await count_offers(db) == 2
        clock[0] = T + 60
        retried = await limited.post(
            "/v1/offers", json=make_offer_body(), headers={**key, "Idempotency-Key": "c"}
        )
        assert retried.status_code == 201, retried.text
    assert await count_offers(db) == 3


async def test_a_failing_prune_after_the_count_never_fails_the_request(
    client: AsyncClient,
    other_app: Callable[..., AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
) -> None:
    # On PostgreSQL the count and the claim are one statement, and the old windows are
    # dropped after it: failing there, the request must run once, not claim its own key
    # again (and answer 409 "in progress").
    async def broken(*args: Any) -> None:
        raise asyncpg.PostgresConnectionError("DELETE FROM rate_limit_counters")

    monkeypatch.setattr(ratelimit.RateLimitCounters, "prune", broken)
    provider = await create_provider(client)
    headers = {**bearer(provider["api_key"]), "Idempotency-Key": "prune"}
    async with other_app(rate_limit_per_minute=5) as limited:
        created = await limited.post("/v1/offers", json=make_offer_body(), headers=headers)
    assert created.status_code == 201, created.text
    assert await count_offers(db) == 1


async def test_counters_are_one_row_per_key_and_window(
    client: AsyncClient, db: Database, clock: list[float]
) -> None:
    # The shared app (generous default) counts as well: one row, however many requests.
    for _ in range(5):
        await client.get("/v1/accelerators", headers=OPERATOR)
    async with db.sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(RateLimitCounter))
    assert rows == 1
    assert (await counters(db))["bootstrap"] == 5
    assert OPERATOR_KEY not in json.dumps(await counters(db))


def test_every_documented_operation_declares_429_when_it_takes_a_key(app: FastAPI) -> None:
    document = app.openapi()
    for method, path in document_operations(document):
        op = document["paths"][path][method.lower()]
        if OPERATIONS[(method, path)].public:
            continue
        assert "429" in op["responses"], (method, path)
