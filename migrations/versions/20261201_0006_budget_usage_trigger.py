"""budget usage moved by the database, and on PostgreSQL at commit

A trigger on the voucher ledger moves each program's usage row with every entry
written (reserve raises it, release lowers it, settle leaves it), and refuses a
reservation that would take the row past its program's annual budget, naming
the check `ck_budget_usage_within_budget` (app.ledger.service.BUDGET_CHECK).

On PostgreSQL the trigger is deferred to the commit. The usage row of a program
that most orders share is then locked only while the committing transaction
finishes inside the server, instead of from a statement of its own until the
client's COMMIT arrived a round trip later. SQLite serialises writers anyway and
has no deferred triggers: there the row moves with the entry. (A later migration
that rebuilds `ledger_entries` on SQLite, as Alembic's batch mode does, must create
the trigger again: SQLite drops a table's triggers with the table.)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL_FUNCTION = """
CREATE FUNCTION budget_usage_follows_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta bigint := CASE NEW.kind
        WHEN 'reserve' THEN NEW.amount WHEN 'release' THEN -NEW.amount ELSE 0 END;
    now_used bigint;
    budget bigint;
BEGIN
    IF delta = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO budget_usage AS usage (program_id, year, used)
    VALUES (NEW.program_id, NEW.year, delta)
    ON CONFLICT (program_id, year) DO UPDATE SET used = usage.used + EXCLUDED.used
    RETURNING used INTO now_used;
    IF delta > 0 THEN
        SELECT annual_budget INTO budget FROM subsidy_programs WHERE id = NEW.program_id;
        IF budget IS NOT NULL AND now_used > budget THEN
            RAISE EXCEPTION 'ck_budget_usage_within_budget: the % budget of program % is spent',
                NEW.year, NEW.program_id
                USING ERRCODE = 'check_violation', TABLE = 'budget_usage',
                      CONSTRAINT = 'ck_budget_usage_within_budget';
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = """
CREATE CONSTRAINT TRIGGER ledger_entries_move_budget_usage
AFTER INSERT ON ledger_entries DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION budget_usage_follows_ledger()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER ledger_entries_move_budget_usage AFTER INSERT ON ledger_entries
WHEN NEW.kind IN ('reserve', 'release')
BEGIN
    INSERT INTO budget_usage (program_id, year, used)
    VALUES (
        NEW.program_id,
        NEW.year,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE -NEW.amount END
    )
    ON CONFLICT (program_id, year) DO UPDATE SET used = used + excluded.used;
    SELECT RAISE(ABORT, 'ck_budget_usage_within_budget: a program''s budget is spent')
    FROM budget_usage JOIN subsidy_programs ON subsidy_programs.id = budget_usage.program_id
    WHERE NEW.kind = 'reserve'
      AND budget_usage.program_id = NEW.program_id
      AND budget_usage.year = NEW.year
      AND subsidy_programs.annual_budget IS NOT NULL
      AND budget_usage.used > subsidy_programs.annual_budget;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_TRIGGER)
    else:
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER ledger_entries_move_budget_usage")
    else:
        op.execute("DROP TRIGGER ledger_entries_move_budget_usage ON ledger_entries")
        op.execute("DROP FUNCTION budget_usage_follows_ledger()")
