"""Subsidy programs as data: storage, operator changes, and what-if quotes."""

import logging
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, Unprocessable
from app.core.security import Principal
from app.core.timeutil import today_shanghai
from app.ledger import service as ledger
from app.models import ProviderList, SubsidyProgram
from app.subsidies.rules import Program, Usage, evaluate
from app.subsidies.schemas import (
    ProgramCreate,
    ProgramOut,
    ProgramUpdate,
    SubsidyQuoteRequest,
    SubsidyQuoteResponse,
    program_out,
    quote_response,
)

log = logging.getLogger("computematch.subsidies")

DATA_FIELDS = (
    "id",
    "name",
    "voucher_type",
    "level",
    "status",
    "effective_from",
    "effective_until",
    "enterprise_regions",
    "provider_lists_any",
    "purposes",
    "base",
    "rates",
    "enterprise_annual_cap",
    "cap_relaxable_for_foundation_model_enterprises",
    "annual_budget",
    "source",
)


def row_data(row: SubsidyProgram) -> dict[str, Any]:
    """A stored program in the policies.md JSON format."""
    data = {name: getattr(row, name) for name in DATA_FIELDS}
    for name in ("effective_from", "effective_until"):
        data[name] = data[name].isoformat() if data[name] is not None else None
    for name in ("enterprise_annual_cap", "annual_budget"):
        data[name] = None if data[name] is None else f"{data[name]:.2f}"
    return data


def to_program(row: SubsidyProgram) -> Program:
    return Program.from_data(row_data(row))


async def load_programs(session: AsyncSession) -> list[tuple[SubsidyProgram, Program]]:
    # A handful of rows: read them fresh so that a change takes effect on the next
    # request in every process, with no cache to invalidate.
    rows = (await session.scalars(select(SubsidyProgram).order_by(SubsidyProgram.id))).all()
    return [(row, to_program(row)) for row in rows]


async def programs_out(session: AsyncSession, rows: list[SubsidyProgram]) -> list[ProgramOut]:
    year = today_shanghai().year
    balances = await ledger.program_balances(session, year, [r.id for r in rows])
    return [
        program_out(
            to_program(r),
            budget_used=balances[r.id].used if r.id in balances else Decimal("0.00"),
            version=r.version,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


async def _check_lists(session: AsyncSession, lists: list[str]) -> None:
    if not lists:
        return
    known = set((await session.scalars(select(ProviderList.id))).all())
    unknown = [name for name in lists if name not in known]
    if unknown:
        raise Unprocessable.field(
            ["body", "provider_lists_any"],
            f"unknown list(s) {', '.join(unknown)}; known lists: {', '.join(sorted(known))}",
        )


def _store(row: SubsidyProgram, data: dict[str, Any]) -> None:
    program = Program.from_data(data)
    row.name = data["name"]
    row.voucher_type = data["voucher_type"]
    row.level = data["level"]
    row.status = data["status"]
    row.effective_from = program.effective_from
    row.effective_until = program.effective_until
    row.enterprise_regions = data["enterprise_regions"]
    row.provider_lists_any = data["provider_lists_any"]
    row.purposes = data["purposes"]
    row.base = data["base"]
    row.rates = data["rates"]
    row.enterprise_annual_cap = program.enterprise_annual_cap
    row.cap_relaxable_for_foundation_model_enterprises = program.cap_relaxable
    row.annual_budget = program.annual_budget
    row.source = data["source"]


async def create_program(
    session: AsyncSession, principal: Principal, payload: ProgramCreate
) -> SubsidyProgram:
    if await session.get(SubsidyProgram, payload.id) is not None:
        raise Conflict(f"subsidy program {payload.id} already exists")
    data = payload.to_data()
    await _check_lists(session, data["provider_lists_any"])
    row = SubsidyProgram(id=payload.id, version=1)
    _store(row, data)
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, "program.created", "subsidy_program", row.id, after=row_data(row)
    )
    log.info(
        "subsidy program created: %s",
        row.id,
        extra={
            "event": "program.created",
            "program_id": row.id,
            "status": row.status,
            "version": row.version,
        },
    )
    return row


async def update_program(
    session: AsyncSession, principal: Principal, row: SubsidyProgram, payload: ProgramUpdate
) -> SubsidyProgram:
    before = row_data(row)
    merged = payload.apply_to(before)
    try:
        # The merged program must be valid as a whole, as if it were created anew.
        ProgramCreate.model_validate(merged)
    except ValidationError as exc:
        messages = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        raise Unprocessable(
            "the program would not be valid after this change: " + "; ".join(messages),
            errors=[
                {"loc": ["body", *e["loc"]], "msg": m}
                for e, m in zip(exc.errors(), messages, strict=True)
            ],
        ) from None
    if "provider_lists_any" in payload.model_fields_set:
        await _check_lists(session, merged["provider_lists_any"])
    _store(row, merged)
    row.version += 1
    await session.flush()
    after = row_data(row)
    await audit.record(
        session,
        principal,
        "program.updated",
        "subsidy_program",
        row.id,
        before=before,
        after=after,
    )
    changed = sorted(name for name in after if after[name] != before.get(name))
    log.info(
        "subsidy program updated: %s (%s)",
        row.id,
        ", ".join(changed) or "no change",
        extra={
            "event": "program.updated",
            "program_id": row.id,
            "status": row.status,
            "version": row.version,
            "changed_fields": changed,
        },
    )
    return row


async def what_if(session: AsyncSession, payload: SubsidyQuoteRequest) -> SubsidyQuoteResponse:
    """The subsidy under the programs stored now, with the stated prior claims in place
    of the ledger; program budgets as recorded for the contract's year."""
    programs = [program for _, program in await load_programs(session)]
    budgets = await ledger.program_balances(session, payload.contract_date.year)
    enterprise, provider, contract = payload.to_facts()
    usage = Usage(enterprise_used=dict(payload.already_claimed), budget_used=ledger.used(budgets))
    result = evaluate(programs, enterprise, provider, contract, usage)
    return quote_response(payload.gross_amount, result)
