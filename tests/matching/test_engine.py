"""The pure matching engine: window fitting, ranking with pruning, splits."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.money import FEN
from app.matching.engine import (
    MAX_SPLIT_STARTS,
    Candidate,
    Hold,
    Match,
    Priced,
    SplitMatch,
    Want,
    earliest_fit,
    first_start,
    gross_amount,
    net_lower_bound,
    peak_usage,
    plan_splits,
    rank_key,
    split_rank_key,
    top_matches,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def h(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def hold(start: int, end: int, cards: int) -> Hold:
    return Hold(start=h(start), end=h(end), cards=cards)


def fit(
    holds: Sequence[Hold] = (),
    *,
    cards_total: int = 8,
    cards: int = 4,
    hours: int = 10,
    earliest: int = 0,
    latest: int = 100,
    available_from: int = 0,
    available_until: int = 1000,
) -> datetime | None:
    return earliest_fit(
        holds=holds,
        cards_total=cards_total,
        cards=cards,
        duration=timedelta(hours=hours),
        earliest_start=h(earliest),
        latest_start=h(latest),
        available_from=h(available_from),
        available_until=h(available_until),
    )


def cand(
    offer_id: str,
    price: str = "10.00",
    *,
    accelerator_id: str = "huawei-ascend-910b",
    domestic: bool = True,
    cards_total: int = 8,
    available_from: int = 0,
    available_until: int = 1000,
    holds: Sequence[Hold] = (),
    provider_id: str | None = None,
    payload: Any = None,
    free_trial_hours: int = 0,
    free_migration_support: bool = False,
) -> Candidate:
    return Candidate(
        offer_id=offer_id,
        provider_id=provider_id or f"p-{offer_id}",
        accelerator_id=accelerator_id,
        domestic=domestic,
        price_per_card_hour=Decimal(price),
        cards_total=cards_total,
        available_from=h(available_from),
        available_until=h(available_until),
        holds=tuple(holds),
        payload=payload,
        free_trial_hours=free_trial_hours,
        free_migration_support=free_migration_support,
    )


def want(
    cards: int = 4,
    hours: int = 10,
    *,
    earliest: int = 0,
    latest: int = 100,
    prefer_domestic: bool = False,
    max_net_budget: str | None = None,
) -> Want:
    return Want(
        cards=cards,
        hours=hours,
        earliest_start=h(earliest),
        latest_start=h(latest),
        prefer_domestic=prefer_domestic,
        max_net_budget=None if max_net_budget is None else Decimal(max_net_budget),
    )


@dataclass
class FakePricer:
    """Pays a fixed rate per offer (default 0), rounding the subsidy as told; counts calls."""

    rates: dict[str, Decimal]
    rounding: str = ROUND_DOWN
    calls: int = 0

    def __call__(self, candidate: Candidate, cards: int, gross: Decimal) -> Priced:
        self.calls += 1
        rate = self.rates.get(candidate.offer_id, Decimal(0))
        subsidy = (gross * rate).quantize(FEN, rounding=self.rounding)
        return Priced(net_amount=gross - subsidy, subsidy=(candidate.offer_id, rate, subsidy))


# --------------------------------------------------------------------------
# earliest_fit
# --------------------------------------------------------------------------


def test_no_holds_starts_at_earliest_start() -> None:
    assert fit(earliest=3) == h(3)


def test_start_waits_for_available_from() -> None:
    assert fit(earliest=3, available_from=7) == h(7)


def test_window_before_availability_is_refused() -> None:
    # The request must start by hour 5, the offer only opens at hour 6.
    assert fit(earliest=0, latest=5, available_from=6) is None


def test_window_after_availability_is_refused() -> None:
    # The offer closes at hour 15; a 10-hour window must start by hour 5.
    assert fit(earliest=6, latest=50, available_until=15) is None
    # ... and a window ending exactly at available_until fits (half-open).
    assert fit(earliest=5, latest=50, available_until=15) == h(5)


def test_availability_end_limits_a_later_start() -> None:
    # Free only from hour 30 (hold end), but the offer closes at hour 35: 10 hours don't fit.
    assert fit([hold(0, 30, 8)], available_until=35) is None
    assert fit([hold(0, 30, 8)], available_until=40) == h(30)


def test_fully_held_window_is_refused() -> None:
    assert fit([hold(0, 200, 8)], latest=100) is None


def test_partially_held_window_moves_to_the_hold_end() -> None:
    # 6 of 8 cards held until hour 12: 4 cards only fit once the hold ends.
    assert fit([hold(5, 12, 6)]) == h(12)
    # 2 cards fit beside the hold at once.
    assert fit([hold(5, 12, 6)], cards=2) == h(0)


def test_gap_between_holds_too_short_is_skipped() -> None:
    holds = [hold(0, 5, 8), hold(7, 12, 8), hold(20, 30, 8)]
    assert fit(holds, hours=3) == h(12)
    assert fit(holds, hours=2) == h(5)
    assert fit(holds, hours=8) == h(12)
    assert fit(holds, hours=9) == h(30)


def test_holds_touching_at_a_boundary_do_not_overlap() -> None:
    # [0,5) and [5,10) each hold 4: never 8 at once, so 4 more cards fit from 0.
    assert fit([hold(0, 5, 4), hold(5, 10, 4)], cards=4) == h(0)
    # A full hold [0,5) lets a window start exactly at 5.
    assert fit([hold(0, 5, 8)]) == h(5)
    # A full hold starting exactly when the window ends does not block it.
    assert fit([hold(10, 20, 8)], hours=10) == h(0)
    # One more hour and it does.
    assert fit([hold(10, 20, 8)], hours=11) == h(20)


def test_latest_start_is_respected() -> None:
    assert fit([hold(0, 10, 8)], latest=9) is None
    assert fit([hold(0, 10, 8)], latest=10) == h(10)


def test_earliest_after_latest_is_none() -> None:
    assert fit(earliest=10, latest=9) is None


def test_cards_total_exact_fit() -> None:
    assert fit(cards_total=8, cards=8) == h(0)
    assert fit([hold(0, 10, 4)], cards_total=8, cards=4) == h(0)
    assert fit([hold(0, 10, 4)], cards_total=8, cards=5) == h(10)
    assert fit(cards_total=8, cards=9) is None


def test_holds_outside_the_horizon_are_ignored() -> None:
    assert fit([hold(500, 600, 8)], latest=100) == h(0)


def test_mixed_offsets_compare_as_instants() -> None:
    # A hold expressed in +08:00 ends at 10:00 UTC.
    held = Hold(
        start=datetime(2026, 3, 1, 8, tzinfo=CST),
        end=datetime(2026, 3, 1, 18, tzinfo=CST),
        cards=8,
    )
    assert fit([held]) == h(10)


def test_naive_datetimes_and_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        Hold(start=datetime(2026, 3, 1), end=datetime(2026, 3, 2), cards=1)
    with pytest.raises(ValueError, match="after"):
        Hold(start=h(5), end=h(5), cards=1)
    with pytest.raises(ValueError, match="at least 1"):
        fit(cards=0)
    with pytest.raises(ValueError, match="positive"):
        fit(hours=0)
    with pytest.raises(ValueError, match="aware"):
        earliest_fit(
            holds=(),
            cards_total=1,
            cards=1,
            duration=timedelta(hours=1),
            earliest_start=datetime(2026, 3, 1),
            latest_start=h(10),
            available_from=h(0),
            available_until=h(100),
        )


hold_specs = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 12), st.integers(1, 5)), max_size=8
)


def _held_at(holds: Sequence[Hold], t: datetime) -> int:
    return sum(x.cards for x in holds if x.start <= t < x.end)


@PROPERTY
@given(
    specs=hold_specs,
    cards_total=st.integers(1, 8),
    cards=st.integers(1, 8),
    hours=st.integers(1, 10),
    earliest=st.integers(0, 20),
    span=st.integers(0, 30),
    available_from=st.integers(0, 25),
    available_len=st.integers(1, 60),
)
def test_earliest_fit_equals_an_hourly_brute_force(
    specs, cards_total, cards, hours, earliest, span, available_from, available_len
) -> None:
    holds = [hold(s, s + d, c) for s, d, c in specs]
    latest = earliest + span
    available_until = available_from + available_len
    expected = None
    # Everything is on the hour grid, so checking each hour is exact.
    for s in range(earliest, latest + 1):
        if s < available_from or s + hours > available_until:
            continue
        if all(_held_at(holds, h(t)) + cards <= cards_total for t in range(s, s + hours)):
            expected = h(s)
            break
    got = fit(
        holds,
        cards_total=cards_total,
        cards=cards,
        hours=hours,
        earliest=earliest,
        latest=latest,
        available_from=available_from,
        available_until=available_until,
    )
    assert got == expected


# --------------------------------------------------------------------------
# peak_usage
# --------------------------------------------------------------------------


def test_peak_usage() -> None:
    holds = [hold(0, 10, 3), hold(5, 15, 4), hold(10, 20, 2)]
    assert peak_usage(holds, h(0), h(20)) == 7  # [5,10): 3 + 4
    assert peak_usage(holds, h(0), h(5)) == 3
    assert peak_usage(holds, h(10), h(20)) == 6  # [10,15): 4 + 2, the 3 has ended
    assert peak_usage(holds, h(15), h(20)) == 2
    assert peak_usage(holds, h(20), h(30)) == 0
    assert peak_usage([], h(0), h(10)) == 0
    assert peak_usage(holds, h(10), h(10)) == 0  # empty window


def test_peak_usage_touching_holds_do_not_add_up() -> None:
    assert peak_usage([hold(0, 5, 4), hold(5, 10, 4)], h(0), h(10)) == 4
    assert peak_usage([hold(0, 5, 4), hold(4, 10, 4)], h(0), h(10)) == 8


@PROPERTY
@given(specs=hold_specs, start=st.integers(0, 50), length=st.integers(0, 20))
def test_peak_usage_equals_an_hourly_brute_force(specs, start, length) -> None:
    holds = [hold(s, s + d, c) for s, d, c in specs]
    expected = max((_held_at(holds, h(t)) for t in range(start, start + length)), default=0)
    assert peak_usage(holds, h(start), h(start + length)) == expected


# --------------------------------------------------------------------------
# gross_amount, rank_key
# --------------------------------------------------------------------------


def test_gross_amount() -> None:
    assert gross_amount(Decimal("12.00"), 64, 720) == Decimal("552960.00")
    # Half up to the fen (banker's rounding would give 0.12).
    assert gross_amount(Decimal("0.125"), 1, 1) == Decimal("0.13")
    assert gross_amount(Decimal("0.125"), 1, 1).as_tuple().exponent == -2


def test_net_lower_bound_floors_to_the_fen() -> None:
    assert net_lower_bound(Decimal("100.00"), Decimal("0.60")) == Decimal("40.00")
    assert net_lower_bound(Decimal("0.05"), Decimal("0.30")) == Decimal("0.03")  # 0.035


def mk_match(
    offer_id: str,
    net: str,
    *,
    domestic: bool = False,
    start: int = 0,
    accel: str = "a",
    trial: int = 0,
    migration: bool = False,
) -> Match:
    c = cand(
        offer_id,
        domestic=domestic,
        accelerator_id=accel,
        free_trial_hours=trial,
        free_migration_support=migration,
    )
    return Match(
        candidate=c,
        start=h(start),
        end=h(start + 1),
        cards=1,
        hours=1,
        gross_amount=Decimal(net),
        net_amount=Decimal(net),
        subsidy=None,
    )


def test_rank_orders_by_net_first() -> None:
    cheap_foreign = mk_match("z", "10.00", domestic=False, start=9)
    dear_domestic = mk_match("a", "10.01", domestic=True, start=0)
    for prefer in (True, False):
        ranked = sorted([dear_domestic, cheap_foreign], key=lambda m: rank_key(m, prefer))
        assert ranked == [cheap_foreign, dear_domestic]


def test_rank_domestic_first_only_when_preferred() -> None:
    foreign = mk_match("a", "10.00", domestic=False, start=0)
    domestic = mk_match("b", "10.00", domestic=True, start=5)
    assert sorted([foreign, domestic], key=lambda m: rank_key(m, True)) == [domestic, foreign]
    # Not preferred: the domestic flag is ignored, the earlier start wins.
    assert sorted([domestic, foreign], key=lambda m: rank_key(m, False)) == [foreign, domestic]


def test_rank_ties_by_start_then_offer_id() -> None:
    late = mk_match("a", "10.00", start=5)
    early_b = mk_match("b", "10.00", start=0)
    early_c = mk_match("c", "10.00", start=0)
    for prefer in (True, False):
        ranked = sorted([early_c, late, early_b], key=lambda m: rank_key(m, prefer))
        assert ranked == [early_b, early_c, late]


def test_rank_at_an_equal_price_more_free_trial_hours_then_migration_support_first() -> None:
    # domain.md, "Matches and quotes": net, domestic when preferred, earlier start, more
    # free_trial_hours, free_migration_support, offer id.
    bare = mk_match("a", "10.00")
    migration = mk_match("b", "10.00", migration=True)
    trial = mk_match("c", "10.00", trial=10)
    both = mk_match("d", "10.00", trial=10, migration=True)
    more_trial = mk_match("e", "10.00", trial=24)
    cheaper = mk_match("f", "9.99")
    later = mk_match("g", "10.00", start=1, trial=100, migration=True)
    for prefer in (True, False):
        ranked = sorted(
            [bare, migration, trial, both, more_trial, cheaper, later],
            key=lambda m: rank_key(m, prefer),
        )
        assert ranked == [cheaper, more_trial, both, trial, migration, bare, later]


def test_top_matches_keeps_the_free_extras_at_an_equal_price() -> None:
    # k = 1 among equal nets: the one with free trial hours wins, not the smaller id.
    plain = cand("a", "10.00")
    generous = cand("z", "10.00", free_trial_hours=8, free_migration_support=True)
    want = Want(cards=4, hours=10, earliest_start=h(0), latest_start=h(10), prefer_domestic=False)
    best = top_matches(
        [plain, generous],
        want,
        1,
        max_rate=Decimal("0.5"),
        price=lambda c, cards, gross: Priced(net_amount=gross, subsidy=None),
    )
    assert [m.candidate.offer_id for m in best] == ["z"]


# --------------------------------------------------------------------------
# top_matches
# --------------------------------------------------------------------------


def test_top_matches_ranks_fits_and_truncates() -> None:
    candidates = [
        cand("c", "12.00"),
        cand("a", "10.00", holds=[hold(0, 20, 8)]),  # cheapest, but only from hour 20
        cand("b", "11.00", cards_total=2),  # never fits 4 cards
        cand("d", "15.00", payload={"row": 4}),
    ]
    pricer = FakePricer({"d": Decimal("0.30")})  # d: 15 × 0.7 = 10.50 per card-hour
    got = top_matches(candidates, want(), 3, max_rate=Decimal("0.30"), price=pricer)
    assert [m.candidate.offer_id for m in got] == ["a", "d", "c"]
    a, d, c = got
    assert (a.start, a.end, a.cards, a.hours) == (h(20), h(30), 4, 10)
    assert a.gross_amount == a.net_amount == Decimal("400.00")
    assert d.gross_amount == Decimal("600.00")
    assert d.net_amount == Decimal("420.00")
    assert d.subsidy == ("d", Decimal("0.30"), Decimal("180.00"))
    assert d.candidate.payload == {"row": 4}
    assert c.start == h(0)
    assert pricer.calls == 3  # b never fits, so it is never priced

    assert top_matches(candidates, want(), 0, max_rate=Decimal("0.3"), price=pricer) == []


def test_top_matches_prefer_domestic_breaks_net_ties() -> None:
    candidates = [cand("a", domestic=False), cand("b", domestic=True)]
    pricer = FakePricer({})
    preferred = top_matches(
        candidates, want(prefer_domestic=True), 1, max_rate=Decimal(0), price=pricer
    )
    assert [m.candidate.offer_id for m in preferred] == ["b"]
    neutral = top_matches(candidates, want(), 1, max_rate=Decimal(0), price=pricer)
    assert [m.candidate.offer_id for m in neutral] == ["a"]


def test_pruning_skips_candidates_that_cannot_win() -> None:
    # The cheapest offer is unsubsidised at 10; every other offer costs at least 30,
    # so even the maximum rate of 50% leaves it at 15 or more: none needs pricing.
    candidates = [cand(f"o{i:02}", f"{30 + i}.00") for i in range(20)] + [cand("cheap", "10.00")]
    pricer = FakePricer({f"o{i:02}": Decimal("0.50") for i in range(20)})
    got = top_matches(candidates, want(), 1, max_rate=Decimal("0.50"), price=pricer)
    assert [m.candidate.offer_id for m in got] == ["cheap"]
    assert pricer.calls == 1
    assert pricer.calls < len(candidates)


def test_a_bound_equal_to_the_kth_net_is_still_priced() -> None:
    # "b" at 10 nets 400; "a" at 20 with max 50% has a bound of exactly 400, nets 400,
    # and wins the tie on offer id: pruning on >= instead of > would lose it.
    candidates = [cand("b", "10.00"), cand("a", "20.00")]
    pricer = FakePricer({"a": Decimal("0.50")})
    got = top_matches(candidates, want(), 1, max_rate=Decimal("0.50"), price=pricer)
    assert [m.candidate.offer_id for m in got] == ["a"]
    assert got[0].net_amount == Decimal("400.00")
    assert pricer.calls == 2


def test_max_net_budget_drops_dearer_matches() -> None:
    candidates = [cand("a", "10.00"), cand("b", "10.01"), cand("c", "20.00")]
    pricer = FakePricer({"c": Decimal("0.50")})
    # Gross for 4 cards × 10 h: a 400.00, b 400.40, c 800.00 → net 400.00.
    got = top_matches(
        candidates, want(max_net_budget="400.00"), 5, max_rate=Decimal("0.50"), price=pricer
    )
    assert [m.candidate.offer_id for m in got] == ["a", "c"]
    assert all(m.net_amount <= Decimal("400.00") for m in got)
    # Nothing within a budget below every net.
    got = top_matches(
        candidates, want(max_net_budget="399.99"), 5, max_rate=Decimal("0.50"), price=pricer
    )
    assert got == []


def test_max_net_budget_stops_the_visit_early() -> None:
    candidates = [cand("a", "10.00")] + [cand(f"x{i}", "100.00") for i in range(10)]
    pricer = FakePricer({})
    got = top_matches(
        candidates, want(max_net_budget="500.00"), 5, max_rate=Decimal("0.50"), price=pricer
    )
    assert [m.candidate.offer_id for m in got] == ["a"]
    assert pricer.calls == 1  # the others' bound (2000.00) is beyond the budget


def test_max_rate_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_rate"):
        top_matches([cand("a")], want(), 1, max_rate=Decimal("1.5"), price=FakePricer({}))


@st.composite
def market(draw: st.DrawFn) -> tuple[list[Candidate], dict[str, Decimal], Decimal]:
    max_rate = draw(st.sampled_from([Decimal("0"), Decimal("0.3"), Decimal("0.5"), Decimal("0.6")]))
    n = draw(st.integers(0, 10))
    candidates: list[Candidate] = []
    rates: dict[str, Decimal] = {}
    for i in range(n):
        offer_id = f"o{draw(st.integers(0, 99)):02}-{i}"
        available_from = draw(st.integers(0, 10))
        specs = draw(hold_specs)
        candidates.append(
            cand(
                offer_id,
                draw(st.sampled_from(["10.00", "12.00", "15.00", "20.00", "20.01", "25.00"])),
                domestic=draw(st.booleans()),
                cards_total=draw(st.integers(1, 8)),
                available_from=available_from,
                available_until=available_from + draw(st.integers(5, 80)),
                holds=[hold(s, s + d, c) for s, d, c in specs],
            )
        )
        rate = draw(st.sampled_from([Decimal("0"), Decimal("0.2"), Decimal("0.5"), max_rate]))
        rates[offer_id] = min(rate, max_rate)
    return candidates, rates, max_rate


@PROPERTY
@given(
    m=market(),
    cards=st.integers(1, 6),
    hours=st.integers(1, 12),
    earliest=st.integers(0, 10),
    span=st.integers(0, 30),
    prefer_domestic=st.booleans(),
    budget=st.none() | st.sampled_from(["100.00", "300.00", "600.00", "1000.00"]),
    k=st.integers(1, 5),
    rounding=st.sampled_from([ROUND_DOWN, ROUND_HALF_UP, ROUND_UP]),
)
def test_pruning_never_changes_the_result(
    m, cards, hours, earliest, span, prefer_domestic, budget, k, rounding
) -> None:
    candidates, rates, max_rate = m
    w = want(
        cards,
        hours,
        earliest=earliest,
        latest=earliest + span,
        prefer_domestic=prefer_domestic,
        max_net_budget=budget,
    )
    brute_pricer = FakePricer(rates, rounding)
    brute: list[Match] = []
    for c in candidates:
        start = earliest_fit(
            holds=c.holds,
            cards_total=c.cards_total,
            cards=cards,
            duration=timedelta(hours=hours),
            earliest_start=w.earliest_start,
            latest_start=w.latest_start,
            available_from=c.available_from,
            available_until=c.available_until,
        )
        if start is None:
            continue
        gross = gross_amount(c.price_per_card_hour, cards, hours)
        priced = brute_pricer(c, cards, gross)
        if w.max_net_budget is not None and priced.net_amount > w.max_net_budget:
            continue
        brute.append(
            Match(c, start, start + timedelta(hours=hours), cards, hours, gross, **vars(priced))
        )
    brute.sort(key=lambda x: rank_key(x, prefer_domestic))

    pricer = FakePricer(rates, rounding)
    got = top_matches(candidates, w, k, max_rate=max_rate, price=pricer)
    assert got == brute[:k]
    assert pricer.calls <= brute_pricer.calls


# --------------------------------------------------------------------------
# plan_splits
# --------------------------------------------------------------------------


@dataclass
class FakePartsPricer:
    """Prices parts in order with a fixed rate per offer; records every call."""

    rates: dict[str, Decimal]
    calls: list[list[tuple[str, int, Decimal]]]

    def __call__(self, parts: Sequence[tuple[Candidate, int, Decimal]]) -> list[Priced]:
        self.calls.append([(c.offer_id, n, g) for c, n, g in parts])
        out = []
        for c, _, gross in parts:
            subsidy = (gross * self.rates.get(c.offer_id, Decimal(0))).quantize(FEN, ROUND_DOWN)
            out.append(Priced(net_amount=gross - subsidy, subsidy=subsidy))
        return out


def parts_pricer(rates: dict[str, str] | None = None) -> FakePartsPricer:
    return FakePartsPricer({k: Decimal(v) for k, v in (rates or {}).items()}, [])


def test_split_combines_two_offers_when_none_fits_alone() -> None:
    # Offer ids in the opposite order to prices: the fill must follow the price.
    candidates = [cand("a", "12.00", cards_total=4), cand("z", "10.00", cards_total=4)]
    pricer = parts_pricer({"a": "0.50"})
    got = plan_splits(candidates, want(cards=6, latest=0), 5, price_parts=pricer)
    assert len(got) == 1
    split = got[0]
    assert isinstance(split, SplitMatch)
    # Cheapest per card-hour first: all 4 of z, then 2 of a.
    assert [(p.candidate.offer_id, p.cards) for p in split.parts] == [("z", 4), ("a", 2)]
    assert [p.gross_amount for p in split.parts] == [Decimal("400.00"), Decimal("240.00")]
    assert [p.net_amount for p in split.parts] == [Decimal("400.00"), Decimal("120.00")]
    assert [p.subsidy for p in split.parts] == [Decimal("0.00"), Decimal("120.00")]
    assert (split.accelerator_id, split.start, split.end) == ("huawei-ascend-910b", h(0), h(10))
    assert (split.cards, split.hours, split.domestic) == (6, 10, True)
    assert split.gross_amount == sum(p.gross_amount for p in split.parts) == Decimal("640.00")
    assert split.net_amount == sum(p.net_amount for p in split.parts) == Decimal("520.00")
    assert sum(p.cards for p in split.parts) == split.cards
    # One call for the whole plan, with every part in order.
    assert pricer.calls == [[("z", 4, Decimal("400.00")), ("a", 2, Decimal("240.00"))]]


def test_split_uses_the_same_accelerator_model_only() -> None:
    candidates = [
        cand("a", cards_total=4, accelerator_id="huawei-ascend-910b"),
        cand("b", cards_total=4, accelerator_id="nvidia-h100"),
    ]
    pricer = parts_pricer()
    assert plan_splits(candidates, want(cards=6), 5, price_parts=pricer) == []
    assert pricer.calls == []


def test_split_parts_come_from_one_model_when_several_could_help() -> None:
    candidates = [
        cand("a1", "10.00", cards_total=4, accelerator_id="m-a"),
        cand("a2", "11.00", cards_total=4, accelerator_id="m-a"),
        cand("b1", "1.00", cards_total=3, accelerator_id="m-b"),
        cand("b2", "1.00", cards_total=3, accelerator_id="m-b"),
    ]
    got = plan_splits(candidates, want(cards=6, latest=0), 5, price_parts=parts_pricer())
    assert [s.accelerator_id for s in got] == ["m-b", "m-a"]  # by net
    for s in got:
        assert {p.candidate.accelerator_id for p in s.parts} == {s.accelerator_id}


def test_no_split_when_the_cheapest_offer_fits_alone() -> None:
    candidates = [cand("a", "10.00", cards_total=8), cand("b", "12.00", cards_total=4)]
    pricer = parts_pricer()
    assert plan_splits(candidates, want(cards=6), 5, price_parts=pricer) == []
    assert pricer.calls == []


def test_no_split_when_the_cards_cannot_all_be_placed() -> None:
    candidates = [cand("a", cards_total=2), cand("b", cards_total=3)]
    assert plan_splits(candidates, want(cards=6), 5, price_parts=parts_pricer()) == []


def test_split_counts_free_cards_over_the_whole_window() -> None:
    # a has 2 of 4 cards held over [5, 8): only 2 free for a window covering it.
    candidates = [
        cand("a", "10.00", cards_total=4, holds=[hold(5, 8, 2)]),
        cand("b", "12.00", cards_total=4),
    ]
    got = plan_splits(candidates, want(cards=6, latest=0), 5, price_parts=parts_pricer())
    assert [(p.candidate.offer_id, p.cards) for p in got[0].parts] == [("a", 2), ("b", 4)]


def test_split_starts_when_capacity_frees_and_one_per_start() -> None:
    candidates = [
        cand("a", "10.00", cards_total=4),
        cand("b", "12.00", cards_total=4, holds=[hold(0, 10, 4)]),
        cand("c", "30.00", cards_total=4, available_from=3),
    ]
    got = plan_splits(candidates, want(cards=6, latest=20), 10, price_parts=parts_pricer())
    by_start = {s.start: [(p.candidate.offer_id, p.cards) for p in s.parts] for s in got}
    assert len(by_start) == len(got)  # at most one split per (accelerator, start)
    # At 0 only a is free (c opens at 3): no split. At 3: a + c. At 10 (b's hold ends): a + b.
    assert by_start == {h(3): [("a", 4), ("c", 2)], h(10): [("a", 4), ("b", 2)]}
    # Ranked by net: the start at 10 is cheaper (b at 12 rather than c at 30).
    assert [s.start for s in got] == [h(10), h(3)]
    assert got[0].net_amount < got[1].net_amount


def test_split_respects_availability() -> None:
    candidates = [
        cand("a", cards_total=4),
        cand("b", cards_total=4, available_until=5),  # closes before a 10-hour window ends
    ]
    assert plan_splits(candidates, want(cards=6), 5, price_parts=parts_pricer()) == []


def test_split_tries_a_bounded_number_of_starts() -> None:
    # b frees one hour at a time; every hold end is a candidate start, but only the
    # first MAX_SPLIT_STARTS distinct ones are tried.
    holds = [hold(i, i + 1, 4) for i in range(40)]
    candidates = [cand("a", cards_total=4), cand("b", cards_total=4, holds=holds)]
    pricer = parts_pricer()
    plan_splits(candidates, want(cards=6, hours=1, latest=100), 100, price_parts=pricer)
    assert len(pricer.calls) == 0  # b is busy at each of the first 16 starts (0 … 15)
    holds = [hold(0, 1, 4)]
    candidates = [cand("a", cards_total=4), cand("b", cards_total=4, holds=holds)]
    got = plan_splits(candidates, want(cards=6, hours=1, latest=100), 100, price_parts=pricer)
    assert [s.start for s in got] == [h(1)]
    assert MAX_SPLIT_STARTS == 16


def test_split_max_net_budget_and_k() -> None:
    candidates = [
        cand("a1", "10.00", cards_total=4, accelerator_id="m-a"),
        cand("a2", "10.00", cards_total=4, accelerator_id="m-a"),
        cand("b1", "20.00", cards_total=4, accelerator_id="m-b"),
        cand("b2", "20.00", cards_total=4, accelerator_id="m-b"),
    ]
    # Nets for 6 cards × 10 h: m-a 600.00, m-b 1200.00.
    got = plan_splits(candidates, want(cards=6, latest=0), 5, price_parts=parts_pricer())
    assert [s.net_amount for s in got] == [Decimal("600.00"), Decimal("1200.00")]
    got = plan_splits(candidates, want(cards=6, latest=0), 1, price_parts=parts_pricer())
    assert [s.accelerator_id for s in got] == ["m-a"]
    budget = want(cards=6, latest=0, max_net_budget="1000.00")
    got = plan_splits(candidates, budget, 5, price_parts=parts_pricer())
    assert [s.accelerator_id for s in got] == ["m-a"]
    assert plan_splits(candidates, want(cards=6), 0, price_parts=parts_pricer()) == []


def test_split_ranking_ties_and_domestic_preference() -> None:
    candidates = [
        cand("n1", cards_total=4, accelerator_id="a-nvidia", domestic=False),
        cand("n2", cards_total=4, accelerator_id="a-nvidia", domestic=False),
        cand("h1", cards_total=4, accelerator_id="z-ascend", domestic=True),
        cand("h2", cards_total=4, accelerator_id="z-ascend", domestic=True),
    ]
    neutral = plan_splits(candidates, want(cards=6, latest=0), 5, price_parts=parts_pricer())
    assert [(s.accelerator_id, s.domestic) for s in neutral] == [
        ("a-nvidia", False),
        ("z-ascend", True),
    ]
    preferred = plan_splits(
        candidates, want(cards=6, latest=0, prefer_domestic=True), 5, price_parts=parts_pricer()
    )
    assert [s.accelerator_id for s in preferred] == ["z-ascend", "a-nvidia"]
    assert preferred == sorted(preferred, key=lambda s: split_rank_key(s, True))


def test_split_price_parts_must_answer_every_part() -> None:
    candidates = [cand("a", cards_total=4), cand("b", cards_total=4)]

    def short(parts: Sequence[tuple[Candidate, int, Decimal]]) -> list[Priced]:
        return [Priced(net_amount=Decimal("1.00"), subsidy=None)]

    with pytest.raises(ValueError, match="price_parts"):
        plan_splits(candidates, want(cards=6), 5, price_parts=short)


# A match never starts before the moment it is computed (domain.md, "Compute requests").
@pytest.mark.parametrize(
    ("earliest", "latest", "now", "expected"),
    [
        # The window has not begun: its own start, even off the hour.
        (h(5) + timedelta(minutes=30), h(50), h(1), h(5) + timedelta(minutes=30)),
        (h(5), h(50), h(5), h(5)),
        # It has begun: the next whole hour from now.
        (h(0), h(50), h(3) + timedelta(minutes=1), h(4)),
        (h(0), h(50), h(3), h(3)),
        # The hour lies past the window's close: the next whole minute, then its close.
        (
            h(0),
            h(3) + timedelta(minutes=40),
            h(3) + timedelta(minutes=20, seconds=5),
            h(3) + timedelta(minutes=21),
        ),
        (
            h(0),
            h(3) + timedelta(minutes=20, seconds=30),
            h(3) + timedelta(minutes=20, seconds=5),
            h(3) + timedelta(minutes=20, seconds=30),
        ),
        # The window has closed: a start after it, so nothing fits.
        (h(0), h(3), h(3) + timedelta(minutes=1), h(4)),
    ],
)
def test_first_start_is_never_before_now(
    earliest: datetime, latest: datetime, now: datetime, expected: datetime
) -> None:
    start = first_start(earliest, latest, now)
    assert start == expected
    assert start >= now


def test_first_start_counts_whole_hours_in_any_offset() -> None:
    # 11:30 in Shanghai is 03:30 UTC: the next whole hour is 12:00 there, 04:00 UTC.
    now = datetime(2026, 3, 1, 11, 30, tzinfo=CST)
    start = first_start(now - timedelta(days=1), now + timedelta(days=1), now)
    assert start == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


@given(
    earliest=st.integers(-10_000, 10_000),
    span=st.integers(0, 10_000),
    now=st.integers(-10_000, 20_000),
)
@PROPERTY
def test_first_start_property(earliest: int, span: int, now: int) -> None:
    e = T0 + timedelta(minutes=earliest)
    latest = e + timedelta(minutes=span)
    at = T0 + timedelta(minutes=now, seconds=7)
    start = first_start(e, latest, at)
    assert start >= at
    assert start >= e
    if at <= latest:
        assert start <= latest  # a window still open always has a start left
    if e < at <= latest:
        assert start - at < timedelta(hours=1)
