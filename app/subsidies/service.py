"""Subsidy programs as data: storage, operator changes, and what-if quotes."""

import logging
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.db import Statements, on_session
from app.core.errors import Conflict, Unprocessable
from app.core.money import ZERO
from app.core.security import Principal
from app.core.timeutil import today_shanghai
from app.enterprises import service as enterprise_service
from app.ledger import service as ledger
from app.ledger.schemas import VoucherUsage, VoucherUsageItem
from app.models import Enterprise, ProviderList, SubsidyProgram
from app.models.status import ProgramStatus
from app.prices import service as prices_service
from app.subsidies.rules import EnterpriseFacts, Program, Usage, effective_cap, evaluate
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
    "claims_open",
    "claims_close",
    "excludes_related_parties",
    "dual_review_above",
    "funding",
    "max_price_ratio",
)


def row_data(row: SubsidyProgram) -> dict[str, Any]:
    """A stored program in the policies.md JSON format."""
    return _as_data({name: getattr(row, name) for name in DATA_FIELDS})


def _as_data(data: dict[str, Any]) -> dict[str, Any]:
    """A program's stored values (`DATA_FIELDS`) in the policies.md JSON format."""
    for name in ("effective_from", "effective_until"):
        data[name] = data[name].isoformat() if data[name] is not None else None
    for name in ("enterprise_annual_cap", "annual_budget", "dual_review_above"):
        data[name] = None if data[name] is None else f"{data[name]:.2f}"
    return data


def to_program(row: SubsidyProgram) -> Program:
    return Program.from_data(row_data(row))


@dataclass(frozen=True)
class StoredProgram:
    """A program as the rule engine reads it, and the stored version it came from."""

    version: int
    program: Program


# What identifies the table's state: every change through the API raises a version (and
# programs are never deleted), so any change moves the count or the sum; the newest
# update time covers rows replaced by other means (a test's reset, a restore).
_STATE_PARTS: tuple[Any, ...] = (
    func.count(),
    func.coalesce(func.sum(SubsidyProgram.version), 0),
    func.max(SubsidyProgram.updated_at),
)
_PROGRAMS_STATE = select(*_STATE_PARTS)
# Every program's version and stored values (`DATA_FIELDS`), as plain columns.
_PROGRAM_ROWS = select(
    SubsidyProgram.version, *(getattr(SubsidyProgram, name) for name in DATA_FIELDS)
).order_by(SubsidyProgram.id)
# The same, as columns another read can carry (one round trip less for an order or a
# match, which read their enterprise anyway).
PROGRAMS_STATE_COLUMNS = tuple(
    select(part).select_from(SubsidyProgram).scalar_subquery() for part in _STATE_PARTS
)


class ProgramCache:
    """Parsed programs, kept per process and checked against the table on every use.

    Every match, order and what-if quote needs every program; parsing them each
    time cost more than pricing. The check is one aggregate row read in the
    caller's transaction, so a change made by any process is seen by the next
    request of every process, never a moment later.
    """

    def __init__(self) -> None:
        self._state: tuple[Any, ...] | None = None
        self._programs: tuple[StoredProgram, ...] = ()

    async def load(
        self, source: Statements, state: tuple[Any, ...] | None = None
    ) -> list[StoredProgram]:
        if state is None:
            state = tuple((await source.fetch(_PROGRAMS_STATE, {}))[0])
        if state != self._state:
            rows = await source.fetch(_PROGRAM_ROWS, {})
            # Read after the state: a change in between is seen again at the next check.
            self._programs = tuple(
                StoredProgram(
                    version, Program.from_data(_as_data(dict(zip(DATA_FIELDS, data, strict=True))))
                )
                for version, *data in rows
            )
            self._state = state
        return list(self._programs)


# One cache per database (engine): the tests run several apps in one process.
_caches: "weakref.WeakKeyDictionary[Any, ProgramCache]" = weakref.WeakKeyDictionary()


async def load_programs(
    source: Statements, state: tuple[Any, ...] | None = None
) -> list[StoredProgram]:
    """Every stored program, by id, as it is in the database now. `state`: the
    table's state as `PROGRAMS_STATE_COLUMNS` read it in this transaction, if a
    read already carried them."""
    key = source.database_key
    cache = _caches.get(key)
    if cache is None:
        cache = _caches[key] = ProgramCache()
    return await cache.load(source, state)


async def programs_out(session: AsyncSession, rows: list[SubsidyProgram]) -> list[ProgramOut]:
    year = today_shanghai().year
    used = await ledger.programs_used(session, year, [r.id for r in rows])
    return [
        program_out(
            to_program(r),
            budget_used=used.get(r.id, Decimal("0.00")),
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
    row.claims_open = program.claims_open
    row.claims_close = program.claims_close
    row.excludes_related_parties = program.excludes_related_parties
    row.dual_review_above = program.dual_review_above
    stored = program.to_data()
    row.funding = stored["funding"]
    row.max_price_ratio = stored["max_price_ratio"]


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
    programs = [stored.program for stored in await load_programs(on_session(session))]
    budgeted = [p.id for p in programs if p.annual_budget is not None]
    budgets = await ledger.programs_used(session, payload.contract_date.year, budgeted)
    median = None
    if payload.accelerator_id is not None:
        await prices_service.known_accelerators(
            session, [payload.accelerator_id], ("body", "accelerator_id")
        )
        median = (await prices_service.medians(on_session(session))).get(payload.accelerator_id)
    enterprise, provider, contract = payload.to_facts(median)
    usage = Usage(enterprise_used=dict(payload.already_claimed), budget_used=budgets)
    result = evaluate(programs, enterprise, provider, contract, usage)
    return quote_response(payload.gross_amount, result)


async def voucher_usage(session: AsyncSession, enterprise: Enterprise, year: int) -> VoucherUsage:
    """Per program: the enterprise's cap, reserved, settled and remaining amounts in
    `year` (the ledger's balances against the programs' caps)."""
    balances = await ledger.enterprise_balances(session, enterprise.id, year)
    facts = EnterpriseFacts(
        region_code=enterprise.region_code,
        is_foundation_model_enterprise=enterprise.is_foundation_model_enterprise,
        relaxed_caps=enterprise_service.relaxed_caps(enterprise),
    )
    items = []
    for stored in await load_programs(on_session(session)):
        program = stored.program
        if program.voucher_type != "compute" and program.id not in balances:
            continue
        # A draft pays nothing until activated: its untouched cap would read as usable.
        if program.status == ProgramStatus.draft and program.id not in balances:
            continue
        balance = balances.get(program.id, ledger.Balance())
        cap = effective_cap(program, facts)
        items.append(
            VoucherUsageItem(
                program_id=program.id,
                status=program.status,
                cap=cap,
                reserved=balance.reserved,
                settled=balance.settled,
                remaining=None if cap is None else max(ZERO, cap - balance.used),
            )
        )
    return VoucherUsage(enterprise_id=enterprise.id, year=year, items=items)
