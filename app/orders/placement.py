"""Placing an order, decided: pure, no I/O.

Given the quote as read, the offers locked with their holds, the enterprise's balances
and the budgets' usage, and the programs, an order is either placed as quoted or
refused with one reason (`app.orders.errors`), returned as data. The service reads
what this needs under the order's locks (`app.orders.store`) and writes what it decides.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from app.core.money import ZERO
from app.matching import engine
from app.matching.schemas import MatchOut
from app.models.status import RequestStatus
from app.orders.errors import (
    CapacityTaken,
    OfferUnavailable,
    OrderConflict,
    QuoteExpired,
    QuoteUsed,
    RequestClosed,
    SubsidyChanged,
    WindowStarted,
)
from app.subsidies.rules import (
    Contract,
    EnterpriseFacts,
    Program,
    ProviderFacts,
    SubsidyResult,
    Usage,
    evaluate,
)
from app.subsidies.schemas import SubsidyOut


@dataclass(frozen=True)
class QuotedPart:
    """One contract of a pinned match (the match itself, or one of a split's parts)."""

    offer_id: str
    provider_id: str
    cards: int
    price_per_card_hour: Decimal
    gross_amount: Decimal
    subsidy: SubsidyOut
    domestic: bool
    accelerator_id: str


def quoted_parts(match: MatchOut) -> list[QuotedPart]:
    """The contracts a pinned match consists of (one, or a split's parts)."""
    if match.parts:
        return [
            QuotedPart(
                offer_id=p.offer_id,
                provider_id=p.provider_id,
                cards=p.cards,
                price_per_card_hour=p.price_per_card_hour,
                gross_amount=p.gross_amount,
                subsidy=p.subsidy,
                domestic=p.domestic,
                accelerator_id=p.accelerator_id,
            )
            for p in match.parts
        ]
    if match.offer_id is None or match.provider_id is None or match.price_per_card_hour is None:
        raise ValueError("a single-offer match names its offer, provider and price")
    return [
        QuotedPart(
            offer_id=match.offer_id,
            provider_id=match.provider_id,
            cards=match.cards,
            price_per_card_hour=match.price_per_card_hour,
            gross_amount=match.gross_amount,
            subsidy=match.subsidy,
            domestic=match.domestic,
            accelerator_id=match.accelerator_id,
        )
    ]


def admission(
    *,
    quote_id: str,
    expires_at: datetime,
    ordered_as: str | None,
    request_id: str,
    request_status: str,
    start: datetime,
    now: datetime,
) -> OrderConflict | None:
    """Whether the quote can still be ordered at all (None), before anything is locked
    beyond its enterprise: not expired, its request open, not ordered already, its
    window not started (`start`, the quoted match's; `now`, one reading of the clock)."""
    if expires_at <= now:
        return QuoteExpired(
            f"quote {quote_id} expired at {expires_at.isoformat()}; take a new quote"
        )
    if request_status != RequestStatus.open:
        return RequestClosed(f"compute request {request_id} is {request_status}")
    if ordered_as is not None:
        return QuoteUsed(f"quote {quote_id} was already ordered ({ordered_as})")
    if start < now:
        # Time already gone cannot be sold (domain.md, "Compute requests").
        return WindowStarted(f"the quoted window started at {start.isoformat()}; take a new quote")
    return None


@dataclass(frozen=True)
class Market:
    """What the order's locks guard, as read after both."""

    cards_on_sale: Mapping[str, int]  # offer id -> cards in all, of the offers on sale
    holds: Mapping[str, Sequence[engine.Hold]]  # offer id -> its holds over the window
    provider_lists: Mapping[str, frozenset[str]]  # provider id -> its lists that day
    enterprise_used: Mapping[str, Decimal]  # program id -> the enterprise's use this year
    budget_used: Mapping[str, Decimal]  # program id -> the budget's use this year
    # provider id -> (credit code, declared related parties): read only when an open
    # program excludes related parties (claims.md); empty otherwise.
    related_parties: Mapping[str, tuple[str | None, frozenset[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Pricing:
    """What the subsidy engine needs besides the market."""

    programs: Sequence[Program]
    enterprise: EnterpriseFacts
    purpose: str
    contract_date: date
    # accelerator id -> the price index's active-offer median, when an open program
    # limits the price it pays on (`max_price_ratio`); empty otherwise.
    index_medians: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class DecidedPart:
    part: QuotedPart
    subsidy: SubsidyResult  # as the engine derives it now (equal to the quote's)


@dataclass(frozen=True)
class Accepted:
    """The order can be placed as quoted: its parts, in the quote's order."""

    parts: tuple[DecidedPart, ...]


def decide(
    match: MatchOut, parts: Sequence[QuotedPart], market: Market, pricing: Pricing
) -> Accepted | OrderConflict:
    """Place the quoted parts, or refuse: an offer no longer on sale, its cards taken
    over the window, or a subsidy that no longer holds as quoted (the parts priced in
    turn: a cap or budget one part uses is gone for the next)."""
    for part in parts:
        if part.offer_id not in market.cards_on_sale:
            return OfferUnavailable(f"offer {part.offer_id} is no longer on sale")
    for part in parts:
        cards_total = market.cards_on_sale[part.offer_id]
        peak = engine.peak_usage(market.holds.get(part.offer_id, []), match.start, match.end)
        if peak + part.cards > cards_total:
            return CapacityTaken(
                f"offer {part.offer_id} has {cards_total - peak} of {cards_total} cards "
                f"free over {match.start.isoformat()}..{match.end.isoformat()}; "
                f"the quote needs {part.cards}"
            )
    enterprise_used = dict(market.enterprise_used)
    budget_used = dict(market.budget_used)
    decided = []
    for part in parts:
        result = evaluate(
            pricing.programs,
            pricing.enterprise,
            _provider_facts(market, part.provider_id),
            Contract(
                domestic=part.domestic,
                purpose=pricing.purpose,
                gross_amount=part.gross_amount,
                contract_date=pricing.contract_date,
                price_per_card_hour=part.price_per_card_hour,
                index_median=pricing.index_medians.get(part.accelerator_id),
            ),
            Usage(enterprise_used=enterprise_used, budget_used=budget_used),
        )
        quoted = part.subsidy
        if result.program_id != quoted.program_id or result.amount != quoted.amount:
            return SubsidyChanged(
                f"the quoted subsidy no longer holds for offer {part.offer_id}: quoted "
                f"{quoted.amount} from {quoted.program_id or 'no program'}, now "
                f"{result.amount} from {result.program_id or 'no program'}"
                + (f" (capped by {result.capped_by})" if result.capped_by else "")
                + "; take a new quote"
            )
        if result.program_id is not None:
            enterprise_used[result.program_id] = (
                enterprise_used.get(result.program_id, ZERO) + result.amount
            )
            budget_used[result.program_id] = (
                budget_used.get(result.program_id, ZERO) + result.amount
            )
        decided.append(DecidedPart(part, result))
    return Accepted(tuple(decided))


def _provider_facts(market: Market, provider_id: str) -> ProviderFacts:
    code, related = market.related_parties.get(provider_id, (None, frozenset()))
    return ProviderFacts(
        status="listed",
        lists=market.provider_lists.get(provider_id, frozenset()),
        credit_code=code,
        related_parties=related,
    )
