"""The reference endpoints of the spec's quality targets, served by bench/reference.py.

The spec's quality targets are calibrated on this machine with three endpoints: a
bare FastAPI JSON answer, one SQLAlchemy ORM primary-key read, and one raw asyncpg
read. This app is exactly those three, with nothing of computematch around them, so
that a run here tells how fast this machine is today beside the spec's figures.

The database is `REFERENCE_DATABASE_URL`; its table `ref_items` is made by the driver.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import String
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "ref_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    cards: Mapped[int]


state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = make_url(os.environ["REFERENCE_DATABASE_URL"])
    engine = create_async_engine(url, pool_size=20, max_overflow=0)
    state["sessions"] = async_sessionmaker(engine, expire_on_commit=False)
    if url.get_backend_name() == "postgresql":
        import asyncpg

        state["pool"] = await asyncpg.create_pool(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            min_size=20,
            max_size=20,
        )
    yield
    if "pool" in state:
        await state["pool"].close()
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/orm/{item_id}")
async def orm_read(item_id: str) -> dict[str, Any]:
    session: AsyncSession
    async with state["sessions"]() as session:
        item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(404)
    return {"id": item.id, "name": item.name, "cards": item.cards}


@app.get("/raw/{item_id}")
async def raw_read(item_id: str) -> dict[str, Any]:
    if "pool" not in state:
        raise HTTPException(404, "raw reads need PostgreSQL")
    row = await state["pool"].fetchrow(
        "SELECT id, name, cards FROM ref_items WHERE id = $1", item_id
    )
    if row is None:
        raise HTTPException(404)
    return dict(row)
