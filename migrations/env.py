"""Alembic environment: async engine, URL from the app's settings (DATABASE_URL)."""

import asyncio
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.config import get_settings
from app.core.db import Base, create_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# The first migration whose downgrade destroys what the marketplace's rows rely on (the
# catalog, the lists, the programs): below it, a database holding them is forward-only.
FIRST_DATA_MIGRATION = "0002"
# Tables whose rows make a database the marketplace's (each refers to the seeds).
MARKETPLACE_TABLES = ("orders", "offers", "enterprises", "providers", "ledger_entries")


def _url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        # All the command's migrations in one transaction on SQLite too (Alembic commits
        # SQLite's after each one by default): a downgrade that fails midway leaves the
        # database as it was, not half done. SQLite's DDL is transactional.
        transactional_ddl=True,
    )
    _refuse_destructive_downgrade(connection)
    with context.begin_transaction():
        context.run_migrations()


def _refuse_destructive_downgrade(connection: Connection) -> None:
    """Refuse, before any migration runs, a downgrade undoing `FIRST_DATA_MIGRATION` on a
    database that holds marketplace rows: it would delete the catalog they refer to (on
    PostgreSQL it failed on a foreign key only by accident; on SQLite it was half done)."""
    migration_context = context.get_context()
    # The steps this command is about to run (Alembic's own plan for it).
    plan = migration_context._migrations_fn
    if plan is None:
        return
    steps = plan(migration_context.get_current_heads(), migration_context)
    undone = {step.revision.revision for step in steps if not step.is_upgrade}
    if FIRST_DATA_MIGRATION not in undone:
        return
    existing = set(connection.dialect.get_table_names(connection))
    holding = [
        table
        for table in MARKETPLACE_TABLES
        if table in existing
        and connection.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar()
    ]
    if holding:
        raise CommandError(
            f"refusing to downgrade below revision {FIRST_DATA_MIGRATION}: the database "
            f"holds marketplace data ({', '.join(holding)}), which that downgrade would "
            "orphan; migrations are forward-only on such a database (restore a backup to "
            "go back). Nothing was changed."
        )


async def run_migrations_online() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()  # a refused or failed command leaves no connection open


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
