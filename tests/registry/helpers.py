"""Shared assertions and database peeks for the registry tests."""

from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from app.core.db import Database
from app.core.ids import new_id
from app.core.validators import make_credit_code
from app.models import Enterprise, Offer, Provider


def assert_problem(resp: Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    for field in ("type", "title", "status", "detail"):
        assert field in body, body
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["type"].startswith(("http", "about:"))
    # api.md: every problem, 413 and 415 included, carries `instance` and `request_id`.
    path = resp.request.url.path
    assert body.get("instance") == (path if "\x00" not in path else path.replace("\x00", "\\u0000"))
    assert body.get("request_id") == resp.headers["x-request-id"], body
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    """The `loc` of every entry of a validation problem's `errors`."""
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    for error in errors:
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
        assert error["msg"]
    return [error["loc"] for error in errors]


def mentions_field(body: dict[str, Any], field: str) -> bool:
    return any(field in [str(part) for part in loc] for loc in error_locs(body))


async def count(db: Database, model: Any, *where: ColumnElement[bool]) -> int:
    async with db.sessionmaker() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(await session.scalar(stmt) or 0)


async def count_offers(db: Database, provider_id: str | None = None) -> int:
    if provider_id is None:
        return await count(db, Offer)
    return await count(db, Offer, Offer.provider_id == provider_id)


async def count_providers(db: Database) -> int:
    return await count(db, Provider)


async def load_offer(db: Database, offer_id: str) -> Offer | None:
    async with db.sessionmaker() as session:
        return await session.get(Offer, offer_id)


async def make_enterprise(db: Database, seed: int = 4242) -> str:
    """An enterprise row written directly (the registry tests need one only for its key)."""
    enterprise_id = new_id("ent")
    async with db.sessionmaker() as session:
        session.add(
            Enterprise(
                id=enterprise_id,
                name="Test Enterprise",
                unified_social_credit_code=make_credit_code("330106", seed),
                region_code="330106",
                is_foundation_model_enterprise=False,
                filed_models=[],
                version=1,
            )
        )
        await session.commit()
    return enterprise_id


async def walk_pages(
    client: AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated list, following `next_cursor` to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        resp = await client.get(path, params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert set(page) >= {"items", "next_cursor"}
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next_cursor must not be empty"
    raise AssertionError("pagination did not end")
