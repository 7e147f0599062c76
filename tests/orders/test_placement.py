"""Table-driven tests of the pure order decision (app/orders/placement.py).

One program, P, with round numbers so every expected amount is worked out by hand:
50% of the gross on any hardware, a cap of 1,000.00 an enterprise a year, a budget of
5,000.00 a year. The quote pins its match; the market is what the order's locks guard.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.matching.engine import Hold
from app.matching.schemas import MATCH_EXAMPLE, MatchOut
from app.orders import placement
from app.orders.errors import OrderConflict
from app.subsidies.rules import EnterpriseFacts, Program
from migrations.seed.programs import PROGRAMS

P = "p-half"
REGION = "330108"
DAY = date(2026, 3, 1)
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(hours=10)
NOW = datetime(2026, 3, 1, 8, tzinfo=UTC)


def program() -> Program:
    data = copy.deepcopy(next(p for p in PROGRAMS if p["id"] == "binjiang-compute-2025"))
    data.update(
        id=P,
        rates=[{"rate": "0.50", "when": {}}],
        enterprise_annual_cap="1000.00",
        annual_budget="5000.00",
        provider_lists_any=["list-a"],
    )
    return Program.from_data(data)


PRICING = placement.Pricing(
    programs=[program()],
    enterprise=EnterpriseFacts(region_code=REGION),
    purpose="training",
    contract_date=DAY,
)


def subsidy(amount: str | None) -> dict[str, Any]:
    if amount is None:
        return {"program_id": None, "rate": "0", "amount": "0.00", "base": None, "capped_by": None}
    return {
        "program_id": P,
        "rate": "0.50",
        "amount": amount,
        "base": "settled_amount",
        "capped_by": None,
    }


def part(offer: str, cards: int, gross: str, quoted: str | None) -> dict[str, Any]:
    return {
        "offer_id": offer,
        "provider_id": "prv-" + offer,
        "accelerator_id": "huawei-ascend-910b",
        "domestic": True,
        "cards": cards,
        "price_per_card_hour": "10.00",
        "gross_amount": gross,
        "subsidy": subsidy(quoted),
        "net_amount": gross,
        "free_trial_hours": 0,
        "free_migration_support": False,
        "considered": [],
    }


def match(*parts: dict[str, Any]) -> MatchOut:
    data = copy.deepcopy(MATCH_EXAMPLE)
    data.update(start=START.isoformat(), end=END.isoformat(), hours=10)
    if len(parts) == 1:
        (only,) = parts
        data.update({k: only[k] for k in ("offer_id", "provider_id", "cards", "gross_amount")})
        data.update(price_per_card_hour="10.00", subsidy=only["subsidy"])
    else:
        data.update(offer_id=None, provider_id=None, price_per_card_hour=None, parts=list(parts))
        data.update(cards=sum(p["cards"] for p in parts))
    return MatchOut.model_validate(data)


def hold(cards: int, start: datetime = START, hours: int = 10) -> Hold:
    return Hold(start=start, end=start + timedelta(hours=hours), cards=cards)


@dataclass
class Case:
    id: str
    parts: list[dict[str, Any]]
    reason: str | None = None  # None: accepted
    amounts: list[str] = field(default_factory=list)  # the parts' subsidies, if accepted
    detail: str = ""  # a piece of the refusal's detail
    on_sale: dict[str, int] = field(default_factory=lambda: {"o1": 10, "o2": 10})
    holds: dict[str, list[Hold]] = field(default_factory=dict)
    lists: dict[str, frozenset[str]] = field(
        default_factory=lambda: {"prv-o1": frozenset({"list-a"}), "prv-o2": frozenset({"list-a"})}
    )
    enterprise_used: dict[str, Decimal] = field(default_factory=dict)
    budget_used: dict[str, Decimal] = field(default_factory=dict)


CASES = [
    Case("single-as-quoted", [part("o1", 4, "400.00", "200.00")], amounts=["200.00"]),
    Case(
        "no-program-as-quoted",  # the provider on no list P names: nothing quoted, nothing now
        [part("o1", 4, "400.00", None)],
        amounts=["0.00"],
        lists={},
    ),
    Case(
        "offer-off-sale",
        [part("o1", 4, "400.00", "200.00")],
        "offer_unavailable",
        detail="offer o1 is no longer on sale",
        on_sale={"o2": 10},
    ),
    Case(
        "split-one-part-off-sale",
        [part("o1", 2, "200.00", "100.00"), part("o2", 2, "200.00", "100.00")],
        "offer_unavailable",
        detail="offer o2",
        on_sale={"o1": 10},
    ),
    Case(
        "cards-taken",  # 10 cards, 8 held over the whole window: 2 free, 4 needed
        [part("o1", 4, "400.00", "200.00")],
        "capacity",
        detail="offer o1 has 2 of 10 cards free",
        holds={"o1": [hold(8)]},
    ),
    Case(
        "cards-taken-for-an-hour",  # the peak counts, however short
        [part("o1", 4, "400.00", "200.00")],
        "capacity",
        holds={"o1": [hold(7, START + timedelta(hours=9), 1)]},
    ),
    Case(
        "exactly-the-free-cards",
        [part("o1", 4, "400.00", "200.00")],
        amounts=["200.00"],
        holds={"o1": [hold(6)]},
    ),
    Case(
        "holds-of-another-offer",
        [part("o1", 4, "400.00", "200.00")],
        amounts=["200.00"],
        holds={"o2": [hold(10)]},
    ),
    Case(
        "cap-used-since",  # 1,000 cap, 900 used: 100 left of the quoted 200
        [part("o1", 4, "400.00", "200.00")],
        "subsidy",
        detail="quoted 200.00 from p-half, now 100.00 from p-half (capped by",
        enterprise_used={P: Decimal("900.00")},
    ),
    Case(
        "budget-used-since",  # 5,000 budget, 4,850 used: 150 left
        [part("o1", 4, "400.00", "200.00")],
        "subsidy",
        detail="now 150.00 from p-half",
        budget_used={P: Decimal("4850.00")},
    ),
    Case(
        "other-enterprises-use-no-cap",
        [part("o1", 4, "400.00", "200.00")],
        amounts=["200.00"],
        budget_used={P: Decimal("900.00")},
    ),
    Case(
        "provider-left-the-list",
        [part("o1", 4, "400.00", "200.00")],
        "subsidy",
        detail="now 0.00 from no program",
        lists={"prv-o1": frozenset()},
    ),
    Case(
        "split-fills-the-cap",  # 500 + 500 of 1,000
        [part("o1", 5, "1000.00", "500.00"), part("o2", 5, "1000.00", "500.00")],
        amounts=["500.00", "500.00"],
    ),
    Case(
        "split-second-part-capped-by-the-first",  # 100 used: the second part gets 400
        [part("o1", 5, "1000.00", "500.00"), part("o2", 5, "1000.00", "500.00")],
        "subsidy",
        detail="offer o2: quoted 500.00 from p-half, now 400.00",
        enterprise_used={P: Decimal("100.00")},
    ),
    Case(
        "capacity-before-subsidy",
        [part("o1", 4, "400.00", "200.00")],
        "capacity",
        holds={"o1": [hold(10)]},
        enterprise_used={P: Decimal("1000.00")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_decide(case: Case) -> None:
    quoted = match(*case.parts)
    market = placement.Market(
        cards_on_sale=case.on_sale,
        holds=case.holds,
        provider_lists=case.lists,
        enterprise_used=case.enterprise_used,
        budget_used=case.budget_used,
    )
    decided = placement.decide(quoted, placement.quoted_parts(quoted), market, PRICING)
    if case.reason is None:
        assert isinstance(decided, placement.Accepted), decided
        assert [str(p.subsidy.amount) for p in decided.parts] == case.amounts
        assert [p.part.offer_id for p in decided.parts] == [p["offer_id"] for p in case.parts]
    else:
        assert isinstance(decided, OrderConflict)
        assert decided.reason == case.reason
        assert decided.extra["reason"] == case.reason  # what the problem body carries
        assert case.detail in str(decided.detail)


def test_decide_leaves_the_market_as_read() -> None:
    # Pricing the parts in turn uses copies: the balances read stay as read.
    used = {P: Decimal("0.00")}
    quoted = match(part("o1", 5, "1000.00", "500.00"), part("o2", 5, "1000.00", "500.00"))
    market = placement.Market(
        {"o1": 10, "o2": 10},
        {},
        {"prv-o1": frozenset({"list-a"}), "prv-o2": frozenset({"list-a"})},
        used,
        used,
    )
    assert isinstance(
        placement.decide(quoted, placement.quoted_parts(quoted), market, PRICING),
        placement.Accepted,
    )
    assert used == {P: Decimal("0.00")}


@dataclass
class Admission:
    id: str
    reason: str | None
    expires_at: datetime = NOW + timedelta(minutes=5)
    request_status: str = "open"
    ordered_as: str | None = None
    start: datetime = NOW + timedelta(hours=1)


ADMISSIONS = [
    Admission("open", None),
    Admission("expired", "quote_expired", expires_at=NOW - timedelta(seconds=1)),
    Admission("expires-now", "quote_expired", expires_at=NOW),
    Admission("request-cancelled", "request_closed", request_status="cancelled"),
    Admission("request-fulfilled", "request_closed", request_status="fulfilled"),
    Admission("ordered", "quote_used", ordered_as="ord_1"),
    Admission("expired-before-closed", "quote_expired", expires_at=NOW, request_status="cancelled"),
    Admission("closed-before-used", "request_closed", request_status="cancelled", ordered_as="o"),
    Admission("window-started", "window_started", start=NOW - timedelta(seconds=1)),
    Admission("window-starts-now", None, start=NOW),
    Admission("used-before-window", "quote_used", ordered_as="o", start=NOW - timedelta(hours=1)),
]


@pytest.mark.parametrize("case", ADMISSIONS, ids=lambda c: c.id)
def test_admission(case: Admission) -> None:
    refused = placement.admission(
        quote_id="quo_1",
        expires_at=case.expires_at,
        ordered_as=case.ordered_as,
        request_id="req_1",
        request_status=case.request_status,
        start=case.start,
        now=NOW,
    )
    assert (refused.reason if refused is not None else None) == case.reason


def test_a_single_match_without_its_offer_is_refused_as_malformed() -> None:
    quoted = match(part("o1", 4, "400.00", "200.00")).model_copy(update={"offer_id": None})
    with pytest.raises(ValueError, match="names its offer"):
        placement.quoted_parts(quoted)
