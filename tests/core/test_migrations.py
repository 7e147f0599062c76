"""The migrations build exactly the schema the models describe, and go down and up."""

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.core.db import Base, Database, is_sqlite
from app.main import create_app
from tests.conftest import OPERATOR_KEY, ROOT, _admin
from tests.factories import create_offer, create_provider


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
        assert asyncio.run(_triggers(url)) == _head_triggers(url)
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


def _head_triggers(url: str) -> list[str]:
    """The triggers at the head: the ledger's that moves the budgets' usage, the claim
    events' append-only ones (one on PostgreSQL, two on SQLite), and the order parts'
    that keep the prices paid per day (one on PostgreSQL, two on SQLite)."""
    if is_sqlite(url):
        own = [
            "claim_events_no_delete",
            "claim_events_no_update",
            "order_parts_add_prices_paid",
            "order_parts_move_prices_paid",
        ]
    else:
        own = ["claim_events_append_only", "order_parts_move_prices_paid"]
    return sorted([*own, "ledger_entries_move_budget_usage"])


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


def test_the_region_code_report_names_bad_codes_and_changes_nothing(
    database_url: str, tmp_path: Path, capfd: Any
) -> None:
    # Migration 0007 (GB/T 2260 table): rows written before the table was checked.
    url, admin = _scratch(database_url, tmp_path)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    try:
        command.upgrade(cfg, "0006")
        asyncio.run(_bad_rows(url))
        capfd.readouterr()
        command.upgrade(cfg, "0007")
        err = capfd.readouterr().err
        assert "2 stored region code(s) are not in the GB/T 2260 table" in err
        assert "providers prv_bad region_code: 330199" in err
        assert "subsidy_programs hz-city-compute-2024 enterprise_regions.exclude: 3399" in err
        assert "prv_good" not in err
        assert asyncio.run(_region_of(url)) == "330199"  # reported, never rewritten
    finally:
        if admin is not None:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))


async def _bad_rows(url: str) -> None:
    from datetime import UTC, datetime

    import sqlalchemy as sa

    providers = sa.table(
        "providers",
        *(sa.column(c) for c in ("id", "name", "kind", "unified_social_credit_code")),
        *(sa.column(c) for c in ("region_code", "status", "version")),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    programs = sa.table(
        "subsidy_programs", sa.column("id"), sa.column("enterprise_regions", sa.JSON)
    )
    now = datetime.now(UTC)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for row_id, code, credit in (
                ("prv_bad", "330199", "91330108000000001X"),
                ("prv_good", "330113", "91330108000000002X"),
            ):
                await conn.execute(
                    providers.insert().values(
                        id=row_id,
                        name=row_id,
                        kind="cloud",
                        unified_social_credit_code=credit,
                        region_code=code,
                        status="listed",
                        version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
            await conn.execute(
                programs.update()
                .where(programs.c.id == "hz-city-compute-2024")
                .values(enterprise_regions={"include": ["3301"], "exclude": ["3399"]})
            )
    finally:
        await engine.dispose()


async def _region_of(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            code = await conn.scalar(text("SELECT region_code FROM providers WHERE id = 'prv_bad'"))
            return str(code)
    finally:
        await engine.dispose()


def test_a_database_holding_marketplace_data_is_not_downgraded_below_its_seeds(
    database_url: str, tmp_path: Path
) -> None:
    # Found under fault injection: `downgrade base` on a database with orders was refused
    # on PostgreSQL only by a foreign key, and on SQLite half applied (0006 to 0002
    # committed, then the catalog's deletion failed). Refused before anything runs.
    url, admin = _scratch(database_url, tmp_path)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    try:
        command.upgrade(cfg, "head")
        asyncio.run(_a_provider_and_offer(url))
        for target in ("base", "0001"):
            with pytest.raises(CommandError, match="forward-only") as refused:
                command.downgrade(cfg, target)
            assert "providers" in str(refused.value)
            assert "offers" in str(refused.value)
            # Nothing undone: still at the head, its trigger and tables in place.
            assert asyncio.run(_version(url)) == _head(cfg)
            assert asyncio.run(_triggers(url)) == _head_triggers(url)
            assert asyncio.run(_differences(url)) == []
        # Above the seeds it goes down and up again, data and all.
        command.downgrade(cfg, "0002")
        assert asyncio.run(_version(url)) == "0002"
        command.upgrade(cfg, "head")
        assert asyncio.run(_differences(url)) == []
    finally:
        if admin is not None:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))


def _head(cfg: Config) -> str:
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


async def _a_provider_and_offer(url: str) -> None:
    application = create_app(
        Settings(database_url=url, environment="test", operator_key=OPERATOR_KEY)  # type: ignore[arg-type]
    )
    try:
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            provider = await create_provider(client)
            await create_offer(client, provider)
    finally:
        await application.state.db.dispose()


async def _version(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return str(
                (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            )
    finally:
        await engine.dispose()
