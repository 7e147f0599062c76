"""The migrations build exactly the schema the models describe, and go down and up."""

import asyncio
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import Base, Database, is_sqlite
from tests.conftest import ROOT, _admin


async def test_migrations_match_the_models(db: Database) -> None:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == []


def test_every_migration_goes_down_and_up_again(database_url: str, tmp_path: Path) -> None:
    # On a database of its own: down to nothing and up again leaves the schema the
    # models describe, the ledger's trigger that moves the budgets' usage, and the claim
    # events' append-only triggers.
    url, admin = _scratch(database_url, tmp_path)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    try:
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "base")
        assert asyncio.run(_triggers(url)) == []
        command.upgrade(cfg, "head")
        # The claim events are append-only: one trigger on PostgreSQL, two on SQLite.
        appends_only = (
            ["claim_events_no_delete", "claim_events_no_update"]
            if is_sqlite(url)
            else ["claim_events_append_only"]
        )
        assert asyncio.run(_triggers(url)) == sorted(
            [*appends_only, "ledger_entries_move_budget_usage"]
        )
        assert asyncio.run(_differences(url)) == []
    finally:
        if admin is not None:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))


def _scratch(database_url: str, tmp_path: Path) -> tuple[str, str | None]:
    """A new empty database beside the suite's: its URL, and where to drop it from."""
    if is_sqlite(database_url):
        return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}", None
    name = f"cm_migrations_{os.getpid()}"
    asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    return url, database_url


async def _triggers(url: str) -> list[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if is_sqlite(url)
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return sorted(str(name) for name in (await conn.execute(text(query))).scalars())
    finally:
        await engine.dispose()


async def _differences(url: str) -> list[Any]:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(differences)
    finally:
        await engine.dispose()
