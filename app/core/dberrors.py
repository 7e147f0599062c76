"""Which database errors are the database's weather, not the service's bugs.

One place decides, for both drivers (asyncpg, aiosqlite/sqlite3) and SQLAlchemy's
wrappers of them: a lost connection, a serialization failure or deadlock the database
chose to abort, a connection found busy with another operation, a pool or lock that
did not free up in time. Such a request did not happen (its transaction rolled back),
and the same request may succeed a moment later: it is answered 503 with
`Retry-After`, and never kept as an idempotent answer. Every other error is a bug: 500.
"""

import sqlite3
from collections.abc import Iterator
from enum import Enum

import asyncpg
from sqlalchemy import exc as sa_exc

RETRY_AFTER_SECONDS = 1


class Fault(Enum):
    DISCONNECT = "disconnect"  # the connection is gone: discard it (and its pool's peers)
    CONFLICT = "conflict"  # serialization failure, deadlock: the transaction was aborted
    BUSY = "busy"  # a connection, pool or lock not free in time; the server overloaded


# SQLSTATEs (both drivers' wrappers carry them as `sqlstate` or `pgcode`).
_CONFLICT_STATES = frozenset({"40001", "40P01"})
_DISCONNECT_STATES = frozenset({"57P01", "57P02", "57P03"})  # and class 08
_BUSY_STATES = frozenset({"53300", "55P03", "57014"})  # too many connections, lock, timeout

_DISCONNECT_TEXT = ("connection is closed", "connection was closed", "connection lost")
_BUSY_TEXT = ("another operation is in progress",)
_SQLITE_BUSY_TEXT = ("database is locked", "database is busy", "database table is locked")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (`orig`) and what caused it, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 16:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            (
                orig if isinstance(orig, BaseException) else None,
                current.__cause__,
                current.__context__,
            )
        )


def _classify_one(error: BaseException) -> Fault | None:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return Fault.DISCONNECT
    if isinstance(error, sa_exc.DisconnectionError):
        return Fault.DISCONNECT
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection free in time
        return Fault.BUSY
    if isinstance(error, asyncpg.PostgresConnectionError):
        return Fault.DISCONNECT
    if isinstance(error, asyncpg.InternalClientError):
        return Fault.BUSY
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(state, str):
        if state in _CONFLICT_STATES:
            return Fault.CONFLICT
        if state.startswith("08") or state in _DISCONNECT_STATES:
            return Fault.DISCONNECT
        if state in _BUSY_STATES:
            return Fault.BUSY
    if isinstance(error, asyncpg.InterfaceError | sa_exc.InterfaceError):
        text = str(error)
        if any(t in text for t in _DISCONNECT_TEXT):
            return Fault.DISCONNECT
        if any(t in text for t in _BUSY_TEXT):
            return Fault.BUSY
    if isinstance(error, sqlite3.OperationalError) and any(
        t in str(error) for t in _SQLITE_BUSY_TEXT
    ):
        return Fault.BUSY
    if isinstance(error, ConnectionError):  # refused, reset, broken pipe: the socket's
        return Fault.DISCONNECT
    return None


def classify(error: BaseException) -> Fault | None:
    """What kind of transient fault the error is, or None for a bug (a 500)."""
    for link in _chain(error):
        fault = _classify_one(link)
        if fault is not None:
            return fault
    return None


def is_transient(error: BaseException) -> bool:
    return classify(error) is not None


def is_disconnect(error: BaseException) -> bool:
    return classify(error) is Fault.DISCONNECT


def problem_detail(fault: Fault) -> str:
    if fault is Fault.CONFLICT:
        return "the database aborted the request to keep concurrent ones consistent; retry it"
    if fault is Fault.DISCONNECT:
        # Lost at a COMMIT, the change may have been made: a retry with the same
        # Idempotency-Key answers it either way.
        return (
            "the connection to the database was lost; retry the request "
            "(with the same Idempotency-Key, if it had one)"
        )
    return "the database is busy; retry it"
