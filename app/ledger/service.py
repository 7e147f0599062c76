"""The voucher ledger: append-only entries; every balance is a sum.

For one enterprise, program and year:
  used     = Σ reserve − Σ release     (what counts against the cap and the budget)
  settled  = Σ settle
  reserved = used − settled            (held for orders not yet settled)
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.ids import new_id
from app.core.money import ZERO
from app.models import LedgerEntry

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
    )
