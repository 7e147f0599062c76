"""Property tests of the subsidy rules: invariants that hold for any inputs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.money import FEN, ZERO, round_down
from app.subsidies.rules import (
    BASES,
    PROGRAM_STATUSES,
    PURPOSES,
    Contract,
    EnterpriseFacts,
    Program,
    ProviderFacts,
    RateTier,
    Usage,
    effective_cap,
    evaluate,
    max_rate,
)
from migrations.seed.programs import PROGRAMS

SEEDS = [Program.from_data(p) for p in PROGRAMS]
LISTS = (
    "hz-planned-icc",
    "hz-matchmaking-partner",
    "binjiang-compute-partner",
    "hz-ai-computing-center",
    "other-list",
)
REGIONS = ("330108", "330106", "330212", "330100", "310115", "320102", "110101")
PROVIDER_STATUSES = ("pending", "listed", "rejected", "suspended", "delisted")

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

money = st.decimals(min_value=0, max_value=Decimal("30000000.00"), places=2)
rates = st.decimals(min_value=0, max_value=1, places=2)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2029, 12, 31))
purposes = st.sampled_from(PURPOSES)


# Strategies are built once: building them inside a composite on every draw is slow.
optional_bools = st.none() | st.booleans()
optional_days = st.none() | days
optional_money = st.none() | money
tier_purposes = st.none() | st.frozensets(purposes, min_size=1)
rate_tiers = st.builds(
    RateTier,
    rate=rates,
    domestic=optional_bools,
    purposes=tier_purposes,
    relies_on_filed_model=optional_bools,
)
program_parts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(PROGRAM_STATUSES),
        "voucher_type": st.sampled_from(("compute", "compute", "compute", "model")),
        "effective_from": optional_days,
        "length": st.none() | st.integers(min_value=0, max_value=2000),
        "regions_include": st.lists(
            st.sampled_from(("33", "3301", "330108", "31")), min_size=1, max_size=2, unique=True
        ),
        "regions_exclude": st.lists(st.sampled_from(("3301", "330106")), max_size=1),
        "provider_lists_any": st.frozensets(st.sampled_from(LISTS), max_size=2),
        "purposes": st.frozensets(purposes, min_size=1),
        "base": st.sampled_from(BASES),
        "rates": st.lists(rate_tiers, min_size=1, max_size=3),
        "enterprise_annual_cap": optional_money,
        "cap_relaxable": st.booleans(),
        "annual_budget": optional_money,
        "suffix": st.sampled_from(("a", "b")),
    }
)


def programs(index: int) -> st.SearchStrategy[Program]:
    def build(parts: dict[str, Any]) -> Program:
        start: date | None = parts["effective_from"]
        length: int | None = parts["length"]
        end = None if start is None or length is None else start + timedelta(days=length)
        return Program(
            id=f"p{index}-{parts['suffix']}",
            status=parts["status"],
            voucher_type=parts["voucher_type"],
            effective_from=start,
            effective_until=end,
            regions_include=tuple(parts["regions_include"]),
            regions_exclude=tuple(parts["regions_exclude"]),
            provider_lists_any=parts["provider_lists_any"],
            purposes=parts["purposes"],
            base=parts["base"],
            rates=tuple(parts["rates"]),
            enterprise_annual_cap=parts["enterprise_annual_cap"],
            cap_relaxable=parts["cap_relaxable"],
            annual_budget=parts["annual_budget"],
        )

    return program_parts.map(build)


PROGRAM_STRATEGIES = [programs(i) for i in range(5)]
REGION_CODES = st.sampled_from(REGIONS)
PROVIDER_FACTS = st.builds(
    ProviderFacts,
    status=st.sampled_from(PROVIDER_STATUSES),
    lists=st.frozensets(st.sampled_from(LISTS)),
)
CONTRACTS = st.builds(
    Contract, domestic=st.booleans(), purpose=purposes, gross_amount=money, contract_date=days
)


ALL_IDS = [p.id for p in SEEDS] + [f"p{i}-{x}" for i in range(5) for x in "ab"]
SEED_SUBSETS = st.lists(st.sampled_from(SEEDS), unique_by=lambda p: p.id)
PROGRAM_COUNTS = st.integers(min_value=0, max_value=5)
USAGE_MAPS = st.dictionaries(st.sampled_from(ALL_IDS), money, max_size=6)
BOOLS = st.booleans()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(SEED_SUBSETS)
    chosen += [draw(PROGRAM_STRATEGIES[i]) for i in range(draw(PROGRAM_COUNTS))]
    return {
        "programs": chosen,
        "enterprise": EnterpriseFacts(
            region_code=draw(REGION_CODES),
            is_foundation_model_enterprise=draw(BOOLS),
            relies_on_filed_model=draw(BOOLS),
            relaxed_caps=draw(USAGE_MAPS),
        ),
        "provider": draw(PROVIDER_FACTS),
        "contract": draw(CONTRACTS),
        "usage": Usage(enterprise_used=draw(USAGE_MAPS), budget_used=draw(USAGE_MAPS)),
    }


def _left(limit: Decimal | None, used: Decimal) -> Decimal | None:
    return None if limit is None else max(ZERO, limit - used)


@PROPERTY_SETTINGS
@given(scenarios())
def test_subsidy_invariants(s: dict[str, Any]) -> None:
    result = evaluate(s["programs"], s["enterprise"], s["provider"], s["contract"], s["usage"])
    gross: Decimal = s["contract"].gross_amount
    usage: Usage = s["usage"]

    # every program is considered exactly once
    assert sorted(c.program_id for c in result.considered) == sorted(p.id for p in s["programs"])
    # 0 <= subsidy <= gross, to the fen
    assert ZERO <= result.amount <= gross
    assert result.amount == result.amount.quantize(FEN)
    # the chosen amount is the best over the eligible considerations (从优、从高)
    eligible = [c for c in result.considered if c.eligible]
    assert result.amount == max((c.amount for c in eligible), default=ZERO)

    if result.program_id is None:
        assert (result.amount, result.rate, result.base, result.capped_by) == (
            ZERO,
            Decimal(0),
            None,
            None,
        )
        return

    assert result.amount > ZERO
    program = next(p for p in s["programs"] if p.id == result.program_id)
    # only an active compute program valid on the contract date ever pays
    assert program.status == "active"
    assert program.voucher_type == "compute"
    assert program.is_valid_on(s["contract"].contract_date)
    assert s["provider"].status == "listed"
    assert program.region_matches(s["enterprise"].region_code)
    # subsidy <= chosen rate x gross, and the rate is one of the program's tiers
    assert result.rate in {tier.rate for tier in program.rates}
    assert result.amount <= round_down(result.rate * gross)
    assert result.rate <= max_rate(s["programs"])
    # subsidy <= what is left of the enterprise cap and of the program budget
    cap_left = _left(
        effective_cap(program, s["enterprise"]), usage.enterprise_used.get(program.id, ZERO)
    )
    budget_left = _left(program.annual_budget, usage.budget_used.get(program.id, ZERO))
    assert cap_left is None or result.amount <= cap_left
    assert budget_left is None or result.amount <= budget_left
    # ties: no eligible program with the same amount pays sooner, or as soon with a smaller id
    for c in eligible:
        if c.amount == result.amount and c.program_id != result.program_id:
            assert result.base is not None
            assert (BASES.index(result.base), result.program_id) < (
                BASES.index(c.base),
                c.program_id,
            )


@PROPERTY_SETTINGS
@given(scenarios(), money)
def test_more_usage_never_raises_the_subsidy(s: dict[str, Any], extra: Decimal) -> None:
    before = evaluate(s["programs"], s["enterprise"], s["provider"], s["contract"], s["usage"])
    usage: Usage = s["usage"]
    more = Usage(
        enterprise_used={
            p.id: usage.enterprise_used.get(p.id, ZERO) + extra for p in s["programs"]
        },
        budget_used=dict(usage.budget_used),
    )
    after = evaluate(s["programs"], s["enterprise"], s["provider"], s["contract"], more)
    assert after.amount <= before.amount


@PROPERTY_SETTINGS
@given(scenarios())
def test_evaluation_does_not_depend_on_program_order(s: dict[str, Any]) -> None:
    forward = evaluate(s["programs"], s["enterprise"], s["provider"], s["contract"], s["usage"])
    backward = evaluate(
        list(reversed(s["programs"])), s["enterprise"], s["provider"], s["contract"], s["usage"]
    )
    assert forward == backward


@PROPERTY_SETTINGS
@given(st.one_of(PROGRAM_STRATEGIES))
def test_from_data_round_trips_any_program(program: Program) -> None:
    assert Program.from_data(program.to_data()) == program


def test_from_data_round_trips_the_seed_programs() -> None:
    for data, program in zip(PROGRAMS, SEEDS, strict=True):
        again = program.to_data()
        assert Program.from_data(again) == program
        # the same document, up to the order of the set-valued fields
        for key in data:
            if key in ("provider_lists_any", "purposes"):
                assert sorted(again[key]) == sorted(data[key])
            else:
                assert again[key] == data[key], key
