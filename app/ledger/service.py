"""The voucher ledger: append-only entries; every balance is a sum.

For one enterprise, program and year:
  used     = Σ reserve − Σ release     (what counts against the cap and the budget)
  settled  = Σ settle
  reserved = used − settled            (held for orders not yet settled)
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import MoneyFen, insert_rows, row_values
from app.core.ids import new_id
from app.core.money import ZERO
from app.core.timeutil import utcnow
from app.ledger.schemas import VoucherUsage, VoucherUsageItem
from app.models import BudgetUsage, Enterprise, LedgerEntry

KINDS = ("reserve", "settle", "release")


@dataclass(frozen=True)
class Balance:
    reserved: Decimal = ZERO
    settled: Decimal = ZERO

    @property
    def used(self) -> Decimal:
        return self.reserved + self.settled


def _fold(rows: Iterable[tuple[str, str, Decimal | None]]) -> dict[str, Balance]:
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(KINDS, ZERO))
    for program_id, kind, amount in rows:
        sums[program_id][kind] += amount or ZERO
    return {
        program_id: Balance(reserved=s["reserve"] - s["settle"] - s["release"], settled=s["settle"])
        for program_id, s in sums.items()
    }


async def enterprise_balances(
    session: AsyncSession, enterprise_id: str, year: int
) -> dict[str, Balance]:
    rows = await session.execute(
        select(LedgerEntry.program_id, LedgerEntry.kind, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.enterprise_id == enterprise_id, LedgerEntry.year == year)
        .group_by(LedgerEntry.program_id, LedgerEntry.kind)
    )
    return _fold((p, k, a) for p, k, a in rows)


async def program_balances(
    session: AsyncSession, year: int, program_ids: Iterable[str] | None = None
) -> dict[str, Balance]:
    stmt = (
        select(LedgerEntry.program_id, LedgerEntry.kind, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.year == year)
        .group_by(LedgerEntry.program_id, LedgerEntry.kind)
    )
    if program_ids is not None:
        stmt = stmt.where(LedgerEntry.program_id.in_(list(program_ids)))
    return _fold((p, k, a) for p, k, a in await session.execute(stmt))


def _sums(whose: str) -> Select[str, str, str, Decimal]:
    return select(
        literal(whose).label("whose"),
        LedgerEntry.program_id,
        LedgerEntry.kind,
        func.sum(LedgerEntry.amount),
    ).group_by(LedgerEntry.program_id, LedgerEntry.kind)


_MINE = _sums("enterprise").where(
    LedgerEntry.enterprise_id == bindparam("enterprise_id"), LedgerEntry.year == bindparam("year")
)
# The budgets as their usage rows keep them (see BudgetUsage), shaped as ledger sums.
_BUDGETS = select(
    literal("program").label("whose"),
    BudgetUsage.program_id,
    literal("reserve").label("kind"),
    BudgetUsage.used,
).where(
    BudgetUsage.year == bindparam("year"),
    BudgetUsage.program_id.in_(bindparam("program_ids", expanding=True)),
)
_MINE_AND_BUDGETS = union_all(_MINE, _BUDGETS)


async def order_balances(
    session: AsyncSession, enterprise_id: str, year: int, program_ids: Sequence[str]
) -> tuple[dict[str, Balance], dict[str, Balance]]:
    """The enterprise's balances and the budgets of `program_ids` in `year`, in one read
    (what pricing checks caps and budgets against; an order reads it under the
    enterprise's lock, and its budgets are guarded again where spent: `append`)."""
    params: dict[str, Any] = {"enterprise_id": enterprise_id, "year": year}
    if program_ids:
        params["program_ids"] = list(program_ids)
    # Core statements run on the session's connection: the ORM session's own layers
    # cost more than the statements (here and in `append`).
    conn = await session.connection()
    rows = (await conn.execute(_MINE_AND_BUDGETS if program_ids else _MINE, params)).all()
    return (
        _fold((p, k, a) for whose, p, k, a in rows if whose == "enterprise"),
        _fold((p, k, a) for whose, p, k, a in rows if whose == "program"),
    )


async def programs_used(
    session: AsyncSession, year: int, program_ids: Iterable[str]
) -> dict[str, Decimal]:
    """program id -> subsidy reserved or settled under it in `year` (every enterprise)."""
    wanted = sorted(set(program_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(BudgetUsage.program_id, BudgetUsage.used).where(
            BudgetUsage.year == year, BudgetUsage.program_id.in_(wanted)
        )
    )
    found: dict[str, Decimal] = dict(rows.all())
    return {p: found.get(p, ZERO) for p in wanted}


TABLE = cast(Table, LedgerEntry.__table__)
# How each kind of entry moves a budget's usage: a settlement only turns a
# reservation into a payment.
_USAGE_SIGN = {"reserve": 1, "release": -1, "settle": 0}


async def append(
    session: AsyncSession,
    entries: Sequence[LedgerEntry],
    *,
    budgets: Mapping[str, Decimal | None] | None = None,
) -> list[str]:
    """Append entries to the ledger, and move the budgets' usage rows with them
    (`move_usage`: what it returns are the programs whose budget the entries would
    overspend, and for which nothing was raised; the caller then rolls back)."""
    conn = await session.connection()
    # Plain INSERTs: the entries are never changed, so the session need not track them.
    await insert_rows(conn, [(TABLE, [row_values(e) for e in entries])])
    return await move_usage(conn, entries, budgets=budgets)


async def move_usage(
    conn: AsyncConnection,
    entries: Sequence[LedgerEntry],
    *,
    budgets: Mapping[str, Decimal | None] | None = None,
) -> list[str]:
    """Move the budgets' usage rows by entries written in the same transaction.

    With `budgets` (program id -> annual budget, None for none), a usage row is
    raised only while it stays within its budget, in the same atomic statement
    that raises it: what it returns are the programs whose budget the entries
    would overspend, and for which nothing was raised; the caller then rolls back.
    So placing an order need not lock a program for the whole of its transaction:
    the row is locked from this statement to the commit.

    The rows are changed in a fixed order (program, year), so two transactions
    writing entries of several programs cannot deadlock on them; each change is an
    atomic increment, so none is lost.
    """
    moves: dict[tuple[str, int], Decimal] = defaultdict(lambda: ZERO)
    for entry_ in entries:
        moves[(entry_.program_id, entry_.year)] += _USAGE_SIGN[entry_.kind] * entry_.amount
    statements = _usage_statements(conn.dialect.name)
    over = []
    for (program_id, year), delta in sorted(moves.items()):
        if not delta:
            continue
        budget = budgets.get(program_id) if budgets is not None and delta > 0 else None
        params = {"usage_program": program_id, "usage_year": year, "delta": delta}
        if budget is None:
            await conn.execute(statements["add"], params)
            continue
        within = (
            delta <= budget
            and (await conn.execute(statements["add_within"], {**params, "budget": budget})).first()
        )
        if not within:
            over.append(program_id)
    return over


def _usage_statements(dialect: str) -> dict[str, Any]:
    statements = _USAGE_STATEMENTS.get(dialect)
    if statements is None:
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        table = BudgetUsage.__table__
        delta = bindparam("delta", type_=MoneyFen())
        add = insert(BudgetUsage).values(
            program_id=bindparam("usage_program"), year=bindparam("usage_year"), used=delta
        )
        raised = {"used": table.c.used + delta}
        index = [table.c.program_id, table.c.year]
        statements = _USAGE_STATEMENTS[dialect] = {
            "add": add.on_conflict_do_update(index_elements=index, set_=raised),
            "add_within": add.on_conflict_do_update(
                index_elements=index,
                set_=raised,
                where=table.c.used + delta <= bindparam("budget", type_=MoneyFen()),
            ).returning(table.c.used),
        }
    return statements


_USAGE_STATEMENTS: dict[str, dict[str, Any]] = {}


def used(balances: dict[str, Balance]) -> dict[str, Decimal]:
    return {program_id: b.used for program_id, b in balances.items()}


def entry(
    *,
    enterprise_id: str,
    program_id: str,
    year: int,
    order_id: str,
    part_id: str,
    kind: str,
    amount: Decimal,
) -> LedgerEntry:
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind}")
    if amount < 0:
        raise ValueError("ledger amounts are never negative; the kind gives the direction")
    return LedgerEntry(
        id=new_id("led"),
        enterprise_id=enterprise_id,
        program_id=program_id,
        year=year,
        order_id=order_id,
        part_id=part_id,
        kind=kind,
        amount=amount,
        created_at=utcnow(),
    )


async def reservation_year(session: AsyncSession, order_id: str) -> int | None:
    """The voucher year an order's subsidy was reserved in (None: nothing reserved)."""
    year: int | None = await session.scalar(
        select(LedgerEntry.year)
        .where(LedgerEntry.order_id == order_id, LedgerEntry.kind == "reserve")
        .limit(1)
    )
    return year


async def voucher_usage(session: AsyncSession, enterprise: Enterprise, year: int) -> VoucherUsage:
    # Imported here: the subsidies service reads budgets from this module.
    from app.enterprises import service as enterprise_service
    from app.subsidies import service as subsidy_service
    from app.subsidies.rules import EnterpriseFacts, effective_cap

    balances = await enterprise_balances(session, enterprise.id, year)
    facts = EnterpriseFacts(
        region_code=enterprise.region_code,
        is_foundation_model_enterprise=enterprise.is_foundation_model_enterprise,
        relaxed_caps=enterprise_service.relaxed_caps(enterprise),
    )
    items = []
    for stored in await subsidy_service.load_programs(session):
        program = stored.program
        if program.voucher_type != "compute" and program.id not in balances:
            continue
        balance = balances.get(program.id, Balance())
        cap = effective_cap(program, facts)
        items.append(
            VoucherUsageItem(
                program_id=program.id,
                cap=cap,
                reserved=balance.reserved,
                settled=balance.settled,
                remaining=None if cap is None else max(ZERO, cap - balance.used),
            )
        )
    return VoucherUsage(enterprise_id=enterprise.id, year=year, items=items)
