"""`insert_rows`: rows of several tables written together (one statement on PostgreSQL),
a row referring to one written earlier in the same call, and all or nothing."""

from datetime import date
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from app.core.db import insert_rows, row_values, transient
from app.core.ids import new_id
from app.core.timeutil import utcnow
from app.models import Listing, Provider

PROVIDERS = cast(Table, Provider.__table__)
LISTINGS = cast(Table, Listing.__table__)


def provider_row(code: str) -> dict[str, Any]:
    now = utcnow()
    return row_values(
        Provider(
            id=new_id("prv"),
            name=f"provider {code}",
            kind="icc",
            unified_social_credit_code=code,
            region_code="330108",
            status="listed",
            created_at=now,
            updated_at=now,
            version=1,
        )
    )


def listing_row(provider_id: str, list_id: str) -> dict[str, Any]:
    return row_values(
        Listing(
            id=new_id("lst"),
            provider_id=provider_id,
            list_id=list_id,
            since=date(2025, 1, 1),
            until=None,
            reference=None,
            created_at=utcnow(),
            ended_at=None,
        )
    )


async def count(db: Any, table: Table, **where: str) -> int:
    async with db.sessionmaker() as session:
        stmt = select(func.count()).select_from(table)
        for key, value in where.items():
            stmt = stmt.where(table.c[key] == value)
        return int(await session.scalar(stmt) or 0)


async def test_rows_of_several_tables_refer_to_each_other(db: Any) -> None:
    provider = provider_row("91330108MA2TEST001")
    listings = [
        listing_row(provider["id"], "hz-matchmaking-partner"),
        listing_row(provider["id"], "binjiang-compute-partner"),
    ]
    async with db.sessionmaker() as session:
        conn = await session.connection()
        await insert_rows(conn, [(PROVIDERS, [provider]), (LISTINGS, listings), (LISTINGS, [])])
        await session.commit()
    assert await count(db, PROVIDERS, id=provider["id"]) == 1
    assert await count(db, LISTINGS, provider_id=provider["id"]) == 2
    async with db.sessionmaker() as session:
        stored = (
            await session.execute(select(Provider).where(Provider.id == provider["id"]))
        ).scalar_one()
        assert stored.name == provider["name"]
        assert stored.created_at == provider["created_at"]


async def test_a_bad_row_writes_nothing(db: Any) -> None:
    provider = provider_row("91330108MA2TEST002")
    orphan = listing_row("prv_does_not_exist", "hz-matchmaking-partner")
    async with db.sessionmaker() as session:
        conn = await session.connection()
        with pytest.raises(IntegrityError):
            await insert_rows(conn, [(PROVIDERS, [provider]), (LISTINGS, [orphan])])
        await session.rollback()
    assert await count(db, PROVIDERS, id=provider["id"]) == 0
    assert await count(db, LISTINGS, id=orphan["id"]) == 0


async def test_also_runs_its_statement_with_the_rows(db: Any) -> None:
    # An UPDATE of a row written before, with the new rows (one statement on
    # PostgreSQL); its parameters are its own.
    before = provider_row("91330108MA2TEST003")
    provider = provider_row("91330108MA2TEST004")
    rename = (
        update(PROVIDERS)
        .where(PROVIDERS.c.id == bindparam("renamed_id"))
        .values(name=bindparam("new_name"))
    )
    async with db.sessionmaker() as session:
        conn = await session.connection()
        await insert_rows(conn, [(PROVIDERS, [before])])
        await session.commit()
    for _ in range(2):  # the second time from the statement built the first
        async with db.sessionmaker() as session:
            conn = await session.connection()
            await insert_rows(
                conn,
                [
                    (PROVIDERS, [provider]),
                    (LISTINGS, [listing_row(provider["id"], "hz-planned-icc")]),
                ],
                also=(rename, {"renamed_id": before["id"], "new_name": "renamed"}),
            )
            await session.rollback()
    async with db.sessionmaker() as session:
        conn = await session.connection()
        await insert_rows(
            conn,
            [(PROVIDERS, [provider])],
            also=(rename, {"renamed_id": before["id"], "new_name": "renamed"}),
        )
        await session.commit()
    assert await count(db, PROVIDERS, id=provider["id"]) == 1
    assert await count(db, PROVIDERS, name="renamed") == 1
    assert await count(db, LISTINGS, provider_id=provider["id"]) == 0


def test_a_transient_object_holds_its_values_as_its_constructor_would() -> None:
    now = utcnow()
    values = {
        "id": "prv_transient",
        "name": "provider T",
        "kind": "icc",
        "unified_social_credit_code": "91330108MA2TRANS01",
        "region_code": "330108",
        "status": "listed",
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    made = transient(Provider, **values)
    assert isinstance(made, Provider)
    assert sa_inspect(made).transient
    assert made.name == "provider T"
    assert made.created_at is now
    assert row_values(made) == row_values(Provider(**values))
    # The listings, a relationship, read as on a new object: empty, not an error.
    assert list(made.listings) == []
    with pytest.raises(TypeError, match="Provider has no column nmae"):
        transient(Provider, nmae="typo")
