"""The matching engine: window fitting, ranking with pruning, and split plans.

Pure: no I/O, no database, no web framework. Money is ``Decimal``; instants are
aware ``datetime`` values (any offset; they compare as instants). The subsidy
engine is not imported: pricing is a callback supplied by the caller, so this
module can be tested on its own.

Capacity is in time (domain.md, "Offers"): an order holds ``cards`` of an offer
over ``[start, end)``; an offer can serve a new order over a window only if the
window lies inside ``[available_from, available_until)`` and, at every instant
of it, the cards already held plus the new cards are at most ``cards_total``.
Intervals are half-open, so holds ``[a, b)`` and ``[b, c)`` never overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from itertools import pairwise
from typing import Any

from app.core.money import FEN, round_half_up

#: How many distinct start instants `plan_splits` tries per accelerator model.
MAX_SPLIT_STARTS = 16

_ZERO_DURATION = timedelta(0)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with an offset), got {value!r}")


# --------------------------------------------------------------------------
# Window fitting
# --------------------------------------------------------------------------

_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ceil(instant: datetime, step: timedelta) -> datetime:
    """The first multiple of ``step`` (an hour, a minute; in UTC) at or after ``instant``."""
    utc = instant.astimezone(UTC)
    floor = utc - (utc - _EPOCH) % step
    return floor if floor == utc else floor + step


def first_start(earliest_start: datetime, latest_start: datetime, now: datetime) -> datetime:
    """The earliest instant a match computed at ``now`` may start.

    A match never starts before the moment it is computed (domain.md, "Compute
    requests"). A window that begins in the future keeps its own start; one that
    has begun starts at the next whole hour, or, when the window closes before
    that hour, the next whole minute, or at worst ``latest_start`` itself. When
    even that has passed, the answer lies after ``latest_start`` and nothing fits.
    """
    for name, value in (
        ("earliest_start", earliest_start),
        ("latest_start", latest_start),
        ("now", now),
    ):
        _require_aware(name, value)
    if earliest_start >= now:
        return earliest_start
    for step in (_HOUR, _MINUTE):
        start = _ceil(now, step)
        if start <= latest_start:
            return start
    return latest_start if latest_start >= now else _ceil(now, _HOUR)


@dataclass(frozen=True)
class Hold:
    """An order holding ``cards`` cards of an offer over ``[start, end)``."""

    start: datetime
    end: datetime
    cards: int

    def __post_init__(self) -> None:
        _require_aware("Hold.start", self.start)
        _require_aware("Hold.end", self.end)
        if self.end <= self.start:
            raise ValueError("Hold.end must be after Hold.start")
        if self.cards < 1:
            raise ValueError("Hold.cards must be at least 1")


def _usage_segments(
    holds: Iterable[Hold], lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, int]]:
    """The step function of cards held, clipped to ``[lo, hi)``.

    Returns sorted, contiguous segments ``(t0, t1, cards)`` from the first to
    the last clipped hold boundary (instants outside them hold 0 cards; a gap
    between holds is a segment with 0). O(n log n) in the number of holds: one
    delta per boundary, one sort, one running sum.
    """
    if hi <= lo:
        return []
    deltas: dict[datetime, int] = {}
    for hold in holds:
        start = max(hold.start, lo)
        end = min(hold.end, hi)
        if start >= end:
            continue
        # Aggregating per instant makes touching holds ([a, b) then [b, c))
        # net out at b instead of briefly counting both.
        deltas[start] = deltas.get(start, 0) + hold.cards
        deltas[end] = deltas.get(end, 0) - hold.cards
    times = sorted(deltas)
    segments: list[tuple[datetime, datetime, int]] = []
    running = 0
    for t0, t1 in pairwise(times):
        running += deltas[t0]
        segments.append((t0, t1, running))
    return segments


def peak_usage(holds: Iterable[Hold], start: datetime, end: datetime) -> int:
    """The most cards held at any instant of ``[start, end)`` (0 when empty)."""
    return max((used for _, _, used in _usage_segments(holds, start, end)), default=0)


def earliest_fit(
    *,
    holds: Sequence[Hold],
    cards_total: int,
    cards: int,
    duration: timedelta,
    earliest_start: datetime,
    latest_start: datetime,
    available_from: datetime,
    available_until: datetime,
) -> datetime | None:
    """The earliest start at which ``cards`` cards fit for ``duration``, or None.

    The start ``s`` lies in ``[earliest_start, latest_start]``, the window
    ``[s, s + duration)`` lies inside ``[available_from, available_until)``,
    and at every instant of it the cards of overlapping holds plus ``cards``
    are at most ``cards_total``.

    Interval sweep: the usage step function over the horizon is computed once
    (O(n log n)); the instants where usage exceeds ``cards_total - cards`` form
    sorted, merged "blocked" intervals; the start begins at
    ``max(earliest_start, available_from)`` and jumps to the end of every
    blocked interval the window would overlap. Capacity only frees at a hold's
    end, so every start tried is that first instant or a hold end, and each
    blocked interval is looked at once. Never a loop over hours.
    """
    if cards < 1:
        raise ValueError("cards must be at least 1")
    if duration <= _ZERO_DURATION:
        raise ValueError("duration must be positive")
    for name, value in (
        ("earliest_start", earliest_start),
        ("latest_start", latest_start),
        ("available_from", available_from),
        ("available_until", available_until),
    ):
        _require_aware(name, value)
    if cards > cards_total:
        return None
    first = max(earliest_start, available_from)
    last = min(latest_start, available_until - duration)
    if first > last:
        return None
    limit = cards_total - cards  # the most cards other orders may hold at any instant
    start = first
    for b0, b1 in _blocked(_usage_segments(holds, first, last + duration), limit):
        if b0 >= start + duration:
            break  # the window ends before the next blocked interval: it fits
        start = max(start, b1)  # capacity frees at b1, a hold's end
        if start > last:
            return None
    return start


def _blocked(
    segments: Iterable[tuple[datetime, datetime, int]], limit: int
) -> list[tuple[datetime, datetime]]:
    """Merged, sorted intervals of the segments whose usage exceeds ``limit``."""
    runs: list[tuple[datetime, datetime]] = []
    for t0, t1, used in segments:
        if used <= limit:
            continue
        if runs and runs[-1][1] == t0:
            runs[-1] = (runs[-1][0], t1)
        else:
            runs.append((t0, t1))
    return runs


# --------------------------------------------------------------------------
# Single-offer matches: ranking and top-k with pruning
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One offer that may serve a request, with the holds already on it."""

    offer_id: str
    provider_id: str
    accelerator_id: str
    domestic: bool
    price_per_card_hour: Decimal
    cards_total: int
    available_from: datetime
    available_until: datetime
    holds: tuple[Hold, ...]
    payload: Any = None  # the caller's extra data, passed through untouched
    # What the provider gives on top (seed 003 asks for both): tie-breakers of the ranking.
    free_trial_hours: int = 0
    free_migration_support: bool = False

    def __post_init__(self) -> None:
        _require_aware("Candidate.available_from", self.available_from)
        _require_aware("Candidate.available_until", self.available_until)


@dataclass(frozen=True)
class Priced:
    """What the caller's pricing callback answers: the net after the best subsidy."""

    net_amount: Decimal
    subsidy: Any


@dataclass(frozen=True)
class Match:
    candidate: Candidate
    start: datetime
    end: datetime
    cards: int
    hours: int
    gross_amount: Decimal
    net_amount: Decimal
    subsidy: Any


@dataclass(frozen=True)
class Want:
    """What a request asks for, as far as matching is concerned."""

    cards: int
    hours: int
    earliest_start: datetime
    latest_start: datetime
    prefer_domestic: bool
    max_net_budget: Decimal | None = None

    def __post_init__(self) -> None:
        if self.cards < 1:
            raise ValueError("Want.cards must be at least 1")
        if self.hours < 1:
            raise ValueError("Want.hours must be at least 1")
        _require_aware("Want.earliest_start", self.earliest_start)
        _require_aware("Want.latest_start", self.latest_start)

    @property
    def duration(self) -> timedelta:
        return timedelta(hours=self.hours)

    def within_budget(self, net: Decimal) -> bool:
        return self.max_net_budget is None or net <= self.max_net_budget


def gross_amount(price: Decimal, cards: int, hours: int) -> Decimal:
    """cards × hours × price per card-hour, rounded half up to the fen."""
    return round_half_up(price * cards * hours)


def _domestic_rank(domestic: bool, prefer_domestic: bool) -> int:
    return 0 if (domestic or not prefer_domestic) else 1


def rank_key(m: Match, prefer_domestic: bool) -> tuple[Decimal, int, datetime, int, bool, str]:
    """Net ascending; domestic first only when preferred; earlier start; more free trial
    hours; free migration support; offer id (domain.md, "Matches and quotes")."""
    c = m.candidate
    return (
        m.net_amount,
        _domestic_rank(c.domestic, prefer_domestic),
        m.start,
        -c.free_trial_hours,
        not c.free_migration_support,
        c.offer_id,
    )


def net_lower_bound(gross: Decimal, max_rate: Decimal) -> Decimal:
    """The least net any subsidy of rate at most ``max_rate`` can leave of ``gross``.

    ``gross × (1 − max_rate)`` floored to the fen: a subsidy of rate r ≤ max_rate
    rounded to the fen in any direction (down, half up, even up) leaves a net of
    at least this, so the bound stays safe whatever rounding the subsidy engine
    uses.
    """
    return (gross * (1 - max_rate)).quantize(FEN, rounding=ROUND_DOWN)


class TopK:
    """The running best ``k`` single-offer matches, fed candidates in ascending bound order.

    The caller may feed candidates in batches (e.g. pages of a price-ordered
    query); ``done(bound)`` says when no further candidate can enter.
    """

    def __init__(
        self,
        want: Want,
        k: int,
        *,
        max_rate: Decimal,
        price: Callable[[Candidate, int, Decimal], Priced],
    ) -> None:
        if not Decimal(0) <= max_rate <= 1:
            raise ValueError("max_rate must be between 0 and 1")
        self.want = want
        self.k = k
        self.max_rate = max_rate
        self.price = price
        self.best: list[Match] = []  # kept sorted by rank_key, at most k long

    def bound(self, candidate: Candidate) -> tuple[Decimal, Decimal]:
        """(net lower bound, gross) of a candidate."""
        gross = gross_amount(candidate.price_per_card_hour, self.want.cards, self.want.hours)
        return net_lower_bound(gross, self.max_rate), gross

    def done(self, bound: Decimal) -> bool:
        """True once a candidate with this bound (or any larger one) cannot enter."""
        if self.k < 1:
            return True
        if len(self.best) >= self.k and bound > self.best[self.k - 1].net_amount:
            return True
        return self.want.max_net_budget is not None and bound > self.want.max_net_budget

    def consider(self, candidate: Candidate, gross: Decimal) -> None:
        """Window-fit the candidate, price it if it fits, and keep it if it ranks."""
        want = self.want
        start = earliest_fit(
            holds=candidate.holds,
            cards_total=candidate.cards_total,
            cards=want.cards,
            duration=want.duration,
            earliest_start=want.earliest_start,
            latest_start=want.latest_start,
            available_from=candidate.available_from,
            available_until=candidate.available_until,
        )
        if start is None:
            return
        priced = self.price(candidate, want.cards, gross)
        if not want.within_budget(priced.net_amount):
            return
        self.best.append(
            Match(
                candidate=candidate,
                start=start,
                end=start + want.duration,
                cards=want.cards,
                hours=want.hours,
                gross_amount=gross,
                net_amount=priced.net_amount,
                subsidy=priced.subsidy,
            )
        )
        self.best.sort(key=lambda m: rank_key(m, want.prefer_domestic))
        del self.best[self.k :]


def top_matches(
    candidates: Iterable[Candidate],
    want: Want,
    k: int,
    *,
    max_rate: Decimal,
    price: Callable[[Candidate, int, Decimal], Priced],
) -> list[Match]:
    """The best ``k`` single-offer matches, best first (``rank_key``).

    ``price(candidate, cards, gross)`` is the subsidy engine (expensive); it must
    never pay more than ``max_rate`` of the gross, so a candidate's net is at
    least ``net_lower_bound(gross, max_rate)``. Candidates are visited in
    ascending order of that bound; the visit stops as soon as the bound is
    strictly greater than the k-th best net found so far (a bound equal to it
    may still tie and win on the tie-breakers, so it is still priced) or than
    ``want.max_net_budget``. Each visited candidate is window-fitted first and
    only priced when it fits. The result equals a brute-force ranking of every
    fitting candidate, truncated to ``k``.
    """
    top = TopK(want, k, max_rate=max_rate, price=price)
    bounded = [(*top.bound(c), c) for c in candidates]
    bounded.sort(key=lambda item: (item[0], item[2].offer_id))
    for bound, gross, candidate in bounded:
        if top.done(bound):
            break
        top.consider(candidate, gross)
    return top.best


# --------------------------------------------------------------------------
# Split matches (allow_split)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitPart:
    candidate: Candidate
    cards: int
    gross_amount: Decimal
    net_amount: Decimal
    subsidy: Any


@dataclass(frozen=True)
class SplitMatch:
    accelerator_id: str
    start: datetime
    end: datetime
    cards: int
    hours: int
    parts: tuple[SplitPart, ...]
    gross_amount: Decimal
    net_amount: Decimal
    domestic: bool


def split_rank_key(
    m: SplitMatch, prefer_domestic: bool
) -> tuple[Decimal, int, datetime, int, bool, str]:
    """Net ascending; domestic first only when preferred; earlier start; more free trial
    hours (the fewest any part gives); free migration support (every part gives it);
    accelerator id."""
    parts = [p.candidate for p in m.parts]
    return (
        m.net_amount,
        _domestic_rank(m.domestic, prefer_domestic),
        m.start,
        -min((c.free_trial_hours for c in parts), default=0),
        not all(c.free_migration_support for c in parts),
        m.accelerator_id,
    )


def _fits_availability(candidate: Candidate, start: datetime, end: datetime) -> bool:
    return candidate.available_from <= start and end <= candidate.available_until


def _split_starts(group: Sequence[Candidate], want: Want) -> list[datetime]:
    """The first ``MAX_SPLIT_STARTS`` distinct instants worth trying as a start.

    ``earliest_start`` and every ``available_from`` and hold end of the group
    that falls inside ``[earliest_start, latest_start]``: capacity only appears
    at those instants, so between two of them the free cards can only shrink.
    """
    lo, hi = want.earliest_start, want.latest_start
    instants: set[datetime] = {lo} if lo <= hi else set()
    for candidate in group:
        if lo <= candidate.available_from <= hi:
            instants.add(candidate.available_from)
        for hold in candidate.holds:
            if lo <= hold.end <= hi:
                instants.add(hold.end)
    return sorted(instants)[:MAX_SPLIT_STARTS]


def plan_splits(
    candidates: Iterable[Candidate],
    want: Want,
    k: int,
    *,
    price_parts: Callable[[Sequence[tuple[Candidate, int, Decimal]]], Sequence[Priced]],
) -> list[SplitMatch]:
    """Up to ``k`` matches served by several offers of one accelerator model.

    For each accelerator model (candidates grouped by ``accelerator_id``) and
    each of its first ``MAX_SPLIT_STARTS`` candidate starts (``_split_starts``),
    every offer whose availability covers the window contributes its free cards
    over the whole window (``cards_total − peak_usage``). The offers are taken
    cheapest gross price per card-hour first (ties by offer id), ``min(free,
    remaining)`` cards from each, until every card is placed. A plan needs at
    least two parts: when the cheapest offer alone holds every card, that is a
    normal single-offer match, not a split, and the start is skipped. Each plan
    is priced with one call to ``price_parts`` for all its parts (the caller
    prices them in order, so that an enterprise cap used by one part is not
    available to the next). At most one split per (accelerator, start); plans
    whose net exceeds ``want.max_net_budget`` are dropped; the rest are ranked
    by ``split_rank_key`` (net, domestic when preferred, earlier start, free
    trial hours and migration support of every part, accelerator id) and the
    first ``k`` returned.

    Heuristic, not a global optimum. The greedy fill minimises the gross
    amount for the chosen start, but the net depends on each part's best
    subsidy (its provider's listings, program rates, and caps shared across
    the parts, consumed in order), which this engine cannot see; the exact
    optimum would price every subset and every ordering of offers through the
    subsidy engine, exponentially many calls. Greedy by gross is acceptable
    because all parts are the same accelerator model (so the same domestic
    flag and largely the same programs), every subsidy is a bounded fraction of
    the gross, so the cheapest gross is a close proxy for the cheapest net, and
    the amounts shown are exact for the plan offered: only its optimality is
    approximate, never its price.

    This function returns splits whenever they can be formed, whether or not a
    single offer could serve the request at another start or for another
    model: the caller decides when to ask (typically when ``allow_split`` is
    set and single-offer matches are insufficient) and how to merge the lists.
    """
    if k < 1:
        return []
    duration = want.duration
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.accelerator_id, []).append(candidate)

    plans: list[SplitMatch] = []
    for accelerator_id in sorted(groups):
        group = sorted(groups[accelerator_id], key=lambda c: (c.price_per_card_hour, c.offer_id))
        if len(group) < 2:
            continue
        for start in _split_starts(group, want):
            end = start + duration
            chosen: list[tuple[Candidate, int, Decimal]] = []
            remaining = want.cards
            for candidate in group:
                if not _fits_availability(candidate, start, end):
                    continue
                free = candidate.cards_total - peak_usage(candidate.holds, start, end)
                if free <= 0:
                    continue
                take = min(free, remaining)
                gross = gross_amount(candidate.price_per_card_hour, take, want.hours)
                chosen.append((candidate, take, gross))
                remaining -= take
                if remaining == 0:
                    break
            if remaining > 0 or len(chosen) < 2:
                continue
            priced = price_parts(chosen)
            if len(priced) != len(chosen):
                raise ValueError(
                    f"price_parts answered {len(priced)} prices for {len(chosen)} parts"
                )
            parts = tuple(
                SplitPart(
                    candidate=candidate,
                    cards=cards,
                    gross_amount=gross,
                    net_amount=p.net_amount,
                    subsidy=p.subsidy,
                )
                for (candidate, cards, gross), p in zip(chosen, priced, strict=True)
            )
            net = sum((part.net_amount for part in parts), Decimal("0.00"))
            if not want.within_budget(net):
                continue
            plans.append(
                SplitMatch(
                    accelerator_id=accelerator_id,
                    start=start,
                    end=end,
                    cards=want.cards,
                    hours=want.hours,
                    parts=parts,
                    gross_amount=sum((part.gross_amount for part in parts), Decimal("0.00")),
                    net_amount=net,
                    domestic=all(part.candidate.domestic for part in parts),
                )
            )
    plans.sort(key=lambda m: split_rank_key(m, want.prefer_domestic))
    return plans[:k]
