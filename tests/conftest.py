"""Test plumbing: one migrated database per run (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set), reset to its seeded state before every test."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import app.models
from app.catalog.service import forget_perf_indexes
from app.claims import chain
from app.config import Settings
from app.core.db import Base, Database
from app.main import create_app

# API2: the log of the whole run must hold no API key (checked at the end of the run).
pytest_plugins = ("tests.security.log_guard",)

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_KEY = "test-operator-key-" + uuid.uuid4().hex
SEEDED_TABLES = ("accelerators", "provider_lists", "subsidy_programs")


def migrate(url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        name = f"cm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def seed_rows(database_url: str) -> dict[str, list[dict[str, Any]]]:
    async def read() -> dict[str, list[dict[str, Any]]]:
        db = Database(database_url)
        out: dict[str, list[dict[str, Any]]] = {}
        async with db.engine.connect() as conn:
            for name in SEEDED_TABLES:
                table = Base.metadata.tables[name]
                out[name] = [dict(r._mapping) for r in await conn.execute(select(table))]
        await db.dispose()
        return out

    return asyncio.run(read())


async def reset_database(db: Database, seed_rows: dict[str, list[dict[str, Any]]]) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            # The claim events refuse DELETE (append-only): their triggers step aside.
            for name in ("claim_events_no_update", "claim_events_no_delete"):
                await conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
            for table in tables:
                await conn.execute(delete(table))
            for statement in chain.SQLITE_APPEND_ONLY:
                await conn.execute(text(statement))
        else:
            names = ", ".join(f'"{t.name}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        for name in SEEDED_TABLES:
            await conn.execute(insert(Base.metadata.tables[name]), seed_rows[name])
    # The catalog was rewritten behind the service's back: its cached figures go too.
    forget_perf_indexes()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        environment="test",
        operator_key=OPERATOR_KEY,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
async def shared_app(settings: Settings) -> AsyncIterator[Any]:
    # One app for the whole run: FastAPI builds every route's dependency graph on
    # an app's first request, which costs more than most tests themselves.
    application = create_app(settings)
    yield application
    await application.state.db.dispose()


@pytest.fixture
async def app(
    shared_app: Any, settings: Settings, seed_rows: dict[str, list[dict[str, Any]]]
) -> Any:
    shared_app.state.settings = settings.model_copy()  # undo a test's tweaks
    await reset_database(shared_app.state.db, seed_rows)
    return shared_app


@pytest.fixture
def db(app: Any) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture
async def client(app: Any) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_KEY}"}
