"""The voucher ledger: append-only entries; every balance is a sum.

For one enterprise, program and year:
  used     = Σ reserve − Σ release     (what counts against the cap and the budget)
  settled  = Σ settle
  reserved = used − settled            (held for orders not yet settled)
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import Select, Table, bindparam, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_rows, row_values, transient
from app.core.ids import new_id
from app.core.money import ZERO
from app.core.timeutil import utcnow
from app.models import BudgetUsage, LedgerEntry

KINDS = ("reserve", "settle", "release", "approve", "disburse")
# A claim's entries are folded apart from an order's: `claim_release` gives back settled
# subsidy the voucher office did not approve (see LedgerEntry).
CLAIM_KINDS = ("claim_approve", "claim_disburse", "claim_release")


@dataclass(frozen=True)
class Balance:
    reserved: Decimal = ZERO
    settled: Decimal = ZERO

    @property
    def used(self) -> Decimal:
        return self.reserved + self.settled


def fold(rows: Iterable[tuple[str, str, Decimal | None]]) -> dict[str, Balance]:
    """(program id, folded kind, amount) rows, summed into each program's Balance."""
    sums: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(KINDS + CLAIM_KINDS, ZERO)
    )
    for program_id, kind, amount in rows:
        sums[program_id][kind] += amount or ZERO
    return {
        program_id: Balance(
            reserved=s["reserve"] - s["settle"] - s["release"],
            # What a claim's review did not approve no longer counts as used.
            settled=s["settle"] - s["claim_release"],
        )
        for program_id, s in sums.items()
    }


# The kind an entry is folded as: a claim's entries apart (`CLAIM_KINDS`).
FOLDED_KIND = case(
    (LedgerEntry.claim_id.is_(None), LedgerEntry.kind),
    else_=literal("claim_") + LedgerEntry.kind,
).label("kind")


def folded_kind(entry: LedgerEntry) -> str:
    return entry.kind if entry.claim_id is None else "claim_" + entry.kind


async def enterprise_balances(
    session: AsyncSession, enterprise_id: str, year: int
) -> dict[str, Balance]:
    rows = await session.execute(
        select(LedgerEntry.program_id, FOLDED_KIND, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.enterprise_id == enterprise_id, LedgerEntry.year == year)
        .group_by(LedgerEntry.program_id, FOLDED_KIND)
    )
    return fold((p, k, a) for p, k, a in rows)


async def program_balances(
    session: AsyncSession, year: int, program_ids: Iterable[str] | None = None
) -> dict[str, Balance]:
    stmt = (
        select(LedgerEntry.program_id, FOLDED_KIND, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.year == year)
        .group_by(LedgerEntry.program_id, FOLDED_KIND)
    )
    if program_ids is not None:
        stmt = stmt.where(LedgerEntry.program_id.in_(list(program_ids)))
    return fold((p, k, a) for p, k, a in await session.execute(stmt))


def _sums(whose: str) -> Select[str, str, str, Decimal]:
    return select(
        literal(whose).label("whose"),
        LedgerEntry.program_id,
        FOLDED_KIND,
        func.sum(LedgerEntry.amount).label("amount"),
    ).group_by(LedgerEntry.program_id, FOLDED_KIND)


class BalanceRow(Protocol):
    """A row of `MINE` or `BUDGETS` (or of a statement that carries them), by name."""

    @property
    def whose(self) -> str: ...  # "enterprise" (MINE) or "program" (BUDGETS)
    @property
    def program_id(self) -> str: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def amount(self) -> Decimal | None: ...


# The enterprise's sums and the budgets' usage, as (whose, program_id, kind, amount)
# rows: `order_balances` reads both; an order reads them beside its offers' holds.
MINE = _sums("enterprise").where(
    LedgerEntry.enterprise_id == bindparam("enterprise_id"), LedgerEntry.year == bindparam("year")
)
# The budgets as their usage rows keep them (see BudgetUsage), shaped as ledger sums.
BUDGETS = select(
    literal("program").label("whose"),
    BudgetUsage.program_id,
    literal("reserve").label("kind"),
    BudgetUsage.used.label("amount"),
).where(
    BudgetUsage.year == bindparam("year"),
    BudgetUsage.program_id.in_(bindparam("program_ids", expanding=True)),
)
_MINE_AND_BUDGETS = union_all(MINE, BUDGETS)


async def order_balances(
    session: AsyncSession, enterprise_id: str, year: int, program_ids: Sequence[str]
) -> tuple[dict[str, Balance], dict[str, Balance]]:
    """The enterprise's balances and the budgets of `program_ids` in `year`, in one read
    (what pricing checks caps and budgets against; an order reads it under the
    enterprise's lock; its budgets are guarded again by the database as the ledger
    entries are written: `append`)."""
    params: dict[str, Any] = {"enterprise_id": enterprise_id, "year": year}
    if program_ids:
        params["program_ids"] = list(program_ids)
    # Core statements run on the session's connection: the ORM session's own layers
    # cost more than the statements (here and in `append`).
    conn = await session.connection()
    rows = (await conn.execute(_MINE_AND_BUDGETS if program_ids else MINE, params)).all()
    return split_balances(rows)


def split_balances(
    rows: Iterable[BalanceRow],
) -> tuple[dict[str, Balance], dict[str, Balance]]:
    """(the enterprise's balances, the budgets') from rows of `MINE` and `BUDGETS`."""
    mine, budgets = [], []
    for row in rows:
        if row.whose == "enterprise":
            mine.append((row.program_id, str(row.kind), row.amount))
        elif row.whose == "program":
            budgets.append((row.program_id, str(row.kind), row.amount))
    return fold(mine), fold(budgets)


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
# The name the database gives its refusal of a reservation past a program's annual
# budget (migration 0006: a trigger on this table moves the budgets' usage rows).
BUDGET_CHECK = "ck_budget_usage_within_budget"


def in_lock_order(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """Entries in the order their budgets' usage rows are to be locked.

    Each entry moves its program's usage row, on PostgreSQL at the commit, in the
    order the entries were written: two transactions that write entries of the
    same programs in one fixed order cannot deadlock on those rows."""
    return sorted(entries, key=lambda e: (e.program_id, e.year))


async def append(session: AsyncSession, entries: Sequence[LedgerEntry]) -> None:
    """Append entries to the ledger. The database moves the budgets' usage rows with
    them (Σ reserve − Σ release) and refuses, as `BUDGET_CHECK`, a reservation that
    would overspend a budget; on PostgreSQL that happens at the commit."""
    conn = await session.connection()
    # Plain INSERTs: the entries are never changed, so the session need not track them.
    await insert_rows(conn, [(TABLE, [row_values(e) for e in in_lock_order(entries)])])


def overspends_budget(error: BaseException) -> bool:
    """Whether a database error is the refusal of a reservation past a budget."""
    return BUDGET_CHECK in str(getattr(error, "orig", error))


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
    claim_id: str | None = None,
) -> LedgerEntry:
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind}")
    if amount < 0:
        raise ValueError("ledger amounts are never negative; the kind gives the direction")
    return transient(
        LedgerEntry,
        id=new_id("led"),
        enterprise_id=enterprise_id,
        program_id=program_id,
        year=year,
        order_id=order_id,
        part_id=part_id,
        kind=kind,
        amount=amount,
        claim_id=claim_id,
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
