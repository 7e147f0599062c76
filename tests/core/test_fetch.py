"""`fetch`: a statement run in the session's transaction gives the rows, the types and
the errors SQLAlchemy would give, and on PostgreSQL goes to asyncpg directly once the
transaction has begun."""

from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import JSON, Table, bindparam, literal, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import MoneyFen, fetch, insert_rows
from app.models import Listing, Provider
from tests.core.test_insert_rows import count, listing_row, provider_row

PROVIDERS = cast(Table, Provider.__table__)
LISTINGS = cast(Table, Listing.__table__)

# Money as fen both ways, instants as UTC, JSON, an expanding IN.
TYPED = select(
    Provider.id,
    Provider.created_at,
    sql_cast(bindparam("amount", type_=MoneyFen), MoneyFen).label("amount"),
    bindparam("doc", type_=JSON).label("doc"),
    literal(7).label("seven"),
).where(Provider.id.in_(bindparam("ids", expanding=True)))


class Executions:
    """Counts the statements that went through SQLAlchemy's execution."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        execute = AsyncConnection.execute

        async def counted(conn: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await execute(conn, *args, **kwargs)

        monkeypatch.setattr(AsyncConnection, "execute", counted)


async def test_rows_and_types_are_those_of_sqlalchemy(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = [provider_row(f"91330108MA2FETCH0{n}") for n in range(3)]
    async with db.sessionmaker() as session:
        await insert_rows(await session.connection(), [(PROVIDERS, providers)])
        await session.commit()
    params = {
        "ids": [p["id"] for p in providers[:2]],
        "amount": Decimal("1234.56"),
        "doc": {"a": [1, "二"], "b": None},
    }
    async with db.sessionmaker() as session:
        conn = await session.connection()
        expected = sorted(tuple(row) for row in (await conn.execute(TYPED, params)).all())
        executions = Executions(monkeypatch)
        got = sorted(await fetch(conn, TYPED, params))
        # Three ids this time: the IN is expanded anew.
        three = await fetch(conn, TYPED, {**params, "ids": [p["id"] for p in providers]})
        none = await fetch(conn, TYPED, {**params, "ids": []})
        again = sorted(await fetch(conn, TYPED, params))  # the two ids' SQL, kept
    assert got == expected
    assert len(got) == 2
    assert len(three) == 3
    assert none == []
    assert again == expected
    provider_id, created_at, amount, doc, seven = got[0]
    assert isinstance(amount, Decimal)
    assert amount == Decimal("1234.56")
    assert created_at == next(p["created_at"] for p in providers if p["id"] == provider_id)
    assert created_at.tzinfo is not None
    assert doc == {"a": [1, "二"], "b": None}
    assert seven == 7
    # On PostgreSQL the transaction had begun (the first read): the driver ran them.
    assert executions.count == (0 if db.engine.dialect.driver == "asyncpg" else 4)


async def test_before_the_transaction_begins_sqlalchemy_runs_it(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing has begun the transaction: the statement must not run outside one.
    provider = provider_row("91330108MA2FETCH10")
    executions = Executions(monkeypatch)
    async with db.sessionmaker() as session:
        await insert_rows(await session.connection(), [(PROVIDERS, [provider])])
        await session.rollback()
    assert executions.count == 1
    assert await count(db, PROVIDERS, id=provider["id"]) == 0


async def test_an_error_is_raised_as_sqlalchemy_raises_it_and_writes_nothing(db: Any) -> None:
    provider = provider_row("91330108MA2FETCH20")
    orphan = listing_row("prv_does_not_exist", "hz-matchmaking-partner")
    async with db.sessionmaker() as session:
        conn = await session.connection()
        await conn.execute(select(literal(1)))  # the transaction begins
        await insert_rows(conn, [(PROVIDERS, [provider])])
        with pytest.raises(IntegrityError) as raised:
            await insert_rows(conn, [(LISTINGS, [orphan])])
        await session.rollback()
    if db.engine.dialect.driver == "asyncpg":
        assert raised.value.orig.sqlstate == "23503"  # type: ignore[union-attr]
    assert await count(db, PROVIDERS, id=provider["id"]) == 0
    assert await count(db, LISTINGS, id=orphan["id"]) == 0


async def test_a_transaction_commits_what_its_statements_wrote(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = [provider_row(f"91330108MA2FETCH3{n}") for n in range(2)]
    executions = Executions(monkeypatch)
    async with db.transaction() as tx:
        await insert_rows(tx, [(PROVIDERS, providers[:1])])  # one table: still one statement
        await insert_rows(tx, [(PROVIDERS, providers[1:])])
        got = await fetch(tx, TYPED, {"ids": [p["id"] for p in providers], "amount": 1, "doc": []})
    assert sorted(row[0] for row in got) == sorted(p["id"] for p in providers)
    for provider in providers:
        assert await count(db, PROVIDERS, id=provider["id"]) == 1
    # On PostgreSQL no statement went through SQLAlchemy's execution.
    assert executions.count == (0 if db.engine.dialect.driver == "asyncpg" else 3)


async def test_a_transaction_that_fails_leaves_nothing_and_its_connection_clean(
    db: Any,
) -> None:
    provider = provider_row("91330108MA2FETCH40")
    orphan = listing_row("prv_does_not_exist", "hz-matchmaking-partner")

    async def write(*batches: Any, then: BaseException | None = None) -> None:
        async with db.transaction() as tx:
            for batch in batches:
                await insert_rows(tx, [batch])
            if then is not None:
                raise then

    with pytest.raises(IntegrityError) as raised:
        await write((PROVIDERS, [provider]), (LISTINGS, [orphan]))
    if db.engine.dialect.driver == "asyncpg":
        assert raised.value.orig.sqlstate == "23503"  # type: ignore[union-attr]
    # An error of the caller's own rolls back too.
    with pytest.raises(RuntimeError):
        await write((PROVIDERS, [provider]), then=RuntimeError("the caller gave up"))
    assert await count(db, PROVIDERS, id=provider["id"]) == 0
    assert await count(db, LISTINGS, id=orphan["id"]) == 0
    # Every connection went back to the pool out of any transaction: the next ones
    # (as many as the pool holds) begin and commit as usual.
    for _ in range(db.pool_size + 1):
        async with db.transaction() as tx:
            assert await fetch(tx, select(literal(1)), {}) == [(1,)]
    await write((PROVIDERS, [provider]))
    assert await count(db, PROVIDERS, id=provider["id"]) == 1


async def test_a_connection_left_in_its_transaction_is_never_reused(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ROLLBACK that fails (or is cancelled) leaves the connection in the transaction:
    # it is closed, not handed to the next request, and the caller's error is the one
    # raised.
    if db.engine.dialect.driver != "asyncpg":
        pytest.skip("the driver's own transaction is PostgreSQL's path")
    left: list[Any] = []

    async def give_up_with_no_rollback() -> None:
        async with db.transaction() as tx:
            left.append(tx.driver)
            driver_class = type(tx.driver)
            real = driver_class.execute

            async def no_rollback(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
                if sql == "ROLLBACK":
                    raise OSError("connection lost")
                return await real(self, sql, *args, **kwargs)

            monkeypatch.setattr(driver_class, "execute", no_rollback)
            raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError, match="the caller gave up"):
        await give_up_with_no_rollback()
    monkeypatch.undo()
    assert left[0].is_closed()
    async with db.transaction() as tx:
        assert tx.driver is not left[0]
        assert await fetch(tx, select(literal(1)), {}) == [(1,)]
