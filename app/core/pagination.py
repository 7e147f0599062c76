"""Cursor pagination: keyset on the id (or a sort key and the id), an opaque cursor,
`{items, next_cursor}`."""

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, literal, tuple_
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


# --------------------------------------------------------------------------- sorted keysets


def encode_sorted_cursor(sort: str, key: str | int, last_id: str) -> str:
    """A cursor that carries the sort it was made under, the last item's key and id."""
    text = json.dumps([sort, key, last_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(f"s:{text}".encode()).decode().rstrip("=")


def decode_sorted_cursor(cursor: str, sort: str) -> tuple[str | int, str]:
    """(key, id) of a cursor made under ``sort``; a 422 for anything else."""
    invalid = Unprocessable.field(["query", "cursor"], "cursor is not valid")
    try:
        raw = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode()
        data = json.loads(raw[2:]) if raw.startswith("s:") else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if not (
        isinstance(data, list)
        and len(data) == 3
        and isinstance(data[0], str)
        and isinstance(data[1], str | int)
        and not isinstance(data[1], bool)
        and isinstance(data[2], str)
        and data[2].isascii()
        and data[2].isprintable()
    ):
        raise invalid
    if data[0] != sort:
        raise Unprocessable.field(
            ["query", "cursor"],
            f"this cursor was made for sort={data[0]}; keep the sort while paging",
        )
    return data[1], data[2]


async def paginate_sorted(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    key: ColumnElement[Any],
    id_column: InstrumentedAttribute[str],
    descending: bool,
    after: tuple[Any, str] | None,
    limit: int,
) -> list[Any]:
    """Rows ordered by (key, id), both ascending or both descending, after a (key, id).

    Keyset on the pair: an item's place depends only on its own key and id, so an
    item that does not change is seen exactly once however others change between pages.
    ``stmt`` selects the key as its last column; up to ``limit + 1`` rows come back
    (one more than a page: whether there is a next one).
    """
    if after is not None:
        pair = tuple_(key, id_column)
        bound = tuple_(literal(after[0], key.type), literal(after[1], id_column.type))
        stmt = stmt.where(pair < bound if descending else pair > bound)
    order = (key.desc(), id_column.desc()) if descending else (key, id_column)
    return list((await session.execute(stmt.order_by(*order).limit(limit + 1))).all())
