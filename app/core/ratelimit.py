"""Rate limits per API key, in fixed one-minute windows counted in the database.

Every worker process on every host counts against the same numbers: a request
adds one to its principal's counter for the current window with one atomic
upsert (`INSERT … ON CONFLICT … DO UPDATE SET count = count + 1 RETURNING
count`; PostgreSQL, and SQLite ≥ 3.35), in a transaction of its own that ends
before the request's own opens. Over the limit the answer is 429
problem+json with `Retry-After`, the seconds to the end of the window.

Who is counted:
- a request with an API key: that key, by its id, which the same statement
  finds from the key's hash, so an unknown or revoked key inserts nothing and
  is left to the API's 401;
- the configured bootstrap operator key: `bootstrap`;
- a keyless self-registration (`POST /v1/providers`, `POST /v1/enterprises`):
  the client's IP, under a lower limit of its own.

Nothing else is counted, so health, readiness, docs and `/metrics` are exempt
and a request bound for a 401 costs no write. The first request of each window
in a process also deletes the windows before it (a range delete on the primary
key). A counter that cannot be written lets the request through: the limiter
protects the database, it must not become the reason the API is down.
"""

import hmac
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    delete,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.core.asgi import header, send_problem
from app.core.db import STATEMENT_ERRORS, Database, StatementRunner
from app.core.security import LIVE_KEY, Principal, hash_key
from app.models import ApiKey, RateLimitCounter

log = logging.getLogger("computematch.ratelimit")

WINDOW_SECONDS = 60
# Keyless POSTs that create something: self-registration of providers and enterprises.
REGISTRATION_PATHS = frozenset({"/v1/providers", "/v1/enterprises"})
BOOTSTRAP = "bootstrap"


def now() -> float:
    """The clock the windows are cut from (tests move it)."""
    return time.time()


@dataclass(frozen=True)
class Hit:
    """A counting statement's row: who was counted, the window's count so far (this
    request included) and, for an API key, whom it acts for."""

    principal: str  # the key's id, or the subject's name
    count: int
    owner: Principal | None = None

    @classmethod
    def of(cls, row: Sequence[Any]) -> "Hit":
        """From (principal, count, role, provider_id, enterprise_id)."""
        principal, count, role, provider_id, enterprise_id = row
        owner = (
            Principal(
                role=role,
                key_id=str(principal),
                provider_id=provider_id,
                enterprise_id=enterprise_id,
            )
            if role is not None
            else None
        )
        return cls(str(principal), int(count), owner)


class RateLimitCounters:
    """The `rate_limit_counters` table: one atomic increment per counted request.

    Each statement is a transaction of its own, on connections of the limiter's own
    (`StatementRunner`), so that it never waits for a connection a request holds; on
    PostgreSQL it does not wait for the WAL flush either (a crash can lose the last
    moment's counts, harmless for a counter).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pruned_before: int | None = None
        self._runner = StatementRunner(db, durable=False)
        self._statements = _statements(db.is_sqlite)

    async def hit(self, principal: str, window: int) -> Hit:
        """Count one request of `principal` in `window`."""
        counted = await self._count("hit", {"principal": principal, "window": window})
        assert counted is not None
        return counted

    async def hit_key(self, key_hash: str, window: int) -> Hit | None:
        """Count one request of the live key with this hash, or None if no live key has
        this hash."""
        return await self._count("hit_key", {"key_hash": key_hash, "window": window})

    def statement(self, name: str) -> Any:
        """`hit` or `hit_key`: for a caller that counts within a statement of its own."""
        return self._statements[name]

    async def prune(self, window: int) -> None:
        """The first count of a window in this process drops the windows before it."""
        if self._pruned_before != window:
            self._pruned_before = window
            await self._run("prune", {"window": window})

    async def _count(self, name: str, params: dict[str, Any]) -> Hit | None:
        rows = await self._run(name, params)
        await self.prune(params["window"])
        return Hit.of(rows[0]) if rows else None

    async def _run(self, name: str, params: dict[str, Any]) -> list[Any]:
        return await self._runner.run(self._statements[name], params)


def _statements(is_sqlite: bool) -> dict[str, Any]:
    """The counter's statements, in the backend's own INSERT for its ON CONFLICT."""
    insert = sqlite.insert if is_sqlite else postgresql.insert
    table = RateLimitCounter.__table__
    window = bindparam("window", type_=BigInteger)

    # The row being counted, by name: SQLAlchemy would add the table to the subqueries'
    # FROM instead (it does not correlate a RETURNING's subquery).
    counted_principal = literal_column(f"{RateLimitCounter.__tablename__}.principal", String)

    def counted(stmt: Any) -> Any:
        # The key's owner comes back with the count (NULL for a subject that is not a
        # key), so that the API need not look the key up again (app.core.security).
        owner = [
            select(column).where(ApiKey.id == counted_principal).scalar_subquery().label(name)
            for name, column in (
                ("role", ApiKey.role),
                ("provider_id", ApiKey.provider_id),
                ("enterprise_id", ApiKey.enterprise_id),
            )
        ]
        return stmt.on_conflict_do_update(
            index_elements=[table.c.window_start, table.c.principal],
            set_={"count": table.c.count + 1},
        ).returning(table.c.principal, table.c.count, *owner)

    live_key = select(ApiKey.id, window, literal(1, Integer)).where(
        ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
    )
    return {
        "hit": counted(
            insert(RateLimitCounter).values(
                principal=bindparam("principal"), window_start=window, count=1
            )
        ),
        # The key is found by its hash in the same statement: an unknown or revoked
        # key selects no row, so nothing is written and nothing is returned.
        "hit_key": counted(
            insert(RateLimitCounter).from_select(["principal", "window_start", "count"], live_key)
        ),
        "prune": delete(RateLimitCounter).where(RateLimitCounter.window_start < window),
    }


@dataclass(frozen=True)
class Subject:
    """What a request is counted against, in which window."""

    kind: str  # "key": an API key, by its hash; "principal": a name (bootstrap, an address)
    who: str
    limit: int
    window: int
    started: float

    def params(self) -> dict[str, Any]:
        """The parameters of its counting statement (`RateLimitCounters.statement`)."""
        if self.kind == "key":
            return {"key_hash": self.who, "window": self.window}
        return {"principal": self.who, "window": self.window}

    @property
    def statement(self) -> str:
        return "hit_key" if self.kind == "key" else "hit"


@dataclass(frozen=True)
class Counted:
    subject: Subject
    principal: str  # the key's id, or the subject's name
    count: int  # the window's count, this request included

    @property
    def over(self) -> bool:
        return self.count > self.subject.limit


# scope["state"][COUNTED]: the request was counted already (a Counted, or None: nothing
# to count, or the counter unavailable), by a middleware outside this one.
COUNTED = "rate_limit_counted"


class RateLimiter:
    """Who a request is counted against, the count, and the refusal (429)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.per_key = settings.rate_limit_per_minute
        self.per_registration = settings.registration_rate_limit_per_minute
        operator_key = settings.operator_key
        self.operator_key = operator_key.get_secret_value().encode() if operator_key else None
        self.counters = RateLimitCounters(db)

    def subject(self, scope: Scope) -> Subject | None:
        """What to count this request against, or None if it is not counted."""
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return None
        started = now()
        window = int(started) // WINDOW_SECONDS * WINDOW_SECONDS
        # Parsed as the API's HTTPBearer parses it, so both see the same key.
        scheme, credentials = get_authorization_scheme_param(header(scope, b"authorization"))
        if scheme.lower() == "bearer" and credentials:
            if not self.per_key:
                return None
            if self.operator_key is not None and hmac.compare_digest(
                credentials.encode(), self.operator_key
            ):
                return Subject("principal", BOOTSTRAP, self.per_key, window, started)
            return Subject("key", hash_key(credentials), self.per_key, window, started)
        # No usable key: the API answers 401, except a self-registration, counted by address.
        if (
            self.per_registration
            and scope["method"] == "POST"
            and scope["path"] in REGISTRATION_PATHS
        ):
            client = scope.get("client")
            address = client[0] if client else "unknown"
            return Subject(
                "principal", f"register:{address}", self.per_registration, window, started
            )
        return None

    async def count(self, scope: Scope, subject: Subject) -> Counted | None:
        """Count the request: None for a key no live key has, or a counter unavailable."""
        try:
            if subject.kind == "key":
                hit = await self.counters.hit_key(subject.who, subject.window)
            else:
                hit = await self.counters.hit(subject.who, subject.window)
        except STATEMENT_ERRORS as exc:
            self.unavailable(exc)
            return None
        return self.counted(scope, subject, hit)

    def counted(self, scope: Scope, subject: Subject, hit: Hit | None) -> Counted | None:
        """The count a statement returned, or None (no live key has the key's hash)."""
        if hit is None:
            return None
        if subject.kind == "key" and hit.owner is not None:
            # The key is live, and its owner known: the API need not look it up again
            # (app.core.security).
            scope.setdefault("state", {})[LIVE_KEY] = (subject.who, hit.owner)
        return Counted(subject, hit.principal, hit.count)

    async def prune(self, window: int) -> None:
        """The windows before this one dropped, for a caller that counted on its own."""
        try:
            await self.counters.prune(window)
        except STATEMENT_ERRORS as exc:
            self.unavailable(exc)

    @staticmethod
    def unavailable(exc: BaseException) -> None:
        # The error's text may quote SQL parameters (a key's hash): log its kind only.
        log.warning(
            "rate limit counter unavailable (%s); request let through",
            type(exc).__name__,
            extra={"event": "rate_limit.unavailable"},
        )

    async def refuse(self, scope: Scope, send: Send, counted: Counted) -> None:
        subject = counted.subject
        log.info(
            "rate limited: %s over %d a minute",
            counted.principal,
            subject.limit,
            extra={
                "event": "rate_limit.exceeded",
                "principal": counted.principal,
                "limit": subject.limit,
            },
        )
        retry_after = min(
            WINDOW_SECONDS,
            max(1, math.ceil(subject.window + WINDOW_SECONDS - subject.started)),
        )
        by_key = subject.kind == "key" or subject.who == BOOTSTRAP
        whom = "this API key" if by_key else "this address"
        what = "requests" if by_key else "self-registrations"
        await send_problem(
            scope,
            send,
            429,
            "rate-limited",
            "Too many requests",
            f"{whom} is limited to {subject.limit} {what} a minute; retry in {retry_after} s",
            [(b"retry-after", str(retry_after).encode())],
        )


class RateLimitMiddleware:
    """429 with Retry-After once a key (or a self-registering IP) is over its limit.

    A request that an outer middleware counted already (`COUNTED`: the idempotency
    middleware counts a keyed POST in the statement that claims its key) is not
    counted again; that middleware refused it if it was over."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if COUNTED in scope.get("state", {}):
            await self.app(scope, receive, send)
            return
        subject = self.limiter.subject(scope)
        counted = await self.limiter.count(scope, subject) if subject is not None else None
        if counted is not None and counted.over:
            await self.limiter.refuse(scope, send, counted)
            return
        await self.app(scope, receive, send)
