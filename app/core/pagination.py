"""Cursor pagination: keyset on the id, an opaque cursor, `{items, next_cursor}`."""

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import Unprocessable

T = TypeVar("T")
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 500)")] = 50,
        cursor: Annotated[
            str | None, Query(max_length=200, description="`next_cursor` of the previous page")
        ] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor

    def after(self) -> str | None:
        if not self.cursor:
            return None
        try:
            raw = base64.urlsafe_b64decode(self.cursor.encode() + b"=" * (-len(self.cursor) % 4))
            text = raw.decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unprocessable.field(["query", "cursor"], "cursor is not valid") from None
        key = text[2:]
        # Ids are printable ASCII; anything else was never a cursor of ours (a NUL would
        # even reach PostgreSQL, which cannot compare with it).
        if not text.startswith("k:") or not (key.isascii() and key.isprintable()):
            raise Unprocessable.field(["query", "cursor"], "cursor is not valid")
        return key


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"k:{last_id}".encode()).decode().rstrip("=")


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[str],
    params: PageParams,
) -> tuple[Sequence[Any], str | None]:
    after = params.after()
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows = (await session.scalars(stmt.order_by(id_column).limit(params.limit + 1))).all()
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(getattr(rows[-1], id_column.key))
    return rows, None
