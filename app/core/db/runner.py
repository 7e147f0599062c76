"""Single statements on connections of their own, for the bookkeeping around a request
(rate-limit counts, idempotency records).
"""

import asyncio
import sqlite3
import threading
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import (
    Executable,
)
from sqlalchemy.engine import make_url

from app.core import dberrors
from app.core.db.driver import compiled_statements
from app.core.db.engine import Database


class StatementRunner:
    """Single statements, each its own transaction, on connections of their own.

    For the bookkeeping around a request (rate-limit counts, idempotency records):
    a statement is one round trip, never waits for a connection a request holds,
    and commits at once, before or after the request's own transaction. Each
    statement is compiled by SQLAlchemy once and then handed to the driver as it
    is, with the column types' own conversions: this path runs on every request,
    and SQLAlchemy's checkout and execution cost several times the driver's own
    (measured in bench/README.md).
    - PostgreSQL: a small asyncpg pool in autocommit. `durable=False` turns
      `synchronous_commit` off: the statement does not wait for the WAL flush (a
      crash can lose the last moment's writes; right for counters, not for records
      a retry relies on).
    - SQLite: one autocommit connection, so a statement is one trip to the driver's
      thread, not the five of a session (BEGIN, statement, rows, COMMIT, reset).
    JSON columns come back as their text on both.
    """

    def __init__(self, db: "Database", *, durable: bool = True) -> None:
        self.db = db
        self.durable = durable
        self._pool: asyncpg.Pool | None = None
        self._sqlite: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()
        self._statements = compiled_statements(db.engine.dialect)
        db.on_dispose(self.close)

    async def run(self, statement: Executable, params: dict[str, Any]) -> list[Any]:
        """The statement's rows (none for a statement that returns none)."""
        sql, arguments = self._statements.bind(statement, params)
        if self.db.is_sqlite:
            sqlite = await self._sqlite_connection()
            return list(await sqlite.execute_fetchall(sql, arguments))
        pool = self._pool or await self._postgresql()
        try:
            # asyncpg's pool replaces a connection it knows closed at acquire.
            async with pool.acquire() as connection:
                return list(await connection.fetch(sql, *arguments))
        except STATEMENT_ERRORS as error:
            if dberrors.is_disconnect(error):
                # Its peers were most likely ended with it (a restart, a failover):
                # each is replaced at its next acquire, not found dead by a request.
                await pool.expire_connections()
            raise

    async def _postgresql(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                # Each statement holds its connection for one round trip: half the
                # request pool serves as many requests. Opened as needed, kept while used.
                size = max(2, self.db.pool_size // 2)
                settings = {} if self.durable else {"synchronous_commit": "off"}
                dsn = make_url(self.db.url).set(drivername="postgresql")
                self._pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=0,
                    max_size=size,
                    server_settings=settings,
                    # A statement leaves nothing to reset but an open transaction, which
                    # asyncpg rolls back on release whatever this does.
                    reset=_nothing_to_reset,
                )
            return self._pool

    async def _sqlite_connection(self) -> aiosqlite.Connection:
        async with self._opening:
            if self._sqlite is None:
                path = make_url(self.db.url).database or ":memory:"
                # isolation_level=None: autocommit, each statement its own transaction.
                pending = aiosqlite.connect(path, isolation_level=None, timeout=30)
                # Its worker thread must never keep a process from exiting (as SQLAlchemy
                # does for its own aiosqlite connections).
                worker = pending if isinstance(pending, threading.Thread) else pending._thread
                worker.daemon = True
                connection = await pending
                await connection.execute("PRAGMA busy_timeout=30000")
                self._sqlite = connection
            return self._sqlite

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
            self._sqlite = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


# What a StatementRunner's statement raises when the database fails it.
STATEMENT_ERRORS = (
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    return None
