"""A program's max_price_ratio (market.md, "The price index"), as the pure rules apply it."""

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from app.subsidies.rules import (
    Contract,
    EnterpriseFacts,
    Program,
    ProviderFacts,
    Usage,
    evaluate,
    price_above_index,
)
from migrations.seed.programs import PROGRAMS

BJ = "binjiang-compute-2025"
ENTERPRISE = EnterpriseFacts(region_code="330108", is_foundation_model_enterprise=False)
PROVIDER = ProviderFacts(status="listed", lists=frozenset({"binjiang-compute-partner"}))


def binjiang(ratio: str | None) -> Program:
    data: dict[str, Any] = copy.deepcopy(next(p for p in PROGRAMS if p["id"] == BJ))
    data["max_price_ratio"] = ratio
    return Program.from_data(data)


def contract(price: str | None, median: str | None) -> Contract:
    return Contract(
        domestic=True,
        purpose="training",
        gross_amount=Decimal("1000.00"),
        contract_date=date(2026, 3, 1),
        price_per_card_hour=None if price is None else Decimal(price),
        index_median=None if median is None else Decimal(median),
    )


def test_seeded_programs_set_no_ratio() -> None:
    assert all(Program.from_data(p).max_price_ratio is None for p in PROGRAMS)
    # No ratio: no limit, whatever the price.
    assert price_above_index(binjiang(None), contract("999.00", "1.00")) is None


@pytest.mark.parametrize(
    ("price", "median", "paid"),
    [
        ("16.50", "11.00", True),  # exactly 1.50 × the median: within
        ("16.51", "11.00", False),
        ("18.00", "11.00", False),
        ("5.00", "11.00", True),
        ("18.00", None, True),  # no active offer of the model: no median, no limit
    ],
)
def test_price_against_ratio_times_median(price: str, median: str | None, paid: bool) -> None:
    result = evaluate([binjiang("1.50")], ENTERPRISE, PROVIDER, contract(price, median), Usage())
    assert (result.program_id == BJ) is paid
    [considered] = result.considered
    assert considered.eligible is paid


def test_the_reason_says_price_ratio_and_median() -> None:
    result = evaluate([binjiang("1.50")], ENTERPRISE, PROVIDER, contract("18.00", "11.00"), Usage())
    assert result.amount == Decimal("0")
    assert result.considered[0].reason == "price 18.00 is above 1.50 × the index median 11.00"


def test_an_unstated_price_gets_nothing_from_a_limiting_program() -> None:
    result = evaluate([binjiang("1.20")], ENTERPRISE, PROVIDER, contract(None, "11.00"), Usage())
    assert result.program_id is None
    assert "price per card-hour not stated" in result.considered[0].reason
    assert "1.20 × the index median" in result.considered[0].reason


def test_the_failure_is_listed_beside_the_others() -> None:
    outside = EnterpriseFacts(region_code="330106", is_foundation_model_enterprise=False)
    result = evaluate([binjiang("1.50")], outside, PROVIDER, contract("18.00", "11.00"), Usage())
    reason = result.considered[0].reason
    assert "outside 330108" in reason
    assert "price 18.00 is above 1.50 × the index median 11.00" in reason


@pytest.mark.parametrize("ratio", ["0", "-1.00", "1.505", "abc", 1.5])
def test_malformed_ratios_are_refused(ratio: Any) -> None:
    with pytest.raises(ValueError, match="max_price_ratio"):
        binjiang(ratio)


def test_the_ratio_round_trips() -> None:
    program = binjiang("1.5")
    assert program.max_price_ratio == Decimal("1.5")
    assert program.to_data()["max_price_ratio"] == "1.50"
    assert Program.from_data(program.to_data()) == program
