"""Pure ASGI middleware: request context, body limits, idempotent POSTs."""

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Integer, Table, bindparam, delete, exists, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.base import Executable
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import dberrors
from app.core.asgi import header, send_problem
from app.core.context import reset_request_id, set_request_id
from app.core.db import STATEMENT_ERRORS, Database, Statement, StatementRunner
from app.core.ratelimit import Counted, Hit, RateLimiter
from app.core.state import request_state
from app.core.timeutil import utcnow
from app.models import IdempotencyRecord

if TYPE_CHECKING:
    from app.core.metrics import Metrics

access_log = logging.getLogger("computematch.access")
error_log = logging.getLogger("computematch.errors")

# OWASP's REST security headers, on every response (the docs pages skip the last two:
# the browser may cache them, and Swagger UI runs inline script).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
NOT_FOR_DOCS = frozenset({b"cache-control", b"content-security-policy"})
CSP = b"content-security-policy"
# The console's pages load their own style sheet and icon, and post forms to themselves;
# nothing inline, nothing from elsewhere, never framed.
CONSOLE_CSP = (
    b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    b"base-uri 'none'; frame-ancestors 'none'"
)
CONSOLE_PATH = "/console"
REFERRER_POLICY = b"referrer-policy"
# Same-origin, not no-referrer: under no-referrer a browser posts the console's forms
# with `Origin: null`, and the console checks that its forms come from itself.
CONSOLE_REFERRER_POLICY = b"same-origin"
DOCS_PATHS = ("/docs", "/redoc", "/static-docs")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """A request id (taken from X-Request-ID or made), security headers, one log line,
    and the request counted in the app's metrics."""

    def __init__(self, app: ASGIApp, metrics: "Metrics | None" = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        request_state(scope).request_id = request_id
        token = set_request_id(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}
        is_docs = scope["path"].startswith(DOCS_PATHS)
        is_console = scope["path"].startswith(CONSOLE_PATH)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                for name, value in SECURITY_HEADERS:
                    if is_docs and message["status"] < 400 and name in NOT_FOR_DOCS:
                        continue
                    if is_console and name == CSP:
                        value = CONSOLE_CSP
                    elif is_console and name == REFERRER_POLICY:
                        value = CONSOLE_REFERRER_POLICY
                    headers.append((name, value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as error:
            if status_holder["started"]:
                raise
            # No handler answered. Starlette's last resort would answer outside this
            # middleware (no security headers, no request id): answer here, say nothing
            # internal, and log the whole error with the request's id.
            fault = dberrors.classify(error)
            if fault is not None:
                # The database's weather, not a bug: retryable, and never stored as a
                # key's answer (the idempotency middleware inside saw the error).
                error_log.warning(
                    "%s on %s %s: %s (%s)",
                    fault.value,
                    scope["method"],
                    scope["path"],
                    type(error).__name__,
                    error,
                )
                await send_problem(
                    scope,
                    send_wrapper,
                    503,
                    "service-unavailable",
                    "Service unavailable",
                    dberrors.problem_detail(fault),
                    [(b"retry-after", str(dberrors.RETRY_AFTER_SECONDS).encode())],
                )
                return
            error_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_problem(
                scope,
                send_wrapper,
                500,
                "internal-error",
                "Internal server error",
                "An unexpected error occurred; it has been logged.",
            )
        finally:
            principal = _principal_fields(scope)
            # The route's template (/v1/offers/{offer_id}), never the ids in the URL.
            route = getattr(scope.get("route"), "path_format", None)
            path = route or scope["path"]
            status = status_holder["status"]
            elapsed = time.perf_counter() - started
            duration_ms = round(elapsed * 1000, 2)
            if self.metrics is not None:
                self.metrics.observe_request(route or "none", scope["method"], status, elapsed)
            access_log.info(
                "%s %s %s %.1fms",
                scope["method"],
                path,
                status,
                duration_ms,
                extra={
                    "event": "http.request",
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    **principal,
                },
            )
            reset_request_id(token)


def _principal_fields(scope: Scope) -> dict[str, Any]:
    """Who made the request: role and id, and the key's id; never the key itself."""
    principal = request_state(scope).principal
    if principal is None:
        return {"principal_role": None, "principal_id": None, "api_key_id": None}
    return {
        "principal_role": principal.role,
        "principal_id": principal.subject_id,
        "api_key_id": principal.key_id,
    }


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413, declared or streamed."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, paths: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        # Paths whose bodies may be larger (an evidence upload: a 10 MiB file).
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _LimitedRequest(self.app, self.paths.get(scope["path"], self.default_max_bytes)).run(
            scope, receive, send
        )


class _LimitedRequest:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_problem(
                scope,
                send,
                413,
                "payload-too-large",
                "Request body too large",
                f"the body is {declared} bytes; the limit is {self.max_bytes}",
            )
            return
        received = 0
        too_large = False
        started = False

        async def refuse() -> None:
            nonlocal started
            started = True
            await send_problem(
                scope,
                send,
                413,
                "payload-too-large",
                "Request body too large",
                f"the body exceeds the limit of {self.max_bytes} bytes",
            )

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                # The app caught the refusal while reading (FastAPI answers "error
                # parsing the body" with a 400): answer 413 in its place.
                if message["type"] == "http.response.start" and not started:
                    await refuse()
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # Whatever the app made of the refused body, the answer is 413.
            if not too_large:
                raise
            if not started:
                await refuse()


class _BodyTooLarge(Exception):
    pass


REPLAYED_HEADERS = {"content-type", "etag", "location"}
# A claimed record is leased to its request: renewed every LEASE_RENEWAL while the
# request runs, it is taken to have died with its process (killed mid-request, or its
# release failed) once PENDING_TIMEOUT passes unrenewed, and a retry with the same key
# and body may then run the request again. Seconds, not minutes: the client told to
# retry is not refused for long.
PENDING_TIMEOUT = timedelta(seconds=6)
LEASE_RENEWAL = timedelta(seconds=2)


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    state: str
    status: int | None
    headers: dict[str, str]
    body: str | None


def _record_statements(is_sqlite: bool) -> dict[str, Any]:
    """The record's statements, in the backend's own INSERT for its ON CONFLICT."""
    insert = sqlite_insert if is_sqlite else postgresql_insert
    table = cast(Table, IdempotencyRecord.__table__)
    record = (table.c.scope == bindparam("record_scope")) & (table.c.key == bindparam("record_key"))
    claim = insert(table).values(
        scope=bindparam("record_scope"),
        key=bindparam("record_key"),
        fingerprint=bindparam("request_fingerprint"),
        state="pending",
        created_at=bindparam("now"),
    )
    return {
        # One statement claims a new key, or takes over a stale pending record of the
        # same request; it returns a row only if this request may run.
        "claim": _claiming(claim),
        "read": select(
            table.c.fingerprint,
            table.c.state,
            table.c.response_status,
            table.c.response_headers,
            table.c.response_body,
        ).where(record),
        "done": update(table)
        .where(record)
        .values(
            state="done",
            response_status=bindparam("status_code"),
            response_headers=bindparam("replayed_headers"),
            response_body=bindparam("sealed_body"),
        ),
        "forget": delete(table).where(record, table.c.state == "pending"),
        # A claim whose answer the connection lost may have committed: dropped only if
        # the record is still the one this request wrote (its own `created_at`).
        "forget_own": delete(table).where(
            record, table.c.state == "pending", table.c.created_at == bindparam("held")
        ),
        # The lease, renewed only while this request still holds it: `created_at` is
        # the instant it last wrote (a request that took over a stale record wrote its
        # own), so a renewal never takes a record back.
        "renew": update(table)
        .where(record, table.c.state == "pending", table.c.created_at == bindparam("held"))
        .values(created_at=bindparam("now"))
        .returning(table.c.id),
    }


def _claiming(claim: Any) -> Any:
    table = cast(Table, IdempotencyRecord.__table__)
    return claim.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.key],
        set_={"created_at": claim.excluded.created_at},
        where=(table.c.state == "pending")
        & (table.c.fingerprint == claim.excluded.fingerprint)
        & (table.c.created_at < bindparam("stale_before")),
    ).returning(table.c.id)


def _counted_claim(hit: Any) -> Executable:
    """PostgreSQL: the rate limiter's count (`hit`, an upsert returning the principal
    and its count) and the claim, in one statement, the claim made only if the count
    is within `limit`. One row: the claimed record's id or NULL, then the count's row
    (`ratelimit.Hit.of`), all NULL for a key no live key has."""
    table = cast(Table, IdempotencyRecord.__table__)
    counted = hit.cte("counted")
    over = exists().where(counted.c.count > bindparam("limit", type_=Integer))
    claim = postgresql_insert(table).from_select(
        ["scope", "key", "fingerprint", "state", "created_at"],
        select(
            bindparam("record_scope", type_=table.c.scope.type),
            bindparam("record_key", type_=table.c.key.type),
            bindparam("request_fingerprint", type_=table.c.fingerprint.type),
            literal("pending", type_=table.c.state.type),
            bindparam("now", type_=table.c.created_at.type),
        ).where(~over),
    )
    claimed = _claiming(claim).cte("claimed")
    one = select(literal(1).label("one")).subquery("one")
    return select(
        select(claimed.c.id).scalar_subquery().label("claimed"),
        counted.c.principal,
        counted.c.count,
        counted.c.role,
        counted.c.provider_id,
        counted.c.enterprise_id,
    ).select_from(one.outerjoin(counted, true()))


@dataclass
class PendingAnswer:
    """The claimed idempotency record of the request being served, for an endpoint
    that writes its answer in its own transaction (`RequestState.idempotency`).

    Written with the change it answers, a retry can never find the change made but
    the record still pending (a process that died between the two left the key
    answering 409 until the claim went stale, and then the change's own conflict).
    Once the endpoint's transaction commits (`committed`), the middleware writes
    nothing more; otherwise it answers the record as usual.
    """

    done: Executable  # the statement that stores an answer
    record: dict[str, str]
    seal: "ResponseSeal"
    committed: bool = False

    def statement(self, status: int, headers: Mapping[str, str], body: bytes) -> Statement:
        """The statement that stores this answer, for the endpoint's transaction."""
        return self.done, self.values(status, headers, body)

    def values(self, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        return {
            **self.record,
            "status_code": status,
            "replayed_headers": {k: v for k, v in headers.items() if k.lower() in REPLAYED_HEADERS},
            "sealed_body": self.seal.seal(body),
        }


def pending_answer(scope: Scope) -> PendingAnswer | None:
    """The request's claimed record, if it came with an Idempotency-Key."""
    return request_state(scope).idempotency


class IdempotencyMiddleware:
    """`Idempotency-Key` on POST: the same key and body answer the first response again.

    A pending record is committed before the request runs, so a concurrent retry
    with the same key is told the first is still in progress (409) instead of
    running twice; records live in the database, so this holds across processes.
    Each step is one statement on connections of its own (`StatementRunner`): the
    claim before the request's transaction, the answer after it.
    """

    def __init__(self, app: ASGIApp, db: Database, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.records = StatementRunner(db)
        self.statements = _record_statements(db.is_sqlite)
        self.limiter = limiter
        # PostgreSQL: each counting statement of the limiter with the claim, as one.
        self._counted_claims = (
            {name: _counted_claim(limiter.counters.statement(name)) for name in ("hit", "hit_key")}
            if limiter is not None and not db.is_sqlite
            else {}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = header(scope, b"idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255:
            await send_problem(
                scope,
                send,
                422,
                "validation-error",
                "The request is not valid",
                "Idempotency-Key must be 1 to 255 characters",
            )
            return

        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        auth = header(scope, b"authorization") or "anonymous"
        scope_hash = hashlib.sha256(auth.encode()).hexdigest()
        fingerprint = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()
        # Neither the Idempotency-Key nor the response is kept in clear (see ResponseSeal).
        seal = ResponseSeal(auth, key, body)
        record = {
            "record_scope": scope_hash,
            "record_key": hashlib.sha256(key.encode()).hexdigest(),
        }

        now = utcnow()
        try:
            claimed, counted = await self._count_and_claim(
                scope,
                {
                    **record,
                    "request_fingerprint": fingerprint,
                    "now": now,
                    "stale_before": now - PENDING_TIMEOUT,
                },
            )
        except STATEMENT_ERRORS as error:
            if dberrors.is_disconnect(error):
                await self._forget_own_claim(record, now)
            raise
        if counted is not None and counted.over and self.limiter is not None:
            await self.limiter.refuse(scope, send, counted)
            return
        if not claimed:
            await self._answer_existing(scope, send, await self._read(record), fingerprint, seal)
            return

        lease = _Lease(self.records, self.statements["renew"], record, now)
        answer = PendingAnswer(self.statements["done"], record, seal)
        request_state(scope).idempotency = answer
        replay_body = body

        async def replay_receive() -> Message:
            nonlocal replay_body
            chunk, replay_body = replay_body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            lease.end()
            await self._forget(record)
            raise
        lease.end()
        if answer.committed:
            return  # answered in the endpoint's own transaction
        status = captured["status"]
        if status >= 500 or status == 429:
            await self._forget(record)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in captured["headers"]}
        await self.records.run(
            self.statements["done"], answer.values(status, headers, captured["body"])
        )

    async def _forget_own_claim(self, record: dict[str, str], held: datetime) -> None:
        """The claim's connection was lost: the claim may have committed with its answer
        lost, which would hold the key until its lease ran out although nothing runs.
        Dropped if it is still this request's own; a failure leaves it to the lease."""
        try:
            await self.records.run(self.statements["forget_own"], {**record, "held": held})
        except STATEMENT_ERRORS as error:
            error_log.warning("idempotency claim not released (%s)", type(error).__name__)

    async def _forget(self, record: dict[str, str]) -> None:
        """Drop the pending record so that a retry runs the request again. If that
        fails too (the database is gone), the record's lease runs out instead: the
        request's own error, already on its way, is the one to answer."""
        for attempt in (1, 2):
            try:
                await self.records.run(self.statements["forget"], record)
                return
            except STATEMENT_ERRORS as error:
                # A connection the database ended is how a request most often comes to
                # be forgotten; the runner renewed its pool, so once more on a fresh one
                # lets the client's immediate retry run instead of waiting out the lease.
                if attempt == 1 and dberrors.is_disconnect(error):
                    continue
                error_log.warning("idempotency record not released (%s)", type(error).__name__)
                return

    async def _count_and_claim(
        self, scope: Scope, params: dict[str, Any]
    ) -> tuple[bool, Counted | None]:
        """Count the request against its rate limit, then claim the key unless the count
        is over: one statement on PostgreSQL (a keyed POST is a write, so it pays for
        two round trips where a read pays for one). Whether it claimed, and the count."""
        subject = self.limiter.subject(scope) if self.limiter is not None else None
        if subject is None or self.limiter is None:
            return bool(await self.records.run(self.statements["claim"], params)), None
        # Counted here: the rate limiter inside must not count again.
        request_state(scope).counted = True
        counted_claim = self._counted_claims.get(subject.statement)
        if counted_claim is not None:
            try:
                rows = await self.records.run(
                    counted_claim, {**params, **subject.params(), "limit": subject.limit}
                )
            except STATEMENT_ERRORS as exc:
                self.limiter.unavailable(exc)  # and the claim alone, below
                counted = None
            else:
                claimed, *counts = rows[0]
                hit = Hit.of(counts) if counts[0] is not None else None
                counted = self.limiter.counted(scope, subject, hit)
                # After the claim: a failure here must not make the request claim again.
                await self.limiter.prune(subject.window)
                return claimed is not None, counted
        else:
            counted = await self.limiter.count(scope, subject)
        if counted is not None and counted.over:
            return False, counted
        return bool(await self.records.run(self.statements["claim"], params)), counted

    async def _read(self, record: dict[str, str]) -> StoredResponse | None:
        rows = await self.records.run(self.statements["read"], record)
        if not rows:
            return None  # forgotten since the claim failed: the first is still settling
        fingerprint, state, status, headers, body = rows[0]
        if isinstance(headers, str):  # SQLite's raw JSON text
            headers = json.loads(headers)
        return StoredResponse(fingerprint, state, status, headers or {}, body)

    async def _answer_existing(
        self,
        scope: Scope,
        send: Send,
        record: StoredResponse | None,
        fingerprint: str,
        seal: "ResponseSeal",
    ) -> None:
        if record is None:
            await send_problem(
                scope,
                send,
                409,
                "idempotency-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            return
        body = seal.open(record.body or "") if record.state == "done" else b""
        if record.fingerprint != fingerprint or body is None:
            await send_problem(
                scope,
                send,
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used with a different request body or path",
            )
            return
        if record.state != "done" or record.status is None:
            await send_problem(
                scope,
                send,
                409,
                "idempotency-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                [(b"retry-after", b"1")],
            )
            return
        headers = [(k.encode(), v.encode()) for k, v in record.headers.items()]
        headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
        await send({"type": "http.response.start", "status": record.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_RENEWING: "set[asyncio.Task[None]]" = set()  # renewals under way, kept from the GC


class _Lease:
    """Renews a claimed record's lease every `LEASE_RENEWAL` while its request runs.

    A timer, not a task: most requests end before it first fires, and cancelling a
    timer costs nothing. A renewal that fails (the database unreachable) is tried again
    at the next turn; one that finds the record no longer this request's (answered,
    released, or taken over after the lease ran out) ends the lease.
    """

    def __init__(
        self, runner: StatementRunner, statement: Executable, record: dict[str, str], held: Any
    ) -> None:
        self._runner = runner
        self._statement = statement
        self._record = record
        self._held = held
        self._ended = False
        self._timer = asyncio.get_running_loop().call_later(
            LEASE_RENEWAL.total_seconds(), self._renew_soon
        )

    def end(self) -> None:
        # A renewal under way is left to finish: cancelling a statement midway would
        # leave its connection busy. It can only touch a record still pending.
        self._ended = True
        self._timer.cancel()

    def _renew_soon(self) -> None:
        task = asyncio.ensure_future(self._renew())
        _RENEWING.add(task)
        task.add_done_callback(_RENEWING.discard)

    async def _renew(self) -> None:
        if self._ended:
            return
        now = utcnow()
        try:
            renewed = await self._runner.run(
                self._statement, {**self._record, "held": self._held, "now": now}
            )
        except STATEMENT_ERRORS as error:
            error_log.warning("idempotency lease not renewed (%s)", type(error).__name__)
            renewed = [True]  # still this request's, as far as anyone knows
        else:
            if renewed:
                self._held = now
        if renewed and not self._ended:
            self._timer = asyncio.get_running_loop().call_later(
                LEASE_RENEWAL.total_seconds(), self._renew_soon
            )


class ResponseSeal:
    """Encrypts a stored response under a key only the retrying caller can derive.

    A creating POST's response may carry a secret shown once (a new API key), and
    keys are only ever stored hashed. So the record keeps the Idempotency-Key as a
    SHA-256 and the response encrypted (AES-256-GCM, from `cryptography`) under a
    key derived with HKDF from the caller's `Authorization` header, the
    Idempotency-Key and the request body, none of which is stored in clear: a
    retry with all three can read the first response again, a copy of the
    database cannot.
    """

    VERSION = "v2"
    NONCE_BYTES = 12

    def __init__(self, authorization: str, idempotency_key: str, body: bytes = b"") -> None:
        material = (
            authorization.encode()
            + b"\x00"
            + idempotency_key.encode()
            + b"\x00"
            + hashlib.sha256(body).digest()
        )
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"computematch idempotency response",
        ).derive(material)
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes) -> str:
        nonce = os.urandom(self.NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, None)
        return f"{self.VERSION}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str) -> bytes | None:
        """The plaintext, or None if this caller's key does not open it."""
        version, _, text = sealed.partition(".")
        if version != self.VERSION:
            return None
        try:
            raw = base64.b64decode(text.encode(), validate=True)
            return self._aead.decrypt(raw[: self.NONCE_BYTES], raw[self.NONCE_BYTES :], None)
        except (binascii.Error, ValueError, InvalidTag):
            return None
