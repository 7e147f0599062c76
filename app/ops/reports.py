"""The voucher report: per program and year, budget, used, remaining, top enterprises.

Figures are sums over the append-only voucher ledger, as everywhere else:
used = reserved + settled = Σ reserve − Σ release; settled = Σ settle.
"""

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.money import ZERO, format_money
from app.models import Enterprise, LedgerEntry, SubsidyProgram


@dataclass(frozen=True)
class EnterpriseUse:
    enterprise_id: str
    name: str
    region_code: str
    reserved: Decimal
    settled: Decimal

    @property
    def used(self) -> Decimal:
        return self.reserved + self.settled


@dataclass
class ProgramReport:
    program_id: str
    name: str
    status: str
    year: int
    budget: Decimal | None
    reserved: Decimal = ZERO
    settled: Decimal = ZERO
    enterprises: int = 0
    top: list[EnterpriseUse] = field(default_factory=list)

    @property
    def used(self) -> Decimal:
        return self.reserved + self.settled

    @property
    def remaining(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.used


async def voucher_report(session: AsyncSession, year: int, top: int) -> list[ProgramReport]:
    programs = {
        p.id: ProgramReport(
            program_id=p.id, name=p.name, status=p.status, year=year, budget=p.annual_budget
        )
        for p in await session.scalars(select(SubsidyProgram).order_by(SubsidyProgram.id))
    }
    sums: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    rows = await session.execute(
        select(
            LedgerEntry.program_id,
            LedgerEntry.enterprise_id,
            LedgerEntry.kind,
            func.sum(LedgerEntry.amount),
        )
        .where(LedgerEntry.year == year)
        .group_by(LedgerEntry.program_id, LedgerEntry.enterprise_id, LedgerEntry.kind)
    )
    for program_id, enterprise_id, kind, amount in rows:
        sums[(program_id, enterprise_id)][kind] += amount or ZERO
    uses: dict[str, list[tuple[str, Decimal, Decimal]]] = defaultdict(list)
    for (program_id, enterprise_id), s in sums.items():
        used = s["reserve"] - s["release"]
        settled = s["settle"]
        uses[program_id].append((enterprise_id, used - settled, settled))
    wanted = {
        enterprise_id
        for program_uses in uses.values()
        for enterprise_id, _, _ in sorted(program_uses, key=lambda u: -(u[1] + u[2]))[:top]
    }
    enterprises = {
        e.id: e for e in await session.scalars(select(Enterprise).where(Enterprise.id.in_(wanted)))
    }
    for program_id, program_uses in uses.items():
        report = programs.get(program_id)
        if report is None:  # a ledger row of a program since removed: cannot happen (FK)
            continue
        report.reserved = sum((r for _, r, _ in program_uses), ZERO)
        report.settled = sum((s for _, _, s in program_uses), ZERO)
        report.enterprises = sum(1 for _, r, s in program_uses if r + s > 0)
        ranked = sorted(program_uses, key=lambda u: (-(u[1] + u[2]), u[0]))
        report.top = [
            EnterpriseUse(
                enterprise_id=enterprise_id,
                name=enterprises[enterprise_id].name,
                region_code=enterprises[enterprise_id].region_code,
                reserved=reserved,
                settled=settled,
            )
            for enterprise_id, reserved, settled in ranked[:top]
            if reserved + settled > 0
        ]
    return list(programs.values())


CSV_COLUMNS = (
    "program_id",
    "program_name",
    "status",
    "year",
    "budget",
    "reserved",
    "settled",
    "used",
    "remaining",
    "rank",
    "enterprise_id",
    "enterprise_name",
    "enterprise_region_code",
    "enterprise_reserved",
    "enterprise_settled",
    "enterprise_used",
)


def _money(value: Decimal | None) -> str:
    return "" if value is None else format_money(value)


def write_csv(stream: IO[str], reports: list[ProgramReport]) -> None:
    """One row per program and top enterprise (program figures repeated); a program
    nobody used has one row with the enterprise columns empty. An empty budget or
    remaining means the program has no annual budget."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        program = [
            r.program_id,
            r.name,
            r.status,
            r.year,
            _money(r.budget),
            _money(r.reserved),
            _money(r.settled),
            _money(r.used),
            _money(r.remaining),
        ]
        if not r.top:
            writer.writerow([*program, "", "", "", "", "", "", ""])
        for rank, e in enumerate(r.top, start=1):
            writer.writerow(
                [
                    *program,
                    rank,
                    e.enterprise_id,
                    e.name,
                    e.region_code,
                    _money(e.reserved),
                    _money(e.settled),
                    _money(e.used),
                ]
            )
