"""The private SQLAlchemy APIs the driver path relies on (`db.CompiledStatements`).

SQLAlchemy is pinned below its next minor version in pyproject.toml; these tests say
exactly which private names and shapes the code uses, so that a release that changes
one fails here, by name, instead of as a wrong value on the order path. No database:
the statements are compiled for each dialect the service runs on.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

import pytest
import sqlalchemy
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from app.core.db import CompiledStatements, MoneyFen, UTCDateTime
from app.models import Offer

DIALECTS = {
    "postgresql+asyncpg": postgresql.asyncpg.dialect(),
    "sqlite+aiosqlite": sqlite.aiosqlite.dialect(),
}

# A money column and an instant in the result, a money bind, and an expanding IN.
STATEMENT = select(Offer.id, Offer.price_per_card_hour, Offer.available_from).where(
    Offer.id.in_(bindparam("ids", expanding=True)),
    Offer.price_per_card_hour <= bindparam("price", type_=MoneyFen),
)


def test_the_pinned_minor_version() -> None:
    major, minor = (int(part) for part in sqlalchemy.__version__.split(".")[:2])
    assert (major, minor) == (2, 1), (
        f"SQLAlchemy {sqlalchemy.__version__}: re-check the private APIs below, then move "
        "the pin in pyproject.toml"
    )


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]


def compiled(dialect: Dialect) -> SQLCompiler:
    return cast(SQLCompiler, STATEMENT.compile(dialect=dialect))


def test_result_columns_carry_their_types(dialect: Dialect) -> None:
    columns = compiled(dialect)._result_columns
    assert [type(column.type) for column in columns][1:] == [MoneyFen, UTCDateTime]


def test_a_type_gives_its_cached_result_processor(dialect: Dialect) -> None:
    money = compiled(dialect)._result_columns[1].type
    process = money._cached_result_processor(dialect, None)
    assert process is not None
    assert process(123456) == Decimal("1234.56")


def test_bind_processors_by_parameter_name(dialect: Dialect) -> None:
    processors: Mapping[str, Any] = compiled(dialect)._bind_processors
    assert isinstance(processors, Mapping)
    assert processors["price"](Decimal("12.34")) == 1234


def test_expanded_state_and_no_postcompile_params(dialect: Dialect) -> None:
    statement = compiled(dialect)
    assert [p.key for p in statement.post_compile_params] == ["ids"]
    values = statement.construct_params({"ids": ["a", "b"], "price": 1}, _no_postcompile=True)
    assert values["ids"] == ["a", "b"]
    state = statement.construct_expanded_state({"ids": ["a", "b"], "price": 1})
    assert state.parameter_expansion["ids"] == ["ids_1", "ids_2"]
    assert set(state.positiontup or ()) >= {"ids_1", "ids_2", "price"}


def test_compiled_statements_bind_and_read_through_them(dialect: Dialect) -> None:
    # The whole path: the SQL for two values of the IN, the arguments converted by their
    # types in the order of the SQL's placeholders, and a row read back by its types.
    statements = CompiledStatements(dialect)
    sql, arguments = statements.bind(STATEMENT, {"ids": ["off_a", "off_b"], "price": "9.99"})
    assert sorted(a for a in arguments if isinstance(a, str)) == ["off_a", "off_b"]
    assert 999 in arguments
    assert sql.count("?" if dialect.name == "sqlite" else "$") == 3
    (row,) = statements.read(STATEMENT, [("off_a", 1200, None)])
    assert row == ("off_a", Decimal("12.00"), None)
