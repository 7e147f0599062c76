"""What the console's pages show, read from the app's own tables and services.

Sums are done by the database (grouped by program, day, district, origin...), so a page
reads a few hundred rows whatever the year's volume.
"""

import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.console.session import ConsoleUser
from app.core import sqltime
from app.core.db import Base, MoneyFen, on_session
from app.core.money import ZERO, round_down
from app.core.timeutil import SHANGHAI
from app.demo import HANGZHOU_DISTRICTS, OTHER_ZHEJIANG
from app.ledger import service as ledger
from app.models import (
    Accelerator,
    Enterprise,
    LedgerEntry,
    Offer,
    OrderPart,
    PricePaidDay,
    Provider,
    SubsidyProgram,
)
from app.prices import service as prices_service
from app.prices.index import weighted_median

FEN = Decimal("0.01")
DISTRICTS = {**HANGZHOU_DISTRICTS, **OTHER_ZHEJIANG}
TOP_ENTERPRISES = 10


# Dialect-aware pieces --------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def local_day(session: AsyncSession, column: Any) -> ColumnElement[Any]:
    """The calendar day of an instant column in Asia/Shanghai."""
    return sqltime.local_day(_dialect(session), column)


def hours_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    return sqltime.hours_between(_dialect(session), start, end)


def money_sum(expr: Any) -> ColumnElement[Decimal]:
    """Σ of fen, read back as yuan (a Decimal) on every backend."""
    return type_coerce(func.sum(expr), MoneyFen)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def district_name(code: str) -> str:
    return DISTRICTS.get(code, code)


def claims_enabled() -> bool:
    """Whether the app keeps voucher claims (the claims pages and figures)."""
    import importlib.util

    return importlib.util.find_spec("app.claims") is not None


# Programs and their burn -----------------------------------------------------------


@dataclass(frozen=True)
class RateTierView:
    rate: Decimal
    when: dict[str, Any]


@dataclass(frozen=True)
class Burn:
    """Cumulative reserved + settled at the end of each week of the year (week 0 starts
    on 1 January), up to the week of `today`; the projection's end-of-year figure and the
    day it meets the budget, if it does within the year."""

    year: int
    weekly: list[Decimal]
    budget: Decimal | None
    projected_year_end: Decimal | None
    meets_budget_on: date | None
    weeks_in_year: int


@dataclass
class ProgramView:
    id: str
    name: str
    status: str
    level: str
    rates: list[RateTierView]
    budget: Decimal | None
    reserved: Decimal = ZERO
    settled: Decimal = ZERO
    # Filled in from the voucher claims once the program has any (None: not tracked).
    claimed: Decimal | None = None
    approved: Decimal | None = None
    paid: Decimal | None = None
    funding: list[tuple[str, Decimal]] = field(default_factory=list)
    burn: Burn | None = None

    @property
    def used(self) -> Decimal:
        return self.reserved + self.settled

    @property
    def remaining(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.used


def funding_of(row: SubsidyProgram) -> list[tuple[str, Decimal]]:
    """The program's payers and their shares (claims.md `funding`); by default the
    program alone pays everything."""
    value: Any = getattr(row, "funding", None)
    if value:
        return [(str(f["payer"]), Decimal(str(f["share"]))) for f in value]
    return [(row.id, Decimal("1.00"))]


async def visible_programs(session: AsyncSession, user: ConsoleUser) -> list[SubsidyProgram]:
    stmt = select(SubsidyProgram).order_by(SubsidyProgram.id)
    if user.program_ids is not None:
        stmt = stmt.where(SubsidyProgram.id.in_(sorted(user.program_ids)))
    return list((await session.scalars(stmt)).all())


def _view(row: SubsidyProgram) -> ProgramView:
    return ProgramView(
        id=row.id,
        name=row.name,
        status=row.status,
        level=row.level,
        rates=[RateTierView(Decimal(str(t["rate"])), dict(t.get("when") or {})) for t in row.rates],
        budget=row.annual_budget,
        funding=funding_of(row),
    )


def burn(year: int, days: dict[date, Decimal], budget: Decimal | None, today: date) -> Burn:
    """The weekly cumulative use and its straight-line projection (pure: tested alone)."""
    first = date(year, 1, 1)
    last = date(year, 12, 31)
    weeks_in_year = (last - first).days // 7 + 1
    if today < first:
        upto = -1
    else:
        upto = (min(today, last) - first).days // 7
    weekly_net = [ZERO] * weeks_in_year
    for on, amount in days.items():
        # An entry written before the year (an order placed in December for January)
        # counts in the first week; after it, in the last.
        week = min(max((on - first).days // 7, 0), weeks_in_year - 1)
        weekly_net[week] += amount
    cumulative: list[Decimal] = []
    running = ZERO
    for week in range(upto + 1):
        running += weekly_net[week]
        cumulative.append(running)
    projected: Decimal | None = None
    meets: date | None = None
    if first <= today <= last and running > 0:
        elapsed = (today - first).days + 1
        per_day = running / elapsed
        total_days = (last - first).days + 1
        projected = (per_day * total_days).quantize(FEN, rounding=ROUND_DOWN)
        if budget is not None and budget > 0:
            if running >= budget:
                meets = today
            else:
                day_index = int((budget / per_day).to_integral_value(rounding="ROUND_CEILING"))
                if day_index <= total_days:
                    meets = first + timedelta(days=day_index - 1)
    return Burn(year, cumulative, budget, projected, meets, weeks_in_year)


async def programs_overview(
    session: AsyncSession, user: ConsoleUser, year: int, today: date
) -> list[ProgramView]:
    rows = await visible_programs(session, user)
    views = [_view(r) for r in rows]
    ids = [v.id for v in views]
    figures = await ledger_figures(session, year, ids, await ledger_state(session, year, ids))
    for view in views:
        _apply(view, figures.get(view.id, LedgerFigures.empty()), year, today)
    await _add_claim_figures(session, views, year)
    return views


def _apply(view: ProgramView, figures: "LedgerFigures", year: int, today: date) -> None:
    view.reserved, view.settled = figures.balance.reserved, figures.balance.settled
    view.burn = burn(year, figures.days, view.budget, today)
    if claims_enabled():
        view.approved, view.paid = figures.approved, figures.paid


# What a page sums over a program's ledger, kept per process ---------------------------


@dataclass(frozen=True)
class LedgerFigures:
    """Everything the pages sum over one program's ledger entries of one year."""

    balance: ledger.Balance
    days: dict[date, Decimal]
    approved: Decimal
    paid: Decimal

    @classmethod
    def empty(cls) -> "LedgerFigures":
        return cls(ledger.Balance(), {}, ZERO, ZERO)


class FiguresCache:
    """Sums over a program's ledger of a year, kept per process and checked against the
    ledger on every use (as ProgramCache keeps the programs).

    The ledger is append-only: the number of a program's entries of a year changes with
    every entry written and with nothing else, so it tells whether a sum kept is still
    the sum. Counting is an index-only read (`ix_ledger_program`); the sums it spares
    group every entry of the year by day, part or enterprise, which took seconds at
    100,000 orders. The state is read before the sums: an entry written in between is
    in the sums but not in the state kept, and the next use reads the sums again.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int], tuple[Any, Any]] = {}

    def get(self, key: tuple[str, int], state: Any) -> Any:
        kept = self.entries.get(key)
        return kept[1] if kept is not None and kept[0] == state else None

    def put(self, key: tuple[str, int], state: Any, value: Any) -> None:
        self.entries[key] = (state, value)


# One cache per database (engine) and kind of figure: the tests run several apps in one
# process.
_figures: "weakref.WeakKeyDictionary[Any, dict[str, FiguresCache]]" = weakref.WeakKeyDictionary()


def _cache(session: AsyncSession, kind: str) -> FiguresCache:
    per_database = _figures.setdefault(session.sync_session.get_bind(), {})
    return per_database.setdefault(kind, FiguresCache())


async def ledger_state(
    session: AsyncSession, year: int, program_ids: Sequence[str]
) -> dict[str, int]:
    """How many ledger entries each program has for the year (absent: none)."""
    if not program_ids:
        return {}
    rows = await session.execute(
        select(LedgerEntry.program_id, func.count())
        .where(LedgerEntry.program_id.in_(list(program_ids)), LedgerEntry.year == year)
        .group_by(LedgerEntry.program_id)
    )
    return {program_id: int(n) for program_id, n in rows}


async def _sum_ledgers(
    session: AsyncSession, year: int, program_ids: Sequence[str]
) -> dict[str, LedgerFigures]:
    """The programs' LedgerFigures, summed from their entries in one read: per program,
    day (Asia/Shanghai, of the entry's writing) and kind (a claim's apart, as the
    ledger folds them)."""
    day = local_day(session, LedgerEntry.created_at)
    rows = await session.execute(
        select(LedgerEntry.program_id, day, ledger.FOLDED_KIND, money_sum(LedgerEntry.amount))
        .where(LedgerEntry.year == year, LedgerEntry.program_id.in_(list(program_ids)))
        .group_by(LedgerEntry.program_id, day, ledger.FOLDED_KIND)
    )
    by_kind: list[tuple[str, str, Decimal | None]] = []
    days: dict[str, dict[date, Decimal]] = defaultdict(dict)
    claims: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for program_id, on, folded, amount in rows:
        amount = amount or ZERO
        by_kind.append((program_id, folded, amount))
        kind = folded.removeprefix("claim_")
        # The burn: reserve − release, a claim's releases too (as budget_usage moves).
        signed = amount if kind == "reserve" else -amount if kind == "release" else None
        if signed is not None:
            when = _as_date(on)
            days[program_id][when] = days[program_id].get(when, ZERO) + signed
        elif kind in ("approve", "disburse"):
            claims[(program_id, kind)] += amount
    balances = ledger.fold(by_kind)
    return {
        program_id: LedgerFigures(
            balances.get(program_id, ledger.Balance()),
            days.get(program_id, {}),
            claims[(program_id, "approve")],
            claims[(program_id, "disburse")],
        )
        for program_id in program_ids
    }


async def ledger_figures(
    session: AsyncSession, year: int, program_ids: Sequence[str], state: dict[str, int]
) -> dict[str, LedgerFigures]:
    """Each program's LedgerFigures for the year: those kept where the ledger has not
    moved since `state` (ledger_state, read before), the others summed again (in one
    read of each kind for all of them)."""
    cache = _cache(session, "ledger")
    out: dict[str, LedgerFigures] = {}
    stale: list[str] = []
    for program_id in program_ids:
        kept = cache.get((program_id, year), state.get(program_id, 0))
        if kept is None:
            stale.append(program_id)
        else:
            out[program_id] = kept
    if stale:
        for program_id, figures in (await _sum_ledgers(session, year, stale)).items():
            cache.put((program_id, year), state.get(program_id, 0), figures)
            out[program_id] = figures
    return out


async def _add_claim_figures(session: AsyncSession, views: list[ProgramView], year: int) -> None:
    """Claimed per program and year, where the app keeps voucher claims: the amounts of
    the claims not rejected (approved and paid are ledger sums, see LedgerFigures)."""
    claims_table = Base.metadata.tables.get("voucher_claims")
    if claims_table is None or not views:
        return
    ids = [v.id for v in views]
    claimed: dict[str, Decimal | None] = dict(
        (
            await session.execute(
                select(claims_table.c.program_id, money_sum(claims_table.c.amount))
                .where(
                    claims_table.c.year == year,
                    claims_table.c.program_id.in_(ids),
                    claims_table.c.status != "rejected",
                )
                .group_by(claims_table.c.program_id)
            )
        ).all()
    )
    for view in views:
        view.claimed = claimed.get(view.id) or ZERO
        if view.approved is None:
            view.approved = ZERO
        if view.paid is None:
            view.paid = ZERO


# A program's report ----------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    """One row of a breakdown: what its key used and settled, over how many enterprises
    and card-hours."""

    key: str
    label: str
    used: Decimal
    settled: Decimal
    card_hours: int = 0
    enterprises: int = 0


@dataclass(frozen=True)
class TopEnterprise:
    id: str
    name: str
    credit_code: str
    region_code: str
    used: Decimal
    settled: Decimal


@dataclass
class ProgramReport:
    program: ProgramView
    year: int
    by_district: list[Slice]
    by_origin: list[Slice]
    by_payer: list[Slice]
    top: list[TopEnterprise]


def _fen(value: Decimal | None) -> Decimal:
    return value or ZERO


ReportRow = tuple[str, str, str, str, bool, Decimal | None, Decimal | None, Any]


async def parties_state(session: AsyncSession) -> tuple[Any, ...]:
    """Whether any enterprise or offer was added or changed (a report names the
    enterprises, groups them by district, and splits by the offers' hardware origin,
    which an offer's accelerator decides): how many of each, their latest change (and
    the enterprises' versions)."""
    enterprises = (
        await session.execute(
            select(func.count(), func.sum(Enterprise.version), func.max(Enterprise.updated_at))
        )
    ).one()
    # Every change to an offer moves its updated_at: the latest is an index's last entry.
    offers = (await session.execute(select(func.count(), func.max(Offer.updated_at)))).one()
    return (*enterprises, *offers)


async def _report_rows(
    session: AsyncSession, program_id: str, year: int, entries: int
) -> list[ReportRow]:
    """Per enterprise and hardware origin, what was used, settled and how many
    card-hours: kept per process while neither the program's ledger of the year (its
    `entries`, ledger_state) nor the enterprises or offers changed (see FiguresCache)."""
    cache = _cache(session, "report")
    state = (entries, await parties_state(session))
    kept = cache.get((program_id, year), state)
    if kept is None:
        kept = await _read_report_rows(session, program_id, year)
        cache.put((program_id, year), state, kept)
    return list(kept)


async def _read_report_rows(session: AsyncSession, program_id: str, year: int) -> list[ReportRow]:
    amount = LedgerEntry.amount
    per_part = (
        select(
            LedgerEntry.part_id.label("part_id"),
            LedgerEntry.enterprise_id.label("enterprise_id"),
            money_sum(
                case(
                    (LedgerEntry.kind == "reserve", amount),
                    (LedgerEntry.kind == "release", -amount),
                    else_=0,
                )
            ).label("used"),
            money_sum(case((LedgerEntry.kind == "settle", amount), else_=0)).label("settled"),
        )
        .where(LedgerEntry.program_id == program_id, LedgerEntry.year == year)
        .group_by(LedgerEntry.part_id, LedgerEntry.enterprise_id)
        .subquery()
    )
    # One read: per enterprise and hardware origin, what was used, settled and how many
    # card-hours; the district, origin and top-enterprise breakdowns are its sums.
    hours = hours_between(session, OrderPart.start, OrderPart.end)
    rows = await session.execute(
        select(
            Enterprise.id,
            Enterprise.name,
            Enterprise.unified_social_credit_code,
            Enterprise.region_code,
            Offer.domestic,
            money_sum(per_part.c.used),
            money_sum(per_part.c.settled),
            func.sum(case((OrderPart.holding, OrderPart.cards * hours), else_=0)),
        )
        .join(Enterprise, Enterprise.id == per_part.c.enterprise_id)
        .join(OrderPart, OrderPart.id == per_part.c.part_id)
        .join(Offer, Offer.id == OrderPart.offer_id)
        .group_by(
            Enterprise.id,
            Enterprise.name,
            Enterprise.unified_social_credit_code,
            Enterprise.region_code,
            Offer.domestic,
        )
    )
    return [tuple(r) for r in rows]


async def program_report(
    session: AsyncSession, user: ConsoleUser, program_id: str, year: int, today: date
) -> ProgramReport | None:
    """The report of claims.md for one program and year, or None when the program does
    not exist or is not the user's to see."""
    if not user.may_see(program_id):
        return None
    row = await session.get(SubsidyProgram, program_id)
    if row is None:
        return None
    view = _view(row)
    state = await ledger_state(session, year, [program_id])
    figures = (await ledger_figures(session, year, [program_id], state)).get(
        program_id, LedgerFigures.empty()
    )
    _apply(view, figures, year, today)
    await _add_claim_figures(session, [view], year)
    rows = await _report_rows(session, program_id, year, state.get(program_id, 0))
    districts: dict[str, list[Any]] = {}
    origins: dict[bool, list[Any]] = {True: [ZERO, ZERO, 0, set()], False: [ZERO, ZERO, 0, set()]}
    enterprises: dict[str, list[Any]] = {}
    for ent_id, name, code, region, domestic, used, settled, card_hours in rows:
        used, settled = used or ZERO, settled or ZERO
        d = districts.setdefault(region, [ZERO, ZERO, set()])
        d[0] += used
        d[1] += settled
        d[2].add(ent_id)
        o = origins[bool(domestic)]
        o[0] += used
        o[1] += settled
        o[2] += int(card_hours or 0)
        o[3].add(ent_id)
        e = enterprises.setdefault(ent_id, [name, code, region, ZERO, ZERO])
        e[3] += used
        e[4] += settled
    by_district = sorted(
        (
            Slice(code, district_name(code), u, s, enterprises=len(ids))
            for code, (u, s, ids) in districts.items()
        ),
        key=lambda x: (-x.used, x.key),
    )
    by_origin = [
        Slice(
            key,
            key,
            origins[flag][0],
            origins[flag][1],
            card_hours=origins[flag][2],
            enterprises=len(origins[flag][3]),
        )
        for key, flag in (("domestic", True), ("non_domestic", False))
    ]
    by_payer = split_by_funding(view.funding, view.used, view.settled)
    ranked = sorted(
        ((ent_id, *e) for ent_id, e in enterprises.items() if e[3] > 0),
        key=lambda r: (-r[4], r[0]),
    )[:TOP_ENTERPRISES]
    top = [TopEnterprise(i, n, c, r, u, s) for i, n, c, r, u, s in ranked]
    return ProgramReport(view, year, by_district, by_origin, by_payer, top)


def split_by_funding(
    funding: Sequence[tuple[str, Decimal]], used: Decimal, settled: Decimal
) -> list[Slice]:
    """Each payer's share, rounded down to the fen, the remainder to the first payer
    (as disbursements are split, claims.md)."""

    def split(total: Decimal) -> list[Decimal]:
        parts = [(total * share).quantize(FEN, rounding=ROUND_DOWN) for _, share in funding]
        if parts:
            parts[0] += total - sum(parts, ZERO)
        return parts

    used_parts, settled_parts = split(used), split(settled)
    return [
        Slice(payer, f"{payer}", u, s, card_hours=0)
        for (payer, _), u, s in zip(funding, used_parts, settled_parts, strict=True)
    ]


# The market ------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexRow:
    accelerator_id: str
    name: str
    domestic: bool
    offers: int
    min: Decimal | None
    median: Decimal | None
    p90: Decimal | None
    orders: int
    card_hours: int
    median_paid: Decimal | None
    weekly_median: list[Decimal | None]


@dataclass(frozen=True)
class FlaggedOffer:
    offer_id: str
    provider_name: str
    accelerator_id: str
    price: Decimal
    median: Decimal

    @property
    def ratio(self) -> Decimal:
        return (self.price / self.median).quantize(FEN, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class MonthShare:
    month: str
    domestic_card_hours: int
    total_card_hours: int

    @property
    def share(self) -> Decimal | None:
        if not self.total_card_hours:
            return None
        return (Decimal(self.domestic_card_hours) / self.total_card_hours).quantize(
            Decimal("0.001"), rounding=ROUND_DOWN
        )


@dataclass
class MarketView:
    index: list[IndexRow]
    week_starts: list[date]
    domestic_share: list[MonthShare]
    flagged: list[FlaggedOffer]
    flag_ratio: Decimal


FLAG_RATIO = Decimal("1.5")
INDEX_DAYS = 30
CHART_WEEKS = 12
SHARE_MONTHS = 12


async def market_overview(session: AsyncSession, now: datetime) -> MarketView:
    """The price index per accelerator (app.prices: active offers of listed providers;
    orders of the last 30 days), each one's card-hour-weighted median paid over the
    last 12 weeks, the domestic share of contracted card-hours by month, and the offers
    priced above 1.5 × their accelerator's active-offer median."""
    source = on_session(session)
    items = await prices_service.price_index(
        session, source, prices_service.IndexQuery(days=INDEX_DAYS), now
    )
    names = {
        a.id: f"{a.vendor} {a.model}"
        for a in await session.scalars(select(Accelerator).order_by(Accelerator.id))
    }

    today = now.astimezone(SHANGHAI).date()
    this_week = today - timedelta(days=today.weekday())
    week_starts = [this_week - timedelta(weeks=CHART_WEEKS - 1 - i) for i in range(CHART_WEEKS)]
    # The day totals the database keeps (app.models.PricePaidDay), not every order.
    placed = await session.execute(
        select(
            PricePaidDay.accelerator_id,
            PricePaidDay.day,
            PricePaidDay.price_per_card_hour,
            PricePaidDay.card_hours,
        ).where(PricePaidDay.day >= week_starts[0])
    )
    weekly: dict[tuple[str, int], list[tuple[Decimal, int]]] = defaultdict(list)
    for accelerator_id, on, price, ch in placed:
        week = (_as_date(on) - week_starts[0]).days // 7
        if 0 <= week < CHART_WEEKS:
            weekly[(str(accelerator_id), week)].append((price, int(ch or 0)))

    index = [
        IndexRow(
            accelerator_id=item.accelerator_id,
            name=names.get(item.accelerator_id, item.accelerator_id),
            domestic=item.domestic,
            offers=item.offers.count,
            min=item.offers.min,
            median=item.offers.median,
            p90=item.offers.p90,
            orders=item.orders.count,
            card_hours=item.orders.card_hours,
            median_paid=item.orders.median_price,
            weekly_median=[
                weighted_median(weekly.get((item.accelerator_id, w), []))
                for w in range(CHART_WEEKS)
            ],
        )
        for item in items
    ]
    medians = {item.accelerator_id: item.offers.median for item in items if item.offers.median}
    return MarketView(
        index=index,
        week_starts=week_starts,
        domestic_share=await domestic_share(session, today),
        flagged=await _flagged(session, medians),
        flag_ratio=FLAG_RATIO,
    )


async def _flagged(session: AsyncSession, medians: dict[str, Decimal]) -> list[FlaggedOffer]:
    """Active offers of listed providers priced above FLAG_RATIO × their median: only
    those are read."""
    if not medians:
        return []
    above = or_(
        *(
            # Prices are whole fen: above the limit is above it rounded down to the fen.
            and_(
                Offer.accelerator_id == acc,
                Offer.price_per_card_hour > round_down(FLAG_RATIO * median),
            )
            for acc, median in medians.items()
        )
    )
    rows = await session.execute(
        select(Offer.id, Offer.accelerator_id, Offer.price_per_card_hour, Provider.name)
        .join(Provider, Provider.id == Offer.provider_id)
        .where(Offer.status == "active", Provider.status == "listed", above)
    )
    flagged = [
        FlaggedOffer(offer_id, provider_name, acc, price, medians[acc])
        for offer_id, acc, price, provider_name in rows
    ]
    flagged.sort(key=lambda f: (-f.ratio, f.offer_id))
    return flagged


async def domestic_share(session: AsyncSession, today: date) -> list[MonthShare]:
    """Contracted card-hours (orders placed, not cancelled) of the last 12 months by the
    month they were placed in, and the part on domestic hardware."""
    first = date(today.year, today.month, 1)
    for _ in range(SHARE_MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    # The day totals the database keeps (app.models.PricePaidDay), not every order.
    rows = await session.execute(
        select(PricePaidDay.day, Accelerator.domestic, func.sum(PricePaidDay.card_hours))
        .join(Accelerator, Accelerator.id == PricePaidDay.accelerator_id)
        .where(PricePaidDay.day >= first)
        .group_by(PricePaidDay.day, Accelerator.domestic)
    )
    months: dict[str, list[int]] = {}
    cursor = first
    while cursor <= today:
        months[cursor.strftime("%Y-%m")] = [0, 0]
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    for on, domestic, ch in rows:
        key = _as_date(on).strftime("%Y-%m")
        if key in months:
            months[key][1] += int(ch or 0)
            if domestic:
                months[key][0] += int(ch or 0)
    return [MonthShare(m, d, t) for m, (d, t) in months.items()]
