"""Database plumbing, one module a job:

- `types`: the declarative base and the column types both databases share (money as
  fen, instants as UTC, JSON through orjson);
- `engine`: engines, sessions and transactions (`Database`, `session_scope`);
- `driver`: statements compiled once and run on the driver (`fetch`, `insert_rows`),
  `Statements` (what runs statements) and a hot path's `Transaction`;
- `objects`: ORM objects made and written without a unit of work (`transient`);
- `runner`: single statements on connections of their own (`StatementRunner`).

The names other modules use are imported from here (`from app.core.db import X`).
"""

from app.core.db.driver import (
    CompiledStatements,
    SessionStatements,
    Statement,
    Statements,
    Transaction,
    compiled_statements,
    fetch,
    insert_rows,
    on_session,
)
from app.core.db.engine import (
    Database,
    begin_write,
    create_engine,
    is_sqlite,
    session_scope,
)
from app.core.db.objects import row_values, transient
from app.core.db.runner import STATEMENT_ERRORS, StatementRunner
from app.core.db.types import (
    JSON_CODEC,
    NAMING_CONVENTION,
    Base,
    MoneyFen,
    UTCDateTime,
    json_text,
)

__all__ = [
    "JSON_CODEC",
    "NAMING_CONVENTION",
    "STATEMENT_ERRORS",
    "Base",
    "CompiledStatements",
    "Database",
    "MoneyFen",
    "SessionStatements",
    "Statement",
    "StatementRunner",
    "Statements",
    "Transaction",
    "UTCDateTime",
    "begin_write",
    "compiled_statements",
    "create_engine",
    "fetch",
    "insert_rows",
    "is_sqlite",
    "json_text",
    "on_session",
    "row_values",
    "session_scope",
    "transient",
]
