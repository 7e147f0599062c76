"""Database plumbing: engine, sessions, and the column types both databases share.

The same code runs on SQLite (embedded default) and PostgreSQL (production).
Money is stored as integer fen and instants as UTC, so that SQL sums and
comparisons are exact and identical on both.
"""

import asyncio
import logging
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
import asyncpg
import orjson
from sqlalchemy import (
    BigInteger,
    DateTime,
    Executable,
    MetaData,
    Table,
    bindparam,
    event,
    insert,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from app.core import dberrors
from app.core.money import from_fen, to_fen

log = logging.getLogger("computematch.db")

_T = TypeVar("_T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: instants must carry an offset")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store the UTC wall time so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # asyncpg's timestamptz: already UTC
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MoneyFen(TypeDecorator[Decimal]):
    """A Decimal amount of yuan stored as integer fen (BIGINT)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_fen(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_fen(int(value))


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def json_text(value: Any) -> str:
    """JSON columns' text: orjson's, several times faster than the standard library's
    both ways (every order reads its quote's match and writes its pricing)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


JSON_CODEC = {"json_serializer": json_text, "json_deserializer": orjson.loads}


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


_COLUMNS: dict[type, frozenset[str]] = {}  # the column keys of a mapped class


def transient(cls: type[_T], **values: Any) -> _T:
    """A new ORM object holding these column values, made without its constructor's
    attribute events, which cost about 30 µs an object of twenty columns (over ten times
    this): for hot paths' objects that are only read, or written by plain INSERTs
    (`row_values`); never for one a session is to track."""
    manager = sa_inspect(cls).class_manager
    columns = _COLUMNS.get(cls)
    if columns is None:
        columns = _COLUMNS[cls] = frozenset(a.key for a in manager.mapper.column_attrs)
    unknown = values.keys() - columns
    if unknown:
        raise TypeError(f"{cls.__name__} has no column {', '.join(sorted(unknown))}")
    instance = cast(_T, manager.new_instance())
    instance.__dict__.update(values)
    return instance


def row_values(instance: Any) -> dict[str, Any]:
    """A new row's column values, from the (transient) ORM object that holds them: for
    a plain INSERT of rows the session need not track."""
    return {column.key: getattr(instance, column.key) for column in instance.__table__.columns}


# Statements inserting rows into several tables at once, by shape: ((table, rows), ...).
# Each with its parameters: (name, batch, row, column).
_INSERTS_TOGETHER: dict[
    tuple[tuple[tuple[str, int], ...], Executable | None],
    tuple[Executable, list[tuple[str, int, int, str]]],
] = {}


# A statement and its parameters.
Statement = tuple[Executable, Mapping[str, Any]]


async def insert_rows(
    conn: "AsyncConnection | Transaction",
    batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]],
    *,
    also: Statement | None = None,
) -> None:
    """Insert rows (each a value for every column) into several tables, in this order,
    and run `also` (a data-modifying statement whose parameters are named apart from
    the rows' own `r<table>_<row>_<column>`).

    On PostgreSQL they go as one statement: an INSERT a row, all but the last in a
    WITH (data-modifying CTEs, which run to completion whether or not they are read; the
    foreign keys are checked at the end of the statement, so a row may refer to one
    written by an earlier INSERT of the same statement), `also` a CTE of it too. A round
    trip costs more than the rows it carries, on both sides. Elsewhere (SQLite, in
    process, where a statement costs little and no such WITH exists), one statement per
    table, and `also` last.
    """
    batches = [(table, rows) for table, rows in batches if rows]
    on_driver = isinstance(conn, Transaction) and conn.driver is not None
    if conn.dialect.name != "postgresql" or (
        len(batches) + (also is not None) < 2 and not on_driver
    ):
        connection = conn.connection if isinstance(conn, Transaction) else conn
        assert connection is not None
        for table, rows in batches:
            await connection.execute(insert(table), list(rows))
        if also is not None:
            await connection.execute(also[0], dict(also[1]))
        return
    shape = tuple((table.name, len(rows)) for table, rows in batches)
    also_statement = also[0] if also is not None else None
    together = _INSERTS_TOGETHER.get((shape, also_statement))
    if together is None:
        statement = _inserts_together(
            [(table, len(rows)) for table, rows in batches], also_statement
        )
        names = [
            (f"r{t}_{r}_{column.key}", t, r, column.key)
            for t, (table, rows) in enumerate(batches)
            for r in range(len(rows))
            for column in table.columns
        ]
        together = _INSERTS_TOGETHER[(shape, also_statement)] = (statement, names)
    statement, names = together
    params = {name: batches[t][1][r][key] for name, t, r, key in names}
    if also is not None:
        params.update(also[1])
    await fetch(conn, statement, params)


def _inserts_together(shape: Sequence[tuple[Table, int]], also: Executable | None) -> Executable:
    # One single-row INSERT a row: SQLAlchemy caches the compiled form of a statement
    # made of these, never of a multi-row VALUES (which it compiles anew each time).
    inserts = [
        insert(table).values(
            {
                column.key: bindparam(f"r{t}_{r}_{column.key}", type_=column.type)
                for column in table.columns
            }
        )
        for t, (table, n) in enumerate(shape)
        for r in range(n)
    ]
    *first, last = inserts
    ctes = [stmt.cte(f"w{k}") for k, stmt in enumerate(first)]
    if also is not None:
        ctes.append(cast(Any, also).cte("w_also"))
    return last.add_cte(*ctes)


@dataclass
class Transaction:
    """A write transaction of `Database.transaction`: on PostgreSQL the asyncpg
    connection it runs on, elsewhere the SQLAlchemy connection."""

    engine: AsyncEngine  # what the per-database caches are kept by
    connection: AsyncConnection | None = None
    driver: asyncpg.Connection | None = None

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect


@contextmanager
def _as_sqlalchemy_errors(sql: str) -> Iterator[None]:
    """asyncpg's errors as SQLAlchemy raises them, with the driver's error as `orig`,
    so that callers handle one kind whichever layer ran the statement."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(sql, None, error) from error
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as error:
        # The driver's own errors too (a closed connection, another operation in
        # progress): SQLAlchemy raises those as DBAPIErrors of its own.
        raise DBAPIError(
            sql, None, error, connection_invalidated=dberrors.is_disconnect(error)
        ) from error


class CompiledStatements:
    """Statements compiled once for one dialect, for a driver to run as they are.

    SQLAlchemy's execution of a compiled statement costs several times the driver's
    own round trip in CPU (context, parameters, result objects; measured in
    bench/README.md). Where a statement runs on every request, it is compiled here
    once and handed to the driver with the column types' own conversions applied:
    the bind side's (UTC instants, money as fen, JSON as text) and, for `read`, the
    result side's.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[int, _Compiled] = {}

    def _compile(self, statement: Executable) -> "_Compiled":
        cached = self._compiled.get(id(statement))
        if cached is None or cached.statement is not statement:
            compiled = cast(
                SQLCompiler, cast(ClauseElement, statement).compile(dialect=self.dialect)
            )
            readers = [
                (i, reader)
                for i, column in enumerate(compiled._result_columns)
                if (reader := column.type._cached_result_processor(self.dialect, None))
            ]
            cached = self._compiled[id(statement)] = _Compiled(statement, compiled, readers)
        return cached

    def bind(self, statement: Executable, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The statement's SQL and its positional arguments."""
        entry = self._compile(statement)
        compiled = entry.compiled
        # The values by name, an expanding IN's as a list (as construct_expanded_state).
        values = compiled.construct_params(dict(params), _no_postcompile=True)
        shape = tuple(len(values[p.key]) for p in entry.expanding)
        plan = entry.plans.get(shape)
        if plan is None:
            plan = entry.plans[shape] = _plan(compiled, params)
        sql, arguments = plan
        return sql, [
            (values[name] if index is None else values[name][index])
            if process is None
            else process(values[name] if index is None else values[name][index])
            for name, index, process in arguments
        ]

    def read(self, statement: Executable, records: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The driver's rows of the statement, with the column types' conversions."""
        readers = self._compile(statement).readers
        if not readers:
            return [tuple(record) for record in records]
        rows = []
        for record in records:
            row = list(record)
            for i, reader in readers:
                row[i] = reader(row[i])
            rows.append(tuple(row))
        return rows


# The SQL of a statement for one number of values of each expanding IN, and where each
# positional argument comes from: (parameter, index in its list or None, conversion).
_Plan = tuple[str, list[tuple[str, int | None, Any]]]


@dataclass
class _Compiled:
    statement: Executable
    compiled: SQLCompiler
    readers: list[tuple[int, Any]]  # (column, its type's conversion) where it has one
    expanding: list[Any] = field(init=False)  # the expanding INs' parameters
    plans: dict[tuple[int, ...], _Plan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.expanding = sorted(self.compiled.post_compile_params, key=lambda p: p.key)


def _plan(compiled: SQLCompiler, params: Mapping[str, Any]) -> _Plan:
    """How SQLAlchemy expands the statement for values of these lengths (its
    `construct_expanded_state`, which rewrites the SQL each time it is called)."""
    if not compiled.post_compile_params:
        processors: Mapping[str, Any] = compiled._bind_processors
        return compiled.string, [
            (key, None, processors.get(key)) for key in compiled.positiontup or ()
        ]
    state = compiled.construct_expanded_state(dict(params))
    processors = {**compiled._bind_processors, **state.processors}
    source = {
        expanded: (name, index)
        for name, names in state.parameter_expansion.items()
        for index, expanded in enumerate(names)
    }
    return state.statement, [
        (*source.get(key, (key, None)), processors.get(key)) for key in state.positiontup or ()
    ]


_compiled_by_dialect: "weakref.WeakKeyDictionary[Dialect, CompiledStatements]" = (
    weakref.WeakKeyDictionary()
)


def compiled_statements(dialect: Dialect) -> CompiledStatements:
    """The compiled statements of a dialect (of an engine)."""
    statements = _compiled_by_dialect.get(dialect)
    if statements is None:
        statements = _compiled_by_dialect[dialect] = CompiledStatements(dialect)
    return statements


async def fetch(
    conn: "AsyncConnection | Transaction", statement: Executable, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows of a statement run in the connection's transaction (none for a
    statement that returns none), as `conn.execute(...).all()` would give them.

    On PostgreSQL the statement goes to asyncpg directly: in a `Transaction`, always;
    on a SQLAlchemy connection, once SQLAlchemy has begun the transaction (it does so
    at the first statement it runs), which SQLAlchemy still commits or rolls back. A
    database error is raised as SQLAlchemy raises it (`IntegrityError`, `DBAPIError`
    with the driver's error as `orig`), so callers handle one kind.
    """
    if isinstance(conn, Transaction):
        if conn.driver is not None:
            return await _on_driver(conn.driver, conn.dialect, statement, params)
        assert conn.connection is not None
        conn = conn.connection
    if conn.dialect.driver == "asyncpg":
        driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        if driver is not None and driver.is_in_transaction():
            return await _on_driver(driver, conn.dialect, statement, params)
    result = await conn.execute(statement, dict(params))
    return [tuple(row) for row in result.all()] if result.returns_rows else []


async def _on_driver(
    driver: asyncpg.Connection, dialect: Dialect, statement: Executable, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    statements = compiled_statements(dialect)
    sql, arguments = statements.bind(statement, params)
    with _as_sqlalchemy_errors(sql):
        records = await driver.fetch(sql, *arguments)
    return statements.read(statement, records)


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
