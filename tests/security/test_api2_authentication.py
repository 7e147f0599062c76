"""API2 Broken authentication.

Keys are random (256 bits from `secrets`), stored only as SHA-256 hashes,
compared in constant time, revocable with immediate effect on every worker,
accepted only in the Authorization header, and never logged. The whole test
run's log is searched for keys too (tests/security/log_guard.py).
"""

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from app.config import Settings
from app.core import security
from app.core.db import Base, Database
from app.models import ApiKey
from tests.conftest import OPERATOR_KEY
from tests.factories import OPERATOR, bearer, create_provider, credit_code, offer_body
from tests.security.log_guard import KEY_PATTERN

KEY_FORMAT = re.compile(r"^cm_[A-Za-z0-9_-]{43}$")  # token_urlsafe(32): 32 random bytes


def test_keys_carry_at_least_128_random_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        asked.append(nbytes or 32)
        return str(real(nbytes))

    # From the operating system's CSPRNG (`secrets`), at least 16 bytes a key.
    monkeypatch.setattr(secrets, "token_urlsafe", spy)
    keys = {security.generate_key() for _ in range(2000)}
    assert asked
    assert min(asked) * 8 >= 128
    assert len(keys) == 2000
    for key in keys:
        assert KEY_FORMAT.match(key), key
        assert KEY_PATTERN.fullmatch(key)
    # 43 characters of a 64-letter alphabet: 258 bits of encoding for 256 of entropy.
    assert len(keys.pop().removeprefix("cm_")) * 6 >= 256


async def every_row_text(db: Database) -> str:
    async with db.engine.connect() as conn:
        parts = []
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


async def test_keys_are_stored_only_as_hashes(client: AsyncClient, db: Database) -> None:
    made = await client.post(
        "/v1/api-keys",
        json={"role": "operator", "name": "ops"},
        headers={**OPERATOR, "Idempotency-Key": "key-1"},
    )
    assert made.status_code == 201, made.text
    provider = await client.post(
        "/v1/providers",
        json={
            "name": "自助注册",
            "kind": "matchmaking_partner",
            "unified_social_credit_code": credit_code(),
            "region_code": "330110",
        },
        headers={"Idempotency-Key": "self-1"},
    )
    assert provider.status_code == 201, provider.text
    enterprise = await client.post(
        "/v1/enterprises",
        json={
            "name": "自助注册企业",
            "unified_social_credit_code": credit_code("330106"),
            "region_code": "330106",
        },
    )
    assert enterprise.status_code == 201, enterprise.text
    shown = [made.json()["key"], provider.json()["api_key"], enterprise.json()["api_key"]]
    for secret in shown:
        assert KEY_FORMAT.match(secret)
        assert (await client.get("/v1/accelerators", headers=bearer(secret))).status_code == 200

    # Not one row of any table (audit log, idempotency records, counters…) holds a key.
    text = await every_row_text(db)
    for secret in shown:
        assert secret not in text
        assert secret.removeprefix("cm_") not in text
    async with db.sessionmaker() as session:
        hashes = set((await session.scalars(select(ApiKey.key_hash))).all())
    for secret in shown:
        assert hashlib.sha256(secret.encode()).hexdigest() in hashes


async def test_keys_are_compared_in_constant_time(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = await create_provider(client)
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await client.get("/v1/offers", headers=bearer(provider["api_key"]))).status_code == 200
    assert (await client.get("/v1/offers", headers=OPERATOR)).status_code == 200
    # The bootstrap key is compared with compare_digest, and so is a stored key's hash.
    digest = hashlib.sha256(provider["api_key"].encode()).hexdigest()
    assert any(digest in (a, b) for a, b in compared)
    assert any(OPERATOR_KEY.encode() in (a, b) for a, b in compared)


async def test_a_revoked_key_is_refused_on_the_very_next_request_by_every_worker(
    client: AsyncClient, other_app: Callable[..., AsyncClient]
) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    # The first worker counts requests (its rate limiter checks the key is live), the
    # second does not (its API looks the key up); both have seen the key before.
    async with other_app(rate_limit_per_minute=0) as second_worker:
        assert (await client.get("/v1/offers", headers=key)).status_code == 200
        assert (await second_worker.get("/v1/offers", headers=key)).status_code == 200
        keys = await client.get("/v1/api-keys", params={"role": "provider"}, headers=OPERATOR)
        key_id = next(k["id"] for k in keys.json()["items"] if k["provider_id"] == provider["id"])
        revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=OPERATOR)
        assert revoked.status_code == 200, revoked.text
        # A worker may remember whom a key acts for, never that it is live: every
        # worker refuses it on the very next request.
        for worker in (client, second_worker):
            refused = await worker.get("/v1/offers", headers=key)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            write = await worker.post("/v1/offers", json=offer_body(), headers=key)
            assert write.status_code == 401


async def test_a_counted_request_finds_its_key_in_the_count_alone(
    client: AsyncClient, other_app: Callable[..., AsyncClient]
) -> None:
    # The rate limiter's count finds the key live and returns whom it acts for, so
    # the API reads no key of its own; without the limiter, the API looks it up.
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    # On every engine: the second app has its own.
    event.listen(Engine, "before_cursor_execute", record)
    try:
        created = await client.post("/v1/offers", json=offer_body(), headers=key)
        assert created.status_code == 201, created.text
        assert created.json()["provider_id"] == provider["id"]
        assert not [s for s in seen if "FROM api_keys" in s]
        async with other_app(rate_limit_per_minute=0) as uncounted:
            listed = await uncounted.get("/v1/offers", headers=key)
        assert listed.status_code == 200
        assert [o["id"] for o in listed.json()["items"]] == [created.json()["id"]]
        assert [s for s in seen if "FROM api_keys" in s]
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def test_keys_are_taken_from_the_authorization_header_only(client: AsyncClient) -> None:
    provider = await create_provider(client)
    secret = provider["api_key"]
    for params, headers in (
        ({"api_key": secret}, {}),
        ({"access_token": secret}, {}),
        ({}, {"X-API-Key": secret}),
        ({}, {"Cookie": f"api_key={secret}"}),
        ({}, {"Authorization": f"Basic {secret}"}),
        ({}, {"Authorization": secret}),
    ):
        resp = await client.get("/v1/offers", params=params, headers=headers)
        assert resp.status_code == 401, (params, headers)


def test_a_weak_bootstrap_key_is_refused_in_production() -> None:
    for weak in ("changeme", "secret", "short-key"):
        with pytest.raises(ValidationError):
            Settings(environment="production", operator_key=weak)
    Settings(environment="production", operator_key="x" * 40)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def every_record() -> Iterator[list[logging.LogRecord]]:
    """Every record any logger writes, at every level, while the test runs."""
    handler = Capture()
    loggers = [logging.getLogger(), logging.getLogger("computematch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler.records
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def record_text(record: logging.LogRecord) -> str:
    return record.getMessage() + repr(vars(record)) + (record.exc_text or "")


async def test_no_key_is_ever_logged(
    client: AsyncClient,
    other_app: Callable[..., AsyncClient],
    every_record: list[logging.LogRecord],
) -> None:
    made = await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
    operator_secret = made.json()["key"]
    registered = await client.post(
        "/v1/enterprises",
        json={
            "name": "日志企业",
            "unified_social_credit_code": credit_code(),
            "region_code": "330108",
        },
        headers={"Idempotency-Key": "log-1"},
    )
    enterprise_secret = registered.json()["api_key"]
    replay = await client.post(
        "/v1/enterprises",
        json={
            "name": "日志企业",
            "unified_social_credit_code": registered.json()["unified_social_credit_code"],
            "region_code": "330108",
        },
        headers={"Idempotency-Key": "log-1"},
    )
    assert replay.json()["api_key"] == enterprise_secret
    provider = await create_provider(client)
    unknown = "cm_" + "A" * 43
    for secret in (operator_secret, enterprise_secret, provider["api_key"], unknown):
        await client.get("/v1/offers", headers=bearer(secret))
        await client.post("/v1/offers", json=offer_body(), headers=bearer(secret))
        await client.get("/v1/offers/off_missing", headers=bearer(secret))
    await client.delete(f"/v1/api-keys/{made.json()['id']}", headers=OPERATOR)
    assert (await client.get("/v1/offers", headers=bearer(operator_secret))).status_code == 401
    async with other_app(rate_limit_per_minute=1) as limited:
        for _ in range(3):
            await limited.get("/v1/offers", headers=bearer(provider["api_key"]))

    assert any(getattr(r, "event", None) == "http.request" for r in every_record)
    shown = [operator_secret, enterprise_secret, provider["api_key"], unknown, OPERATOR_KEY]
    for record in every_record:
        text = record_text(record)
        for secret in shown:
            assert secret not in text, f"a key in {record.name}: {record.getMessage()[:200]}"
        assert not KEY_PATTERN.search(text), f"a key in {record.name}"
