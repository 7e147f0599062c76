"""Statements compiled once and handed to the driver as they are (asyncpg), with the
column types' conversions both ways; what runs statements (`Statements`), a hot path's
`Transaction`, and the rows of several tables inserted in one statement.
"""

import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import (
    Executable,
    Table,
    bindparam,
    insert,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
)
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from app.core import dberrors

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


class Statements(Protocol):
    """Something that runs statements in one transaction: a hot path's `Transaction`,
    or a session's (`on_session`). Code that only reads and writes through statements
    takes this, whichever it is given."""

    @property
    def database_key(self) -> Any:
        """What per-database caches are kept by (the engine)."""
        ...

    async def fetch(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The statement's rows (`fetch`)."""
        ...


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

    @property
    def database_key(self) -> Any:
        return self.engine.sync_engine

    async def fetch(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        return await fetch(self, statement, params)


@dataclass(frozen=True)
class SessionStatements:
    """A session's transaction as `Statements`: its connection is asked for only when
    a statement runs (a session with a known state may never need one)."""

    session: AsyncSession

    @property
    def database_key(self) -> Any:
        return self.session.sync_session.get_bind()

    async def fetch(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        return await fetch(await self.session.connection(), statement, params)


def on_session(session: AsyncSession) -> Statements:
    """The session's transaction, as something that runs statements."""
    return SessionStatements(session)


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
