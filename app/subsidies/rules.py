"""Compute-voucher (算力券) policy evaluation: pure, exact, explainable.

This module is the whole of the subsidy rules of ``shared/spec/policies.md``,
"How one order's subsidy is worked out", steps 1-6. It does no I/O: the caller
loads the programs, the facts about the enterprise, the provider and the
contract, and how much of each cap and budget is already used, and gets back
the one winning program (or none) with every program's reason.

Every decision, and the clause it comes from, is written down for auditors in
``docs/policies.md``.

Order of ``SubsidyResult.considered``: decision order. Eligible programs come
first, best first (largest amount, then the base that pays soonest, then the
smaller program id: exactly the order that picks the winner, so the winner, if
any, is ``considered[0]``); then the ineligible programs by program id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from app.core.money import FEN, ZERO, format_money, format_rate, round_down, round_half_up

# Tie-break order: the base that pays the enterprise soonest first.
BASES = ("contract_amount", "executed_amount", "settled_amount")
PURPOSES = ("training", "inference", "application", "maas", "agent")
VOUCHER_TYPES = ("compute", "model", "corpus", "innovation")
PROGRAM_STATUSES = ("active", "draft", "retired")
PROGRAM_LEVELS = ("national", "province", "city", "district")
PROVIDER_STATUSES = ("pending", "listed", "rejected", "suspended", "delisted")
CAPPED_BY = ("enterprise_cap", "program_budget")
CLAIMS_OPEN = ("on_settlement", "after_year_end")
ONE = Decimal("1.00")

_VOUCHER_NAMES = {
    "compute": "compute voucher (算力券)",
    "model": "model voucher (模型券)",
    "corpus": "corpus voucher (语料券)",
    "innovation": "innovation voucher (创新券)",
}
_BASE_NOTES = {
    "contract_amount": "on the contract amount",
    "executed_amount": "on the executed amount (estimated as the gross amount until settlement)",
    "settled_amount": "on the settled amount (estimated as the gross amount until settlement)",
}
_BASE_RANK = {base: i for i, base in enumerate(BASES)}
RATE_ZERO = Decimal("0")


# --------------------------------------------------------------------------- data


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{what}: must be a decimal string, not {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise ValueError(f"{what}: {value!r} is not a decimal number")
    if not result.is_finite():
        raise ValueError(f"{what}: must be finite")
    return result


def _money(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    amount = _decimal(value, what)
    if amount < 0:
        raise ValueError(f"{what}: must not be negative")
    return amount.quantize(FEN)


def _date(value: Any, what: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not a YYYY-MM-DD date") from None
    raise ValueError(f"{what}: {value!r} is not a date")


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{what}: must be a list of strings")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{what}: must be a list of strings")
    return items


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _optional_bool(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{what}: must be true, false or null")


def _ratio(value: Any) -> Decimal | None:
    if value is None:
        return None
    ratio = _decimal(value, "max_price_ratio")
    if ratio <= 0 or ratio != ratio.quantize(FEN):
        raise ValueError("max_price_ratio: must be above zero, with at most two decimals")
    return ratio


def _claims_close(value: Any) -> str | None:
    """ "MM-DD", a day every year has (02-29 is not one: a deadline must exist every year)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 5 or value[2] != "-":
        raise ValueError(f"claims_close: {value!r} is not a MM-DD day")
    try:
        date.fromisoformat(f"2001-{value}")
    except ValueError:
        raise ValueError(f"claims_close: {value!r} is not a day of every year") from None
    return value


def _funding(value: Any, program_id: str) -> tuple[tuple[str, Decimal], ...]:
    """[{payer, share}], shares positive with at most two decimals summing to 1.00;
    none given: the program pays it all."""
    if value is None or (isinstance(value, list | tuple) and not value):
        return ((program_id, ONE),)
    if not isinstance(value, list | tuple):
        raise ValueError("funding: must be a list of {payer, share}")
    shares: list[tuple[str, Decimal]] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"payer", "share"}:
            raise ValueError("funding: each item is {payer, share}")
        payer = item["payer"]
        if not isinstance(payer, str) or not payer:
            raise ValueError("funding payer: must be a non-empty string")
        share = _decimal(item["share"], "funding share")
        if share <= 0 or share > 1 or share != share.quantize(FEN):
            raise ValueError(f"funding share: {share} must be above 0, at most 1, two decimals")
        shares.append((payer, share.quantize(FEN)))
    if len({payer for payer, _ in shares}) != len(shares):
        raise ValueError("funding: a payer appears twice")
    total = sum((share for _, share in shares), ZERO)
    if total != ONE:
        raise ValueError(f"funding: shares sum to {total}, not 1.00")
    return tuple(shares)


def related(code_a: str, related_a: Iterable[str], code_b: str, related_b: Iterable[str]) -> bool:
    """Whether two parties are related (关联方, claims.md "Related parties"): their own
    codes are equal, either's code is in the other's list, or their lists share a code."""
    list_a, list_b = set(related_a), set(related_b)
    return code_a == code_b or code_a in list_b or code_b in list_a or bool(list_a & list_b)


def _purpose_order(purposes: Iterable[str]) -> list[str]:
    known = [p for p in PURPOSES if p in purposes]
    return known + sorted(p for p in purposes if p not in PURPOSES)


@dataclass(frozen=True)
class RateTier:
    """One rate and the conditions under which it applies (``None``: not tested)."""

    rate: Decimal
    domestic: bool | None = None
    purposes: frozenset[str] | None = None
    relies_on_filed_model: bool | None = None

    def holds(self, contract: Contract, enterprise: EnterpriseFacts) -> bool:
        if self.domestic is not None and contract.domestic != self.domestic:
            return False
        if self.purposes is not None and contract.purpose not in self.purposes:
            return False
        return not (
            self.relies_on_filed_model is not None
            and enterprise.relies_on_filed_model != self.relies_on_filed_model
        )

    def describe(self) -> str:
        """The tier's conditions in words, for reasons: "domestic hardware"."""
        parts: list[str] = []
        if self.purposes is not None:
            parts.append("purpose " + " or ".join(_purpose_order(self.purposes)))
        if self.relies_on_filed_model is True:
            parts.append("relying on a filed model")
        elif self.relies_on_filed_model is False:
            parts.append("not relying on a filed model")
        if self.domestic is True:
            parts.append("domestic hardware")
        elif self.domestic is False:
            parts.append("non-domestic hardware")
        return ", ".join(parts) if parts else "unconditional tier"

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RateTier:
        if not isinstance(data, Mapping):
            raise ValueError("rate tier: must be an object with rate and when")
        rate = _decimal(data.get("rate"), "rate")
        if not RATE_ZERO <= rate <= 1:
            raise ValueError(f"rate: {rate} is not between 0 and 1")
        when = data.get("when") or {}
        if not isinstance(when, Mapping):
            raise ValueError("rate tier when: must be an object")
        unknown = set(when) - {"domestic", "purposes", "relies_on_filed_model"}
        if unknown:
            raise ValueError(f"rate tier when: unknown condition(s) {', '.join(sorted(unknown))}")
        purposes_value = when.get("purposes")
        purposes = None
        if purposes_value is not None:
            purposes = frozenset(
                _choice(p, PURPOSES, "rate tier purpose")
                for p in _strings(purposes_value, "rate tier purposes")
            )
            if not purposes:
                raise ValueError("rate tier purposes: an empty list would never hold")
        return cls(
            rate=rate,
            domestic=_optional_bool(when.get("domestic"), "rate tier domestic"),
            purposes=purposes,
            relies_on_filed_model=_optional_bool(
                when.get("relies_on_filed_model"), "rate tier relies_on_filed_model"
            ),
        )

    def to_data(self) -> dict[str, Any]:
        when: dict[str, Any] = {}
        if self.domestic is not None:
            when["domestic"] = self.domestic
        if self.purposes is not None:
            when["purposes"] = _purpose_order(self.purposes)
        if self.relies_on_filed_model is not None:
            when["relies_on_filed_model"] = self.relies_on_filed_model
        return {"rate": format_rate(self.rate), "when": when}


@dataclass(frozen=True)
class Program:
    """A subsidy program as data (policies.md, "A program as data")."""

    id: str
    status: str
    voucher_type: str
    effective_from: date | None
    effective_until: date | None
    regions_include: tuple[str, ...]
    regions_exclude: tuple[str, ...]
    provider_lists_any: frozenset[str]
    purposes: frozenset[str]
    base: str
    rates: tuple[RateTier, ...]
    enterprise_annual_cap: Decimal | None
    cap_relaxable: bool
    annual_budget: Decimal | None
    # Claims (claims.md "Programs gain").
    claims_open: str = "on_settlement"
    claims_close: str | None = None
    excludes_related_parties: bool = False
    dual_review_above: Decimal | None = None
    funding: tuple[tuple[str, Decimal], ...] = ()
    # market.md: a contract priced above this × the price index's active-offer median
    # for its accelerator gets nothing from the program (None: no such limit).
    max_price_ratio: Decimal | None = None
    # Descriptive fields: carried so that a program round-trips, never used to decide.
    name: str = ""
    level: str = ""
    source_document: str = ""
    source_clause: str = ""

    @property
    def max_rate(self) -> Decimal:
        """The highest rate any tier can pay (0 when there are no tiers)."""
        return max((tier.rate for tier in self.rates), default=RATE_ZERO)

    def is_valid_on(self, day: date) -> bool:
        """Validity is inclusive at both ends; a program with no start date is never valid."""
        if self.effective_from is None or day < self.effective_from:
            return False
        return self.effective_until is None or day <= self.effective_until

    def validity_text(self) -> str:
        if self.effective_from is None:
            return "no validity set"
        until = self.effective_until.isoformat() if self.effective_until else "(no end date)"
        return f"valid {self.effective_from.isoformat()}..{until}"

    def region_matches(self, region_code: str) -> bool:
        return any(region_code.startswith(p) for p in self.regions_include) and not any(
            region_code.startswith(p) for p in self.regions_exclude
        )

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Program:
        """Build from the policies.md JSON format; strings or Decimals/dates both accepted.

        Raises ``ValueError`` with a readable message on anything malformed.
        """
        program_id = data.get("id")
        if not isinstance(program_id, str) or not program_id:
            raise ValueError("id: must be a non-empty string")
        regions = data.get("enterprise_regions") or {}
        if not isinstance(regions, Mapping):
            raise ValueError("enterprise_regions: must be an object with include and exclude")
        include = tuple(_strings(regions.get("include"), "enterprise_regions.include"))
        exclude = tuple(_strings(regions.get("exclude"), "enterprise_regions.exclude"))
        if not include:
            raise ValueError("enterprise_regions.include: must name at least one region")
        rates_data = data.get("rates")
        if not isinstance(rates_data, list | tuple) or not rates_data:
            raise ValueError("rates: must be a non-empty list")
        effective_from = _date(data.get("effective_from"), "effective_from")
        effective_until = _date(data.get("effective_until"), "effective_until")
        if effective_from and effective_until and effective_from > effective_until:
            raise ValueError("effective_from: must not be after effective_until")
        relaxable = data.get(
            "cap_relaxable_for_foundation_model_enterprises", data.get("cap_relaxable", False)
        )
        if not isinstance(relaxable, bool):
            raise ValueError("cap_relaxable_for_foundation_model_enterprises: must be a boolean")
        source = data.get("source") or {}
        if not isinstance(source, Mapping):
            raise ValueError("source: must be an object with document and clause")
        excludes = data.get("excludes_related_parties", False)
        if not isinstance(excludes, bool):
            raise ValueError("excludes_related_parties: must be a boolean")
        dual = _money(data.get("dual_review_above"), "dual_review_above")
        if dual is not None and dual <= 0:
            raise ValueError("dual_review_above: must be above zero (null: one approval)")
        funding = _funding(data.get("funding"), program_id)
        ratio = _ratio(data.get("max_price_ratio"))
        return cls(
            id=program_id,
            status=_choice(data.get("status"), PROGRAM_STATUSES, "status"),
            voucher_type=_choice(data.get("voucher_type"), VOUCHER_TYPES, "voucher_type"),
            effective_from=effective_from,
            effective_until=effective_until,
            regions_include=include,
            regions_exclude=exclude,
            provider_lists_any=frozenset(
                _strings(data.get("provider_lists_any"), "provider_lists_any")
            ),
            purposes=frozenset(
                _choice(p, PURPOSES, "purpose") for p in _strings(data.get("purposes"), "purposes")
            ),
            base=_choice(data.get("base"), BASES, "base"),
            rates=tuple(RateTier.from_data(tier) for tier in rates_data),
            enterprise_annual_cap=_money(
                data.get("enterprise_annual_cap"), "enterprise_annual_cap"
            ),
            cap_relaxable=relaxable,
            annual_budget=_money(data.get("annual_budget"), "annual_budget"),
            claims_open=_choice(
                data.get("claims_open") or "on_settlement", CLAIMS_OPEN, "claims_open"
            ),
            claims_close=_claims_close(data.get("claims_close")),
            excludes_related_parties=excludes,
            dual_review_above=dual,
            # The default (the program pays it all) is kept as no list at all.
            funding=() if funding == ((program_id, ONE),) else funding,
            max_price_ratio=ratio,
            name=str(data.get("name") or ""),
            level=str(data.get("level") or ""),
            source_document=str(source.get("document") or ""),
            source_clause=str(source.get("clause") or ""),
        )

    def to_data(self) -> dict[str, Any]:
        """The policies.md JSON format (sets come out in a fixed order)."""
        return {
            "id": self.id,
            "name": self.name,
            "voucher_type": self.voucher_type,
            "level": self.level,
            "status": self.status,
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
            "effective_until": self.effective_until.isoformat() if self.effective_until else None,
            "enterprise_regions": {
                "include": list(self.regions_include),
                "exclude": list(self.regions_exclude),
            },
            "provider_lists_any": sorted(self.provider_lists_any),
            "purposes": _purpose_order(self.purposes),
            "base": self.base,
            "rates": [tier.to_data() for tier in self.rates],
            "enterprise_annual_cap": _format_optional(self.enterprise_annual_cap),
            "cap_relaxable_for_foundation_model_enterprises": self.cap_relaxable,
            "annual_budget": _format_optional(self.annual_budget),
            "source": {"document": self.source_document, "clause": self.source_clause},
            "claims_open": self.claims_open,
            "claims_close": self.claims_close,
            "excludes_related_parties": self.excludes_related_parties,
            "dual_review_above": _format_optional(self.dual_review_above),
            "funding": [
                {"payer": payer, "share": format_money(share)} for payer, share in self.payers
            ],
            "max_price_ratio": _format_optional(self.max_price_ratio),
        }

    @property
    def payers(self) -> tuple[tuple[str, Decimal], ...]:
        """Who pays what share of a disbursement: the first pays any remainder."""
        return self.funding or ((self.id, ONE),)

    def claims_window(self, year: int) -> tuple[date, date | None]:
        """The first and last day (Asia/Shanghai) claims for `year` may be filed; the
        last is None without a deadline. on_settlement opens at once (the order's
        settlement is then the only gate); after_year_end on 1 January of year + 1."""
        opens = date(year + 1, 1, 1) if self.claims_open == "after_year_end" else date(year, 1, 1)
        closes = None
        if self.claims_close is not None:
            month, day = (int(x) for x in self.claims_close.split("-"))
            closes = date(year + 1, month, day)
        return opens, closes


def _format_optional(value: Decimal | None) -> str | None:
    return None if value is None else format_money(value)


@dataclass(frozen=True)
class EnterpriseFacts:
    region_code: str
    is_foundation_model_enterprise: bool = False
    # Whether this request relies on one of the enterprise's filed models (经备案).
    relies_on_filed_model: bool = False
    # program_id -> operator-granted cap (honoured only where the program allows relaxation).
    relaxed_caps: Mapping[str, Decimal] = field(default_factory=dict)
    # Unified social credit code and declared related parties (关联方): None when unknown
    # (a what-if quote that does not say), which no related-party rule can refuse.
    credit_code: str | None = None
    related_parties: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ProviderFacts:
    status: str
    lists: frozenset[str]  # the lists the provider is on at the contract date
    credit_code: str | None = None
    related_parties: frozenset[str] = frozenset()


def parties_related(enterprise: EnterpriseFacts, provider: ProviderFacts) -> bool:
    if enterprise.credit_code is None or provider.credit_code is None:
        return False
    return related(
        enterprise.credit_code,
        enterprise.related_parties,
        provider.credit_code,
        provider.related_parties,
    )


@dataclass(frozen=True)
class Contract:
    domestic: bool
    purpose: str
    gross_amount: Decimal
    contract_date: date
    # The price per card-hour agreed (the bid's, or the offer's list price) and the
    # price index's active-offer median for its accelerator when the contract is
    # priced: what a program's max_price_ratio compares (None: not known).
    price_per_card_hour: Decimal | None = None
    index_median: Decimal | None = None


@dataclass(frozen=True)
class Usage:
    # program_id -> subsidy already reserved + settled by THIS enterprise in the contract's year
    enterprise_used: Mapping[str, Decimal] = field(default_factory=dict)
    # program_id -> subsidy reserved + settled by ALL enterprises in the contract's year
    budget_used: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Consideration:
    program_id: str
    eligible: bool
    reason: str
    rate: Decimal | None
    raw_amount: Decimal
    amount: Decimal
    capped_by: str | None
    base: str


@dataclass(frozen=True)
class SubsidyResult:
    program_id: str | None
    rate: Decimal
    amount: Decimal
    base: str | None
    capped_by: str | None
    considered: tuple[Consideration, ...]


# --------------------------------------------------------------------------- rules


def _cap_decision(program: Program, enterprise: EnterpriseFacts) -> tuple[Decimal | None, str]:
    """The cap that applies and, when a grant was used or ignored, a note saying so."""
    cap = program.enterprise_annual_cap
    if program.id not in enterprise.relaxed_caps:
        return cap, ""
    grant = enterprise.relaxed_caps[program.id].quantize(FEN)
    if cap is None:
        return None, "cap relaxation grant not needed: the program has no enterprise cap"
    if not program.cap_relaxable:
        return cap, (
            f"cap relaxation grant {format_money(grant)} ignored: "
            "this program's cap is not relaxable"
        )
    if not enterprise.is_foundation_model_enterprise:
        return cap, (
            f"cap relaxation grant {format_money(grant)} ignored: "
            "the enterprise is not a foundation-model enterprise"
        )
    if grant < cap:
        return cap, (
            f"cap relaxation grant {format_money(grant)} ignored: "
            f"below the program cap {format_money(cap)} (a relaxation never lowers a cap)"
        )
    return grant, f"cap relaxed to {format_money(grant)} for this foundation-model enterprise"


def effective_cap(program: Program, enterprise: EnterpriseFacts) -> Decimal | None:
    """The enterprise's annual cap under ``program`` (``None``: no cap).

    An operator grant in ``relaxed_caps`` replaces the program cap only when the
    program allows relaxation for foundation-model enterprises, the enterprise is
    one, and the grant is at least the program cap.
    """
    return _cap_decision(program, enterprise)[0]


def _applicable(program: Program) -> bool:
    return program.status == "active" and program.voucher_type == "compute"


def max_rate(programs: Iterable[Program], on: date | None = None) -> Decimal:
    """The highest rate any active compute program can pay (valid on ``on`` when given).

    An upper bound for matching to prune with: no order can get a larger share of
    its gross amount than this.
    """
    return max(
        (p.max_rate for p in programs if _applicable(p) and (on is None or p.is_valid_on(on))),
        default=RATE_ZERO,
    )


# A split's effective rate is shown to four places (its parts' rates have two).
SPLIT_RATE_PLACES = Decimal("0.0001")


def split_rate(amount: Decimal, base: Decimal) -> Decimal:
    """A split's effective rate: its parts' subsidy `amount` over `base` (their gross,
    or the executed amount once settled), to four places; 0 on a zero base."""
    return (amount / base).quantize(SPLIT_RATE_PLACES) if base else ZERO


def split_capped_by(caps: Iterable[str | None]) -> str | None:
    """What capped a split: the first of its parts' caps (in part order)."""
    return next((cap for cap in caps if cap), None)


def settled_subsidy(reserved: Decimal, rate: Decimal, executed_amount: Decimal) -> Decimal:
    """The subsidy of a completed order: recomputed on the executed amount with the
    program and rate chosen when the order was placed, rounded down to the fen, and
    never above what was reserved (the cap and the budget were checked against the
    reservation). The same for every base, ``contract_amount`` included: a voucher
    never pays more than its rate of what was actually spent (policies.md,
    settlement; seed 001: 不超过算力合同费用的30%). What is not settled goes back to
    the cap and the budget (a ``release``).
    """
    if executed_amount < 0:
        raise ValueError("executed_amount must not be negative")
    return min(reserved.quantize(FEN), round_down(rate * executed_amount))


@dataclass(frozen=True)
class PartReservation:
    """One contract of an order as placed: its gross, the subsidy reserved, the rate."""

    gross_amount: Decimal
    reserved: Decimal
    rate: Decimal


@dataclass(frozen=True)
class PartSettlement:
    """A part at settlement: its share of the executed amount, the subsidy it settles
    and what goes back to the cap and the budget (``reserved − settled``)."""

    executed_amount: Decimal
    settled: Decimal
    released: Decimal


def settle(parts: Sequence[PartReservation], executed_amount: Decimal) -> list[PartSettlement]:
    """The settlement of an order of ``parts`` (one, or a split's) with ``executed_amount``.

    The executed amount is shared among the parts in proportion to their gross
    amounts (rounded half up to the fen, the last part taking the remainder, so the
    shares add up exactly); each part then settles ``settled_subsidy`` of its share.
    """
    if not parts:
        raise ValueError("an order has at least one part")
    total = sum((p.gross_amount for p in parts), ZERO)
    out: list[PartSettlement] = []
    remaining = executed_amount
    for index, part in enumerate(parts):
        if index == len(parts) - 1:
            share = remaining
        else:
            share = round_half_up(executed_amount * part.gross_amount / total) if total else ZERO
            remaining -= share
        settled = settled_subsidy(part.reserved, part.rate, share)
        out.append(PartSettlement(share, settled, part.reserved.quantize(FEN) - settled))
    return out


def _ineligible(program: Program, reason: str) -> Consideration:
    return Consideration(
        program_id=program.id,
        eligible=False,
        reason=reason,
        rate=None,
        raw_amount=ZERO,
        amount=ZERO,
        capped_by=None,
        base=program.base,
    )


def _eligibility_failures(
    program: Program,
    enterprise: EnterpriseFacts,
    provider: ProviderFacts,
    contract: Contract,
) -> list[str]:
    # Steps 1 and 2: each failed condition, in the order of policies.md.
    failures: list[str] = []
    if not program.is_valid_on(contract.contract_date):
        failures.append(
            f"not valid on {contract.contract_date.isoformat()} ({program.validity_text()})"
        )
    region = enterprise.region_code
    if not any(region.startswith(p) for p in program.regions_include):
        failures.append(
            f"enterprise region {region} is outside {', '.join(program.regions_include)}"
        )
    else:
        excluded = [p for p in program.regions_exclude if region.startswith(p)]
        if excluded:
            failures.append(f"enterprise region {region} is excluded ({', '.join(excluded)})")
    if provider.status != "listed":
        failures.append(f"provider is {provider.status}, not listed")
    if program.provider_lists_any and not (program.provider_lists_any & provider.lists):
        failures.append(
            "provider is not on any of: " + ", ".join(sorted(program.provider_lists_any))
        )
    if contract.purpose not in program.purposes:
        covered = ", ".join(_purpose_order(program.purposes)) or "none"
        failures.append(f"purpose {contract.purpose} is not covered (covers: {covered})")
    if program.excludes_related_parties and parties_related(enterprise, provider):
        failures.append("enterprise and provider are related parties (关联方), excluded")
    above = price_above_index(program, contract)
    if above:
        failures.append(above)
    return failures


def price_above_index(program: Program, contract: Contract) -> str | None:
    """Why the contract's price is too high for the program (market.md, "The price
    index"), or None when the program sets no max_price_ratio or the price is within it.

    A price the caller does not know fails: a program that limits prices never pays on
    a price nobody checked. An accelerator with no active offer of a listed provider
    has no median and so no limit to break."""
    ratio = program.max_price_ratio
    if ratio is None:
        return None
    price = contract.price_per_card_hour
    if price is None:
        return (
            "price per card-hour not stated: the program pays only up to "
            f"{format_money(ratio)} × the index median"
        )
    median = contract.index_median
    if median is None or price <= ratio * median:
        return None
    return (
        f"price {format_money(price)} is above {format_money(ratio)} × "
        f"the index median {format_money(median)}"
    )


def _consider(
    program: Program,
    enterprise: EnterpriseFacts,
    provider: ProviderFacts,
    contract: Contract,
    usage: Usage,
) -> Consideration:
    if program.voucher_type != "compute":
        name = _VOUCHER_NAMES.get(program.voucher_type, program.voucher_type)
        return _ineligible(program, f"{name}: only compute vouchers subsidise a compute contract")
    if program.status == "draft":
        return _ineligible(program, "draft: never applied until activated")
    if program.status != "active":
        return _ineligible(program, f"{program.status}: no longer applied")

    failures = _eligibility_failures(program, enterprise, provider, contract)
    if failures:
        return _ineligible(program, "; ".join(failures))

    # Step 3: the highest tier whose conditions hold (the first such tier on equal rates).
    tier: RateTier | None = None
    for candidate in program.rates:
        if candidate.holds(contract, enterprise) and (tier is None or candidate.rate > tier.rate):
            tier = candidate
    if tier is None:
        facts = [
            "domestic hardware" if contract.domestic else "non-domestic hardware",
            f"purpose {contract.purpose}",
            "relying on a filed model"
            if enterprise.relies_on_filed_model
            else "not relying on a filed model",
        ]
        return _ineligible(program, f"no rate tier applies ({', '.join(facts)})")

    # Step 4: rate x base rounded down to the fen, then cap, then budget.
    raw = round_down(tier.rate * contract.gross_amount)
    amount = raw
    capped_by: str | None = None
    notes = [
        f"rate {format_rate(tier.rate)} ({tier.describe()}); {format_rate(tier.rate)} × "
        f"{format_money(contract.gross_amount)} = {format_money(raw)} rounded down to the fen, "
        f"{_BASE_NOTES[program.base]}"
    ]
    cap, cap_note = _cap_decision(program, enterprise)
    if cap_note:
        notes.append(cap_note)
    if cap is not None:
        used = usage.enterprise_used.get(program.id, ZERO)
        left = max(ZERO, (cap - used).quantize(FEN))
        if amount > left:
            amount = left
            capped_by = "enterprise_cap"
            notes.append(
                f"capped by enterprise cap: {format_money(left)} left of {format_money(cap)}"
            )
    if program.annual_budget is not None:
        spent = usage.budget_used.get(program.id, ZERO)
        left = max(ZERO, (program.annual_budget - spent).quantize(FEN))
        if amount > left:
            amount = left
            capped_by = "program_budget"
            notes.append(
                f"capped by program budget: {format_money(left)} left of "
                f"{format_money(program.annual_budget)}"
            )
    if amount == ZERO:
        notes.append("nothing to pay")
    return Consideration(
        program_id=program.id,
        eligible=True,
        reason="; ".join(notes),
        rate=tier.rate,
        raw_amount=raw,
        amount=amount.quantize(FEN),
        capped_by=capped_by,
        base=program.base,
    )


def _decision_key(c: Consideration) -> tuple[int, Decimal, int, str]:
    # Eligible first; then largest amount; then the base that pays soonest; then smaller id.
    return (
        0 if c.eligible else 1,
        -c.amount if c.eligible else ZERO,
        _BASE_RANK.get(c.base, len(BASES)) if c.eligible else 0,
        c.program_id,
    )


def evaluate(
    programs: Iterable[Program],
    enterprise: EnterpriseFacts,
    provider: ProviderFacts,
    contract: Contract,
    usage: Usage,
) -> SubsidyResult:
    """Steps 1-6 of policies.md: the one best program for one contract, and why.

    ``contract.contract_date`` is the Asia/Shanghai day the order is placed;
    ``usage`` holds the reserved + settled subsidy of that day's calendar year.
    Every program appears in ``considered``, in decision order (see module doc).
    """
    considered = tuple(
        sorted(
            (_consider(p, enterprise, provider, contract, usage) for p in programs),
            key=_decision_key,
        )
    )
    best = considered[0] if considered else None
    if best is None or not best.eligible or best.amount <= ZERO or best.rate is None:
        return SubsidyResult(
            program_id=None,
            rate=RATE_ZERO,
            amount=ZERO,
            base=None,
            capped_by=None,
            considered=considered,
        )
    return SubsidyResult(
        program_id=best.program_id,
        rate=best.rate,
        amount=best.amount,
        base=best.base,
        capped_by=best.capped_by,
        considered=considered,
    )
