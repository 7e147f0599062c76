"""Matching: the offers that can really serve a request, best net price first.

Candidates are walked cheapest first in one stream per hardware origin
(domestic or not), one indexed query per page. The origin decides which rate
tiers can hold, so all of a stream's rows share the highest rate any program
open to this enterprise can pay on them, and the stream has its own bound on
the net (gross × (1 − that rate)), rising with the price. The streams are
merged in order of that bound, and the walk stops once the next bound exceeds
the k-th best net: no later (dearer) offer can enter. Per page, one query loads
the holds overlapping the request's window and one the providers' listings.
The subsidy engine runs only on candidates that fit and whose own bound (their
origin and their provider's lists) can still enter the top k.
"""

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, and_, bindparam, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog_service
from app.core.db import Statements, Transaction, fetch, on_session
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.money import MAX_AMOUNT, ZERO, max_price_per_card_hour
from app.core.timeutil import today_shanghai, utcnow
from app.ledger import service as ledger
from app.matching import engine, store
from app.matching.errors import NoCapacity, OfferUnavailable
from app.matching.schemas import MatchOut, MatchPart
from app.models import (
    Accelerator,
    Bid,
    ComputeRequest,
    Enterprise,
    Offer,
    Provider,
)
from app.models.status import OfferStatus, ProgramStatus, ProviderStatus, RequestStatus
from app.offers.service import has_any_stack
from app.prices import service as prices_service
from app.subsidies import service as subsidy_service
from app.subsidies.rules import (
    Contract,
    EnterpriseFacts,
    Program,
    ProviderFacts,
    SubsidyResult,
    Usage,
    evaluate,
    split_capped_by,
    split_rate,
)
from app.subsidies.schemas import considered_out, subsidy_out

PAGE = 200
#: Rows asked of a stream on its first page (k = 10): most walks end within it.
FIRST_PAGE = 40
MAX_SPLIT_CANDIDATES = 2000


@dataclass
class MatchContext:
    """Everything pricing needs, loaded once per request."""

    request: ComputeRequest
    enterprise: EnterpriseFacts
    programs: list[Program]
    program_versions: dict[str, int]
    contract_date: date
    enterprise_used: dict[str, Decimal]
    budget_used: dict[str, Decimal]
    max_rate: Decimal
    # The programs that can pay this request at all (active compute vouchers valid
    # today, for this enterprise's region and this purpose): the only ones whose
    # rates bound a candidate's subsidy.
    open_programs: list[Program] = field(default_factory=list)
    # The open programs with an annual budget: the budgets that can cap a subsidy.
    budgeted: list[str] = field(default_factory=list)
    provider_lists: dict[str, frozenset[str]] = field(default_factory=dict)
    # The catalog's perf_index per model (app.catalog.service.perf_indexes).
    perf: dict[str, dict[str, str]] = field(default_factory=dict)
    # Party id -> (credit code, declared related parties): read only when an open
    # program excludes related parties (`load_related_parties`).
    related_parties: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    # Accelerator id -> the price index's active-offer median: read only when an open
    # program limits the price it pays on (`max_price_ratio`).
    index_medians: dict[str, Decimal] = field(default_factory=dict)
    _rates: dict[tuple[bool, frozenset[str] | None], Decimal] = field(
        default_factory=dict, init=False, repr=False
    )
    # When the match is computed: it never starts before (domain.md, "Compute requests").
    now: datetime = field(default_factory=utcnow)

    @property
    def workload(self) -> str:
        """The perf_index workload of the request: training, or inference for the rest."""
        return "training" if self.request.purpose == "training" else "inference"

    def effective_card_hours(self, accelerator_id: str, cards: int, hours: int) -> Decimal | None:
        index = self.perf.get(accelerator_id, {}).get(self.workload)
        return None if index is None else Decimal(index) * cards * hours

    def per_effective(
        self, accelerator_id: str, net: Decimal, cards: int, hours: int
    ) -> Decimal | None:
        effective = self.effective_card_hours(accelerator_id, cards, hours)
        if not effective:
            return None
        return (net / effective).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def window_start(self) -> datetime:
        """The earliest start a match computed now may have."""
        r = self.request
        return engine.first_start(r.earliest_start, r.latest_start, self.now)

    @property
    def window_end(self) -> datetime:
        return self.request.latest_start + timedelta(hours=self.request.hours)

    def want(self, cards: int | None = None) -> engine.Want:
        r = self.request
        return engine.Want(
            cards=cards or r.cards,
            hours=r.hours,
            earliest_start=self.window_start,
            latest_start=r.latest_start,
            prefer_domestic=r.domestic == "preferred",
            max_net_budget=r.max_net_budget,
        )

    def rate_bound(self, domestic: bool, lists: frozenset[str] | None = None) -> Decimal:
        """The highest rate an open program can pay on hardware of this origin (``domestic``)
        from a provider on ``lists`` (``None``: any provider), before caps and budgets.

        A tier counts when its conditions hold for this origin, purpose and filed
        model, exactly as the subsidy engine picks it; caps and budgets only lower
        an amount, so no subsidy is ever a larger share of the gross than this.
        """
        key = (domestic, lists)
        rate = self._rates.get(key)
        if rate is None:
            contract = Contract(
                domestic=domestic,
                purpose=self.request.purpose,
                gross_amount=ZERO,
                contract_date=self.contract_date,
            )
            rate = max(
                (
                    tier.rate
                    for program in self.open_programs
                    if lists is None
                    or not program.provider_lists_any
                    or program.provider_lists_any & lists
                    for tier in program.rates
                    if tier.holds(contract, self.enterprise)
                ),
                default=Decimal(0),
            )
            self._rates[key] = rate
        return rate

    def candidate_bound(self, candidate: engine.Candidate, gross: Decimal) -> Decimal:
        """The least net this candidate can have: its own rate bound off its gross."""
        lists = self.provider_lists.get(candidate.provider_id, frozenset())
        return engine.net_lower_bound(gross, self.rate_bound(candidate.domestic, lists))

    @property
    def excludes_related(self) -> bool:
        return any(p.excludes_related_parties for p in self.open_programs)

    def provider_facts(self, provider_id: str) -> ProviderFacts:
        code, related = self.related_parties.get(provider_id, (None, frozenset()))
        return ProviderFacts(
            status="listed",
            lists=self.provider_lists.get(provider_id, frozenset()),
            credit_code=code,
            related_parties=related,
        )

    def subsidy(
        self, candidate: engine.Candidate, gross: Decimal, usage: Usage | None = None
    ) -> SubsidyResult:
        facts = self.provider_facts(candidate.provider_id)
        contract = Contract(
            domestic=candidate.domestic,
            purpose=self.request.purpose,
            gross_amount=gross,
            contract_date=self.contract_date,
            price_per_card_hour=candidate.price_per_card_hour,
            index_median=self.index_medians.get(candidate.accelerator_id),
        )
        usage = usage or Usage(enterprise_used=self.enterprise_used, budget_used=self.budget_used)
        return evaluate(self.programs, self.enterprise, facts, contract, usage)

    def price(self, candidate: engine.Candidate, cards: int, gross: Decimal) -> engine.Priced:
        result = self.subsidy(candidate, gross)
        return engine.Priced(net_amount=gross - result.amount, subsidy=result)

    def price_parts(
        self, parts: Sequence[tuple[engine.Candidate, int, Decimal]]
    ) -> list[engine.Priced]:
        """Price a split's parts in turn: a cap or budget used by one part is gone for the next."""
        enterprise_used = dict(self.enterprise_used)
        budget_used = dict(self.budget_used)
        out = []
        for candidate, _cards, gross in parts:
            result = self.subsidy(
                candidate, gross, Usage(enterprise_used=enterprise_used, budget_used=budget_used)
            )
            if result.program_id is not None:
                enterprise_used[result.program_id] = (
                    enterprise_used.get(result.program_id, ZERO) + result.amount
                )
                budget_used[result.program_id] = (
                    budget_used.get(result.program_id, ZERO) + result.amount
                )
            out.append(engine.Priced(net_amount=gross - result.amount, subsidy=result))
        return out


async def build_context(
    session: AsyncSession, request: ComputeRequest, *, contract_date: date | None = None
) -> MatchContext:
    """What pricing needs: the enterprise, the programs, and the enterprise's balances
    and the budgets' usage as they are now.
    `contract_date`: the Asia/Shanghai day the contract is made (default: today)."""
    enterprise = await store.enterprise(session, request.enterprise_id)
    ctx = await context_without_usage(
        on_session(session), request, enterprise, contract_date=contract_date
    )
    mine, spent = await ledger.order_balances(
        session, request.enterprise_id, ctx.contract_date.year, ctx.budgeted
    )
    ctx.enterprise_used, ctx.budget_used = ledger.used(mine), ledger.used(spent)
    return ctx


async def context_without_usage(
    source: Statements,
    request: ComputeRequest,
    enterprise: store.EnterpriseRead | None,
    *,
    contract_date: date | None = None,
) -> MatchContext:
    """The context of the enterprise as `store.enterprise_read` folds it, with no usage
    yet: the caller reads the balances of the enterprise and of `ctx.budgeted` (an
    order, under its locks)."""
    if enterprise is None:  # the foreign key makes this a broken invariant
        raise NotFound(f"enterprise {request.enterprise_id} does not exist")
    contract_date = contract_date or today_shanghai()
    stored = await subsidy_service.load_programs(source, enterprise.programs_state)
    programs = [s.program for s in stored]
    facts = replace(
        enterprise.facts,
        relies_on_filed_model=request.purpose in ("maas", "agent") and bool(request.filed_model),
    )
    open_programs = [
        p
        for p in programs
        if p.status == ProgramStatus.active
        and p.voucher_type == "compute"
        and p.is_valid_on(contract_date)
        and p.region_matches(facts.region_code)
        and request.purpose in p.purposes
    ]
    # The highest rate any program open to this enterprise and purpose can pay today.
    open_rates = [p.max_rate for p in open_programs]
    limited = any(p.max_price_ratio is not None for p in open_programs)
    return MatchContext(
        index_medians=await prices_service.medians(source) if limited else {},
        request=request,
        enterprise=facts,
        programs=programs,
        program_versions={s.program.id: s.version for s in stored},
        contract_date=contract_date,
        enterprise_used={},
        budget_used={},
        max_rate=max(open_rates, default=Decimal(0)),
        open_programs=open_programs,
        # Only these programs can pay, so only their budgets can cap a subsidy.
        budgeted=[p.id for p in open_programs if p.annual_budget is not None],
    )


def candidate_query(
    request: ComputeRequest, *, whole: bool, models: bool = True
) -> Select[*tuple[Any, ...]]:
    """Active offers of listed providers meeting the request's constraints.

    `whole`: the offer alone has enough cards (a single match); otherwise any
    offer may contribute (a split). `models=False` leaves the accelerator model,
    memory and hardware origin constraints to the caller (the streams of
    `top_single`).
    """
    window_end = request.latest_start + timedelta(hours=request.hours)
    stmt: Select[*tuple[Any, ...]] = (
        select(
            Offer.id,
            Offer.provider_id,
            Offer.accelerator_id,
            Offer.domestic,
            Offer.price_per_card_hour,
            Offer.cards_total,
            Offer.available_from,
            Offer.available_until,
            Offer.free_trial_hours,
            Offer.free_migration_support,
        )
        .join(Provider, Provider.id == Offer.provider_id)
        .where(
            Offer.status == OfferStatus.active,
            Provider.status == ProviderStatus.listed,
            Offer.min_hours <= request.hours,
            Offer.available_from <= request.latest_start,
            Offer.available_until >= request.earliest_start + timedelta(hours=request.hours),
            Offer.available_until > request.earliest_start,
            Offer.available_from < window_end,
            # An offer whose amount for the whole request could not be stored is never
            # matched (nor any split of it: a part's amount is at most that).
            Offer.price_per_card_hour <= max_price_per_card_hour(request.cards, request.hours),
        )
    )
    if whole:
        stmt = stmt.where(Offer.cards_total >= request.cards)
    if models and request.accelerator_ids:
        stmt = stmt.where(Offer.accelerator_id.in_(request.accelerator_ids))
    if models and request.min_memory_gb:
        stmt = stmt.where(
            Offer.accelerator_id.in_(
                select(Accelerator.id).where(Accelerator.memory_gb >= request.min_memory_gb)
            )
        )
    if models and request.domestic == "required":
        stmt = stmt.where(Offer.domestic.is_(True))
    if request.region_prefixes:
        stmt = stmt.where(
            or_(
                *(Offer.region_code.startswith(p, autoescape=True) for p in request.region_prefixes)
            )
        )
    if request.min_cards_per_node:
        stmt = stmt.where(Offer.cards_per_node >= request.min_cards_per_node)
    if request.interconnect:
        stmt = stmt.where(Offer.interconnect == request.interconnect)
    if request.network:
        stmt = stmt.where(Offer.network == request.network)
    if request.software_stacks:
        stmt = stmt.where(has_any_stack(request.software_stacks))
    if request.purpose == "training":
        stmt = stmt.where(Offer.supports_training.is_(True))
    else:
        stmt = stmt.where(Offer.supports_inference.is_(True))
    ordered: Select[*tuple[Any, ...]] = stmt.order_by(Offer.price_per_card_hour, Offer.id)
    return ordered


async def _load_page(
    session: AsyncSession, ctx: MatchContext, stmt: Select[*tuple[Any, ...]]
) -> list[engine.Candidate]:
    rows = (await session.execute(stmt)).all()
    return await _candidates(session, ctx, rows)


async def _candidates(
    session: AsyncSession, ctx: MatchContext, rows: Sequence[Any]
) -> list[engine.Candidate]:
    """Candidates of the offer rows, with their holds in the window and their providers'
    lists loaded: two queries, whatever the number of rows."""
    if not rows:
        return []
    holds = await store.holds(session, [r.id for r in rows], ctx.window_start, ctx.window_end)
    await load_provider_lists(session, ctx, {r.provider_id for r in rows})
    await load_related_parties(session, ctx, {r.provider_id for r in rows})
    return [
        engine.Candidate(
            offer_id=r.id,
            provider_id=r.provider_id,
            accelerator_id=r.accelerator_id,
            domestic=r.domestic,
            price_per_card_hour=r.price_per_card_hour,
            cards_total=r.cards_total,
            available_from=r.available_from,
            available_until=r.available_until,
            holds=tuple(holds.get(r.id, ())),
            payload=(r.free_trial_hours, r.free_migration_support),
            free_trial_hours=r.free_trial_hours,
            free_migration_support=r.free_migration_support,
        )
        for r in rows
    ]


_ENTERPRISE_PARTY = select(
    Enterprise.id, Enterprise.unified_social_credit_code, Enterprise.related_parties
).where(Enterprise.id == bindparam("enterprise_id"))
_PROVIDER_PARTIES = select(
    Provider.id, Provider.unified_social_credit_code, Provider.related_parties
).where(Provider.id.in_(bindparam("provider_ids", expanding=True)))


async def load_related_parties(
    source: AsyncSession | Transaction, ctx: MatchContext, provider_ids: set[str]
) -> None:
    """The credit codes and declared related parties of the enterprise and these
    providers, when an open program excludes related parties (claims.md)."""
    if not ctx.excludes_related:
        return
    conn = source if isinstance(source, Transaction) else await source.connection()
    enterprise_id = ctx.request.enterprise_id
    if enterprise_id not in ctx.related_parties:
        for party_id, code, related in await fetch(
            conn, _ENTERPRISE_PARTY, {"enterprise_id": enterprise_id}
        ):
            ctx.related_parties[party_id] = (code, frozenset(related or ()))
        code, related = ctx.related_parties[enterprise_id]
        ctx.enterprise = replace(ctx.enterprise, credit_code=code, related_parties=related)
    missing = sorted(provider_ids - ctx.related_parties.keys())
    if missing:
        for party_id, code, related in await fetch(
            conn, _PROVIDER_PARTIES, {"provider_ids": missing}
        ):
            ctx.related_parties[party_id] = (code, frozenset(related or ()))


async def load_provider_lists(
    session: AsyncSession, ctx: MatchContext, provider_ids: set[str]
) -> None:
    missing = provider_ids - ctx.provider_lists.keys()
    if not missing:
        return
    ctx.provider_lists.update(
        await store.provider_lists(session, sorted(missing), ctx.contract_date)
    )


@dataclass
class _Stream:
    """Candidates of one model, or of one hardware origin, cheapest first, by pages.

    Every row has a subsidy rate of at most ``rate`` (the origin decides which
    tiers can hold), so its net is at least ``net_lower_bound(gross, rate)``: a
    bound that rises with the price, in the stream's order.
    """

    where: Any
    rate: Decimal
    limit: int = FIRST_PAGE
    after: tuple[Decimal, str] | None = None
    exhausted: bool = False
    # The bound of the last row fetched: no row still to fetch has a smaller one.
    floor: Decimal | None = None
    rows: deque[tuple[Decimal, Decimal, engine.Candidate]] = field(default_factory=deque)

    def statement(self, base: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
        stmt = base.where(self.where)
        if self.after is not None:
            # Bound with the columns' types: a bare Decimal would be compared in yuan with
            # the stored fen, and the next page would start over from the first.
            stmt = stmt.where(
                tuple_(Offer.price_per_card_hour, Offer.id)
                > tuple_(
                    literal(self.after[0], Offer.price_per_card_hour.type),
                    literal(self.after[1], Offer.id.type),
                )
            )
        return stmt.limit(min(self.limit, PAGE))


def _accepted_models(request: ComputeRequest) -> Select[str, bool]:
    """The catalog's models this request accepts (accelerator ids and memory), by id."""
    stmt = select(Accelerator.id, Accelerator.domestic).order_by(Accelerator.id)
    if request.accelerator_ids:
        stmt = stmt.where(Accelerator.id.in_(request.accelerator_ids))
    if request.min_memory_gb:
        stmt = stmt.where(Accelerator.memory_gb >= request.min_memory_gb)
    if request.domestic == "required":
        stmt = stmt.where(Accelerator.domestic.is_(True))
    return stmt


async def _streams(
    session: AsyncSession, ctx: MatchContext, only: Sequence[str] | None = None
) -> list[_Stream]:
    """One stream per hardware origin: a walk of (status, domestic, price, id, model)
    that skips the models not accepted inside the index; for an origin of which the
    request accepts a single model, a walk of (status, accelerator_id, price, id).
    `only`: these models alone (already checked against the request)."""
    r = ctx.request
    origins = [True] if r.domestic == "required" else [True, False]
    if only is None and not (r.accelerator_ids or r.min_memory_gb):
        return [_Stream(Offer.domestic.is_(d), ctx.rate_bound(d)) for d in origins]
    stmt = _accepted_models(r)
    if only is not None:
        stmt = stmt.where(Accelerator.id.in_(only))
    models: dict[bool, list[str]] = defaultdict(list)
    for acc_id, domestic in await session.execute(stmt):
        models[domestic].append(acc_id)
    streams = []
    for d in origins:
        if len(models[d]) == 1:
            # A model's offers all have its origin (offers take it from the catalog, which
            # re-flags them when it changes); filtering on it too would only tempt the
            # planner into the origin index.
            streams.append(_Stream(Offer.accelerator_id == models[d][0], ctx.rate_bound(d)))
        elif models[d]:
            where = and_(Offer.domestic.is_(d), Offer.accelerator_id.in_(models[d]))
            streams.append(_Stream(where, ctx.rate_bound(d)))
    return streams


async def _fetch(
    session: AsyncSession,
    ctx: MatchContext,
    base: Select[*tuple[Any, ...]],
    streams: Sequence[_Stream],
    cards: int,
    hours: int,
) -> None:
    """The next page of each stream: one query each, then one for the holds and one for
    the listings of all of them."""
    pages = [(await session.execute(s.statement(base))).all() for s in streams]
    found = {c.offer_id: c for c in await _candidates(session, ctx, [r for p in pages for r in p])}
    for stream, rows in zip(streams, pages, strict=True):
        if len(rows) < min(stream.limit, PAGE):
            stream.exhausted = True
        stream.limit *= 2
        for r in rows:
            candidate = found[r.id]
            gross = engine.gross_amount(candidate.price_per_card_hour, cards, hours)
            bound = engine.net_lower_bound(gross, stream.rate)
            stream.rows.append((bound, gross, candidate))
            stream.floor = bound
        if rows:
            stream.after = (rows[-1].price_per_card_hour, rows[-1].id)


async def top_single(
    session: AsyncSession, ctx: MatchContext, k: int, only: Sequence[str] | None = None
) -> list[engine.Match]:
    """The best k single-offer matches: the streams merged in order of their bounds.
    `only`: among these models alone."""
    want = ctx.want()
    top = engine.TopK(want, k, max_rate=ctx.max_rate, price=ctx.price)
    base = candidate_query(ctx.request, whole=True, models=False)
    streams = await _streams(session, ctx, only)
    while True:
        # A stream must show its next row when that row could come before every row
        # already fetched (its floor is at most their least bound) and could still enter.
        heads = [s.rows[0][0] for s in streams if s.rows]
        least = min(heads, default=None)
        need = [
            s
            for s in streams
            if not s.rows
            and not s.exhausted
            and (s.floor is None or least is None or s.floor <= least)
            and not (s.floor is not None and top.done(s.floor))
        ]
        if need:
            await _fetch(session, ctx, base, need, want.cards, want.hours)
            continue
        ready = [s for s in streams if s.rows]
        if not ready:
            return top.best
        stream = min(ready, key=lambda s: (s.rows[0][0], s.rows[0][2].offer_id))
        bound, gross, candidate = stream.rows.popleft()
        if top.done(bound):
            return top.best  # every row left, fetched or not, has a bound at least this
        if top.done(ctx.candidate_bound(candidate, gross)):
            continue  # its own origin and lists cannot pay enough for it to enter
        top.consider(candidate, gross)


async def find_matches(
    session: AsyncSession, request: ComputeRequest, k: int
) -> tuple[MatchContext, list[MatchOut]]:
    if request.status != RequestStatus.open:
        raise Conflict(f"compute request {request.id} is {request.status}")
    ctx = await build_context(session, request)
    ctx.perf = await catalog_service.perf_indexes(session)
    by_effective = request.rank_by == "net_per_effective_card_hour"
    bids = await _bid_candidates(session, ctx) if request.accept_bids else []
    # The best k list-price matches are enough: each one a bid displaces gives way to
    # that bid, ranked before it, so k answers ranked no later than the k-th of them
    # remain, and no list-price match after it can be among the best k.
    if by_effective:
        singles = await _top_single_by_effective(session, ctx, k)
    else:
        singles = await top_single(session, ctx, k)
    if bids:
        # Only the best k bids can be answered (a bid displaced by its own offer's list
        # price gives way to a cheaper match); ranked by net per effective card-hour,
        # which TopK does not rank by, every bid is kept.
        keep = len(bids) if by_effective else k
        top = engine.TopK(ctx.want(), keep, max_rate=ctx.max_rate, price=ctx.price)
        for candidate in bids:
            top.consider(candidate, top.bound(candidate)[1])
        singles = _with_bids(singles, top.best)
    prefer = request.domestic == "preferred"
    if by_effective:
        singles.sort(key=lambda m: (*_effective_key(ctx, m), engine.rank_key(m, prefer)))
    else:
        singles.sort(key=lambda m: engine.rank_key(m, prefer))
    out = [single_out(ctx, m) for m in singles[:k]]
    if not out and request.allow_split:
        page = await _load_page(
            session, ctx, candidate_query(request, whole=False).limit(MAX_SPLIT_CANDIDATES)
        )
        splits = engine.plan_splits(page, ctx.want(), k, price_parts=ctx.price_parts)
        out = [split_out(ctx, s) for s in splits]
        if by_effective:
            # plan_splits ranks by net; a stable sort keeps that order among equals.
            out.sort(key=_effective_order)
    return ctx, out


def _bid_of(candidate: engine.Candidate) -> str | None:
    """The bid a candidate is priced at (the third item of its payload), if any."""
    return candidate.payload[2] if len(candidate.payload) > 2 else None


def _effective_key(ctx: MatchContext, m: engine.Match) -> tuple[bool, Decimal]:
    per = ctx.per_effective(m.candidate.accelerator_id, m.net_amount, m.cards, m.hours)
    return (per is None, per if per is not None else ZERO)


def _with_bids(listed: list[engine.Match], bids: list[engine.Match]) -> list[engine.Match]:
    """List-price and bid matches, one per offer: the cheaper (the bid at an equal net)."""
    best: dict[str, engine.Match] = {m.candidate.offer_id: m for m in listed}
    for m in bids:
        other = best.get(m.candidate.offer_id)
        if other is None or m.net_amount <= other.net_amount:
            best[m.candidate.offer_id] = m
    return list(best.values())


_LIVE_BIDS = select(Bid.offer_id, Bid.id, Bid.price_per_card_hour).where(
    Bid.request_id == bindparam("request_id"),
    Bid.status == "live",
    Bid.valid_until > bindparam("now"),
)


async def _bid_candidates(session: AsyncSession, ctx: MatchContext) -> list[engine.Candidate]:
    """The request's live bids as candidates priced at the bid, on offers that still meet
    the request (active, listed, within its constraints): two queries, then those of
    `_candidates` for their holds and lists."""
    bids = {
        offer_id: (bid_id, price)
        for offer_id, bid_id, price in await session.execute(
            _LIVE_BIDS, {"request_id": ctx.request.id, "now": utcnow()}
        )
    }
    if not bids:
        return []
    stmt = candidate_query(ctx.request, whole=True).where(Offer.id.in_(sorted(bids)))
    return [
        replace(
            c,
            price_per_card_hour=bids[c.offer_id][1],
            payload=(*c.payload[:2], bids[c.offer_id][0]),
        )
        for c in await _load_page(session, ctx, stmt)
    ]


def _effective_order(m: MatchOut) -> tuple[bool, Decimal]:
    """Matches with a net per effective card-hour first, cheapest first."""
    value = m.net_per_effective_card_hour
    return (value is None, value if value is not None else ZERO)


async def _top_single_by_effective(
    session: AsyncSession, ctx: MatchContext, k: int
) -> list[engine.Match]:
    """The best k single-offer matches by net per effective card-hour, then as before.

    All offers of one model share its perf_index, so a model's best k by net are its
    best k by net per effective card-hour: the best k of each indexed model, merged
    and re-ranked, hold the best k of all. One walk per model the request accepts;
    matches on models without an index follow, by net.
    """
    workload = ctx.workload
    # The models that have an offer able to serve the request at all: one query, so
    # that no walk is spent on the many models nobody offers.
    offered = (
        candidate_query(ctx.request, whole=True)
        .with_only_columns(Offer.accelerator_id)
        .distinct()
        .order_by(None)
        .order_by(Offer.accelerator_id)
    )
    models = list(await session.scalars(offered))
    indexed = [m for m in models if ctx.perf.get(m, {}).get(workload)]
    unindexed = [m for m in models if m not in indexed]
    found: list[engine.Match] = []
    for model in indexed:
        found.extend(await top_single(session, ctx, k, only=[model]))
    prefer = ctx.request.domestic == "preferred"

    def key(m: engine.Match) -> tuple[Decimal, Any]:
        per = ctx.per_effective(m.candidate.accelerator_id, m.net_amount, m.cards, m.hours)
        return (per if per is not None else ZERO, engine.rank_key(m, prefer))

    found.sort(key=key)
    del found[k:]
    if len(found) < k and unindexed:
        found.extend(await top_single(session, ctx, k - len(found), only=unindexed))
    return found


async def match_for_offers(
    session: AsyncSession,
    request: ComputeRequest,
    parts: Sequence[tuple[str, int]],
    bid: tuple[str, Decimal] | None = None,
) -> tuple[MatchContext, MatchOut]:
    """Re-derive one match (single, or a split over `parts` of (offer_id, cards)) as of now.
    `bid`: (bid id, price) a single match is priced at instead of the list price."""
    if request.status != RequestStatus.open:
        raise Conflict(f"compute request {request.id} is {request.status}")
    ctx = await build_context(session, request)
    ctx.perf = await catalog_service.perf_indexes(session)
    offer_ids = [offer_id for offer_id, _ in parts]
    whole = len(parts) == 1
    stmt = candidate_query(request, whole=whole).where(Offer.id.in_(offer_ids))
    found = {c.offer_id: c for c in await _load_page(session, ctx, stmt)}
    missing = [o for o in offer_ids if o not in found]
    if missing:
        await _refuse_unstorable(session, request, missing, whole=whole)
        raise OfferUnavailable(
            f"offer(s) {', '.join(missing)} cannot serve this request (not active, provider not "
            "listed, or outside its constraints)"
        )
    if whole:
        top = engine.TopK(ctx.want(), 1, max_rate=ctx.max_rate, price=ctx.price)
        candidate = found[offer_ids[0]]
        if bid is not None:
            candidate = replace(
                candidate, price_per_card_hour=bid[1], payload=(*candidate.payload[:2], bid[0])
            )
        top.consider(candidate, top.bound(candidate)[1])
        if not top.best:
            raise NoCapacity(
                f"offer {candidate.offer_id} has no window free for {request.cards} cards × "
                f"{request.hours} h starting within the request's window"
            )
        return ctx, single_out(ctx, top.best[0])
    if sum(cards for _, cards in parts) != request.cards or any(c < 1 for _, c in parts):
        raise Conflict(f"the parts' cards must add up to the request's {request.cards}")
    want = ctx.want()
    accelerators = {found[o].accelerator_id for o in offer_ids}
    if len(accelerators) != 1 or len(set(offer_ids)) != len(offer_ids):
        raise Conflict("a split combines distinct offers of one accelerator model")
    start = _common_start(want, [(found[o], c) for o, c in parts])
    if start is None:
        raise NoCapacity("these offers have no common window free for the requested cards")
    priced_input = [
        (found[o], c, engine.gross_amount(found[o].price_per_card_hour, c, request.hours))
        for o, c in parts
    ]
    priced = ctx.price_parts(priced_input)
    split = engine.SplitMatch(
        accelerator_id=accelerators.pop(),
        start=start,
        end=start + want.duration,
        cards=request.cards,
        hours=request.hours,
        parts=tuple(
            engine.SplitPart(
                candidate=cand, cards=c, gross_amount=g, net_amount=p.net_amount, subsidy=p.subsidy
            )
            for (cand, c, g), p in zip(priced_input, priced, strict=True)
        ),
        gross_amount=sum((g for _, _, g in priced_input), ZERO),
        net_amount=sum((p.net_amount for p in priced), ZERO),
        domestic=all(found[o].domestic for o in offer_ids),
    )
    return ctx, split_out(ctx, split)


async def _refuse_unstorable(
    session: AsyncSession, request: ComputeRequest, offer_ids: Sequence[str], *, whole: bool
) -> None:
    """422, naming the inputs, if an offer was left out of the match for an amount no
    order could store (price per card-hour × cards × hours past `MAX_AMOUNT`): a quote
    is never issued for an order that cannot be placed."""
    limit = max_price_per_card_hour(request.cards, request.hours)
    row = (
        await session.execute(
            select(Offer.id, Offer.price_per_card_hour)
            .where(Offer.id.in_(offer_ids), Offer.price_per_card_hour > limit)
            .order_by(Offer.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return
    offer_id, price = row
    msg = (
        f"offer {offer_id}: price_per_card_hour {price} × cards {request.cards} × hours "
        f"{request.hours} is {price * request.cards * request.hours}, more than the largest "
        f"amount an order can hold ({MAX_AMOUNT})"
    )
    raise Unprocessable(
        msg, errors=[{"loc": ["body", "offer_id" if whole else "parts"], "msg": msg}]
    )


def _common_start(
    want: engine.Want, parts: Sequence[tuple[engine.Candidate, int]]
) -> datetime | None:
    """The earliest start in the window at which every part has its cards free."""
    starts = sorted(
        {want.earliest_start}
        | {c.available_from for c, _ in parts if want.earliest_start < c.available_from}
        | {
            h.end
            for c, _ in parts
            for h in c.holds
            if want.earliest_start < h.end <= want.latest_start
        }
    )
    for start in starts:
        if start > want.latest_start:
            break
        fits = all(
            engine.earliest_fit(
                holds=c.holds,
                cards_total=c.cards_total,
                cards=cards,
                duration=want.duration,
                earliest_start=start,
                latest_start=start,
                available_from=c.available_from,
                available_until=c.available_until,
            )
            is not None
            for c, cards in parts
        )
        if fits:
            return start
    return None


def _per_card_hour(amount: Decimal, cards: int, hours: int) -> Decimal:
    return (amount / (cards * hours)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def single_out(ctx: MatchContext, m: engine.Match) -> MatchOut:
    c = m.candidate
    result: SubsidyResult = m.subsidy
    free_trial_hours, free_migration = c.payload[:2]
    return MatchOut(
        offer_id=c.offer_id,
        provider_id=c.provider_id,
        bid_id=_bid_of(c),
        accelerator_id=c.accelerator_id,
        domestic=c.domestic,
        cards=m.cards,
        hours=m.hours,
        start=m.start,
        end=m.end,
        price_per_card_hour=c.price_per_card_hour,
        gross_amount=m.gross_amount,
        subsidy=subsidy_out(result),
        net_amount=m.net_amount,
        net_price_per_card_hour=_per_card_hour(m.net_amount, m.cards, m.hours),
        free_trial_hours=free_trial_hours,
        free_migration_support=free_migration,
        **_effective(ctx, c.accelerator_id, m.net_amount, m.cards, m.hours),
        considered=[considered_out(x) for x in result.considered],
        parts=None,
    )


def _effective(
    ctx: MatchContext, accelerator_id: str, net: Decimal, cards: int, hours: int
) -> dict[str, Any]:
    effective = ctx.effective_card_hours(accelerator_id, cards, hours)
    return {
        "effective_card_hours": None if effective is None else f"{effective:.2f}",
        "net_per_effective_card_hour": ctx.per_effective(accelerator_id, net, cards, hours),
    }


def split_out(ctx: MatchContext, s: engine.SplitMatch) -> MatchOut:
    parts = []
    for p in s.parts:
        result: SubsidyResult = p.subsidy
        free_trial_hours, free_migration = p.candidate.payload[:2]
        parts.append(
            MatchPart(
                offer_id=p.candidate.offer_id,
                provider_id=p.candidate.provider_id,
                accelerator_id=p.candidate.accelerator_id,
                domestic=p.candidate.domestic,
                cards=p.cards,
                price_per_card_hour=p.candidate.price_per_card_hour,
                gross_amount=p.gross_amount,
                subsidy=subsidy_out(result),
                net_amount=p.net_amount,
                free_trial_hours=free_trial_hours,
                free_migration_support=free_migration,
                considered=[considered_out(x) for x in result.considered],
            )
        )
    subsidy_total = sum((p.subsidy.amount for p in s.parts), ZERO)
    rate = split_rate(subsidy_total, s.gross_amount)
    capped = split_capped_by(p.subsidy.capped_by for p in s.parts)
    return MatchOut(
        offer_id=None,
        provider_id=None,
        accelerator_id=s.accelerator_id,
        domestic=s.domestic,
        cards=s.cards,
        hours=s.hours,
        start=s.start,
        end=s.end,
        price_per_card_hour=None,
        gross_amount=s.gross_amount,
        subsidy=subsidy_out(
            replace(
                s.parts[0].subsidy,
                program_id=None,
                rate=rate,
                amount=subsidy_total,
                base=None,
                capped_by=capped,
            )
        ),
        net_amount=s.net_amount,
        net_price_per_card_hour=_per_card_hour(s.net_amount, s.cards, s.hours),
        free_trial_hours=min(p.free_trial_hours for p in parts),
        free_migration_support=all(p.free_migration_support for p in parts),
        **_effective(ctx, s.accelerator_id, s.net_amount, s.cards, s.hours),
        considered=[],
        parts=parts,
    )
