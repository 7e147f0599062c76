"""Calendar arithmetic in SQL that reads the same on SQLite and PostgreSQL."""

from typing import Any

from sqlalchemy import Float, cast, func
from sqlalchemy.sql.elements import ColumnElement


def local_day(dialect: str, column: Any) -> ColumnElement[Any]:
    """The calendar day of an instant column in Asia/Shanghai."""
    if dialect == "sqlite":
        # Stored as UTC wall time; Shanghai keeps no daylight saving (UTC+8 all year).
        return func.date(column, "+8 hours")
    return func.date(func.timezone("Asia/Shanghai", column))


def hours_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """Whole hours from `start` to `end` (instants stored as UTC)."""
    if dialect == "sqlite":
        return func.round((func.julianday(end) - func.julianday(start)) * 24)
    return func.round(cast(func.extract("epoch", end - start), Float) / 3600)
