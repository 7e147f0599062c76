"""Engines, sessions and transactions: `Database`, one per app (and per test database).

The same code runs on SQLite (embedded default) and PostgreSQL (production).
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import (
    event,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core import dberrors
from app.core.db.driver import Transaction, _as_sqlalchemy_errors
from app.core.db.types import JSON_CODEC

log = logging.getLogger("computematch.db")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, **JSON_CODEC)
        _configure_sqlite(engine)
        return engine
    # No overflow: an overflow connection is closed as soon as it is returned, so under
    # a load just past the pool every few requests paid for a new connection (and the
    # server for a new backend); past the pool, a request waits for a connection.
    # No pool_pre_ping: it costs a round trip on every checkout. A connection the driver
    # knows closed is never handed out (`_refuse_closed`, a local check); one found dead
    # by its statement fails its one request, and the whole pool is then invalidated
    # (by SQLAlchemy for a session, by `Database.transaction` on the driver), so a
    # database restart costs each process about one failed request, a 503.
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=0, pool_recycle=3600, **JSON_CODEC
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """At checkout, a connection asyncpg already knows to be closed (the server ended
    it: a restart, `pg_terminate_backend`) is refused: the pool then replaces it with a
    new one. No round trip: `is_closed()` reads the protocol's state, which the event
    loop updated when the socket closed."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the connection was closed by the server")


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so a writer can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writing transaction takes SQLite's write lock at BEGIN, so two writers
        # can never both read the old state and then both write (no lost updates).
        if conn.get_execution_options().get("sqlite_write_lock"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """One engine and session factory per app (and per test database)."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.is_sqlite = is_sqlite(url)
        # Requests that only read run without BEGIN and COMMIT on PostgreSQL: under
        # READ COMMITTED every statement takes its own snapshot anyway, so the
        # transaction bought nothing but two round trips. (SQLite keeps its read
        # transaction: there it gives the statements one snapshot.)
        self.read_sessionmaker = (
            self.sessionmaker
            if self.is_sqlite
            else async_sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        )
        self.pool_size = pool_size
        # Resources others open beside the engine (the rate limiter's connections),
        # closed with it.
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def on_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(close)

    async def session(self, *, write: bool) -> AsyncSession:
        if not write:
            return self.read_sessionmaker()
        session = self.sessionmaker()
        await begin_write(session)
        return session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["Transaction"]:
        """A write transaction for a hot path, committed on success and rolled back
        on error; its statements go through `fetch` and `insert_rows`.

        On PostgreSQL it is a connection of the engine's pool whose BEGIN, statements
        and COMMIT go to asyncpg directly: a session's unit of work, its lazy BEGIN and
        its commit cost several times the round trips themselves in CPU (measured in
        bench/README.md), and such a path has nothing for a unit of work to do. Errors
        are raised as SQLAlchemy raises them (`IntegrityError`, `DBAPIError`).
        Elsewhere (SQLite), a writing session's connection (BEGIN IMMEDIATE).
        """
        if self.engine.dialect.driver != "asyncpg":
            async with session_scope(self) as session:
                yield Transaction(self.engine, connection=await session.connection())
            return
        conn, driver = await self._begin()
        try:
            try:
                yield Transaction(self.engine, driver=driver)
            except BaseException:
                try:
                    await driver.execute("ROLLBACK")
                except Exception as error:  # the caller's error is the one to raise
                    log.warning("rollback failed (%s)", type(error).__name__)
                raise
            with _as_sqlalchemy_errors("COMMIT"):
                await driver.execute("COMMIT")
        except BaseException as error:
            if dberrors.is_disconnect(error):
                self._invalidate_pool(conn)
            raise
        finally:
            await _release(conn, driver)

    async def _begin(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        """A pooled connection of the engine, in a transaction begun on the driver.

        A connection that fails its BEGIN for being gone (the server ended it and the
        driver had not noticed yet) ran nothing: the pool is invalidated and the
        transaction begun once more, on a new connection."""
        for attempt in (1, 2):
            conn = await self.engine.connect()
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                with _as_sqlalchemy_errors("BEGIN"):
                    await driver.execute("BEGIN")
            except BaseException as error:
                disconnect = dberrors.is_disconnect(error)
                if disconnect:
                    self._invalidate_pool(conn)
                await _release(conn, driver)
                if attempt == 2 or not disconnect:
                    raise
                log.warning("BEGIN found the connection gone; once more on a new one")
                continue
            return conn, driver
        raise AssertionError("unreachable")

    def _invalidate_pool(self, conn: AsyncConnection) -> None:
        """Every connection of the pool as old as this one is replaced at its next
        checkout (what SQLAlchemy does for a session's statement that finds its
        connection gone), and this one is closed now."""
        pool = self.engine.sync_engine.pool
        fairy = conn.sync_connection.connection if conn.sync_connection is not None else None
        if fairy is not None:
            pool._invalidate(fairy)  # SQLAlchemy's own path for a disconnect

    async def dispose(self) -> None:
        for close in self._closers:
            await close()
        await self.engine.dispose()


async def _release(conn: AsyncConnection, driver: asyncpg.Connection) -> None:
    """Back to the pool, unless it is closed or left in a transaction.

    SQLAlchemy's pool resets only the transactions SQLAlchemy began: a connection left
    in this one (its ROLLBACK cancelled, or failed) is closed, never handed to the next
    request; so is one the server ended (`is_in_transaction()` is false on it)."""
    try:
        if driver.is_closed() or driver.is_in_transaction():
            await conn.invalidate()
    finally:
        await conn.close()


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a writer (BEGIN IMMEDIATE on SQLite)."""
    await session.connection(execution_options={"sqlite_write_lock": True})


@asynccontextmanager
async def session_scope(db: Database, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back on error."""
    session = await db.session(write=write)
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()
