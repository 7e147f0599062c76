"""Table-driven tests of the subsidy rules (shared/spec/policies.md, steps 1-6).

Every case's id names the clause it comes from (ids are ASCII so pytest shows them as is):
  hz-iii        seed 001 (三)扩容“算力券”发放; -effective/-until: 本措施自2024年8月19日起施行,
                有效期至2027年12月31日                   -> hz-city-compute-2024
  zj-15         seed 002 (15) computing vouchers, and its closing paragraph (May 31, 2025 ...
                December 31, 2027)                         -> zj-province-compute-2025
  bj-vi         seed 004 (六)降低算力使用成本; bj-annex-ii: 五、附则(二) 自2025年6月10日起施行,
                有效期为三年                               -> binjiang-compute-2025
  aicc-2.3      seed 003 (2)3 强化算力供给 (draft)          -> binjiang-hzaicc-2024-draft
  8m, 20m, 1m   the caps 800万元, 2000万元, 100万元; 250m, 100m: the budgets 2.5亿元, 1亿元
  step-N     policies.md "How one order's subsidy is worked out", step N
  ex-N       policies.md "Worked examples", row N
  doc        a decision written down in docs/policies.md where the documents are silent
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from app.subsidies.rules import (
    BASES,
    PROGRAM_STATUSES,
    PURPOSES,
    VOUCHER_TYPES,
    Contract,
    EnterpriseFacts,
    PartReservation,
    Program,
    ProviderFacts,
    Usage,
    effective_cap,
    evaluate,
    max_rate,
    settle,
    settled_subsidy,
)
from app.subsidies.schemas import (
    ProgramBase,
    ProgramCreate,
    ProgramStatus,
    ProgramUpdate,
    Purpose,
    SubsidyQuoteRequest,
    VoucherType,
    quote_response,
)
from migrations.seed.programs import PROGRAMS

HZ = "hz-city-compute-2024"
ZJ = "zj-province-compute-2025"
BJ = "binjiang-compute-2025"
AICC = "binjiang-hzaicc-2024-draft"

HZ_ICC = "hz-planned-icc"
HZ_PARTNER = "hz-matchmaking-partner"
BJ_PARTNER = "binjiang-compute-partner"
AICC_LIST = "hz-ai-computing-center"

BINJIANG = "330108"
XIHU = "330106"  # Hangzhou, not Binjiang
NINGBO = "330212"  # Zhejiang, not Hangzhou
SHANGHAI = "310115"
NANJING = "320102"

DAY = date(2026, 3, 1)  # the worked examples' contract date


def seed(program_id: str) -> dict[str, Any]:
    return copy.deepcopy(next(p for p in PROGRAMS if p["id"] == program_id))


def variant(program_id: str, **changes: Any) -> dict[str, Any]:
    data = seed(program_id)
    data.update(changes)
    return data


def D(value: str) -> Decimal:
    return Decimal(value)


@dataclass
class Case:
    # inputs
    region: str = BINJIANG
    lists: tuple[str, ...] = ()
    provider_status: str = "listed"
    domestic: bool = True
    purpose: str = "training"
    gross: str = "10000.00"
    on: date = DAY
    foundation: bool = False
    relies: bool = False
    relaxed: dict[str, str] = field(default_factory=dict)
    used: dict[str, str] = field(default_factory=dict)
    budget_used: dict[str, str] = field(default_factory=dict)
    programs: list[dict[str, Any]] | None = None  # None: the four seed programs
    # expectations
    program: str | None = None
    rate: str = "0"
    amount: str = "0.00"
    capped_by: str | None = None
    reasons: dict[str, str] = field(default_factory=dict)  # program id -> reason substring
    considered_capped: dict[str, str] = field(default_factory=dict)  # id -> capped_by


def run(case: Case) -> Any:
    programs = [
        Program.from_data(p) for p in (PROGRAMS if case.programs is None else case.programs)
    ]
    return evaluate(
        programs,
        EnterpriseFacts(
            region_code=case.region,
            is_foundation_model_enterprise=case.foundation,
            relies_on_filed_model=case.relies,
            relaxed_caps={k: D(v) for k, v in case.relaxed.items()},
        ),
        ProviderFacts(status=case.provider_status, lists=frozenset(case.lists)),
        Contract(
            domestic=case.domestic,
            purpose=case.purpose,
            gross_amount=D(case.gross),
            contract_date=case.on,
        ),
        Usage(
            enterprise_used={k: D(v) for k, v in case.used.items()},
            budget_used={k: D(v) for k, v in case.budget_used.items()},
        ),
    )


HZ_LISTS = (HZ_ICC,)
BOTH_BJ_HZ = (BJ_PARTNER, HZ_PARTNER)

CASES = [
    # ------------------------------------------------------------ worked examples (exact)
    pytest.param(
        Case(
            lists=BOTH_BJ_HZ,
            domestic=True,
            gross="552960.00",
            program=BJ,
            rate="0.60",
            amount="331776.00",
        ),
        id="ex-1-binjiang-60pct-domestic",
    ),
    pytest.param(
        Case(
            lists=BOTH_BJ_HZ,
            domestic=False,
            gross="1382400.00",
            program=BJ,
            rate="0.30",
            amount="414720.00",
        ),
        id="ex-2-binjiang-30pct-non-domestic",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=False,
            purpose="maas",
            relies=True,
            gross="7600.00",
            program=HZ,
            rate="0.30",
            amount="2280.00",
        ),
        id="ex-3-hz-30pct-maas-on-filed-model",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=False,
            purpose="training",
            gross="7600.00",
            program=HZ,
            rate="0.20",
            amount="1520.00",
        ),
        id="ex-4-hz-20pct-other-hardware",
    ),
    pytest.param(
        Case(
            region=SHANGHAI,
            lists=HZ_LISTS,
            domestic=True,
            gross="10000.00",
            reasons={
                HZ: "enterprise region 310115 is outside 3301",
                ZJ: "enterprise region 310115 is outside 33",
                BJ: "enterprise region 310115 is outside 330108",
                AICC: "draft: never applied until activated",
            },
        ),
        id="ex-5-shanghai-none",
    ),
    # ------------------------------------------------------------ hz-city rate tiers
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=False,
            purpose="agent",
            relies=True,
            program=HZ,
            rate="0.30",
            amount="3000.00",
            reasons={HZ: "purpose maas or agent, relying on a filed model"},
        ),
        id="hz-iii-30pct-agent-on-filed-model",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=False,
            purpose="maas",
            relies=False,
            program=HZ,
            rate="0.20",
            amount="2000.00",
        ),
        id="hz-iii-maas-without-filed-model-is-20pct",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=False,
            purpose="application",
            relies=True,
            program=HZ,
            rate="0.20",
            amount="2000.00",
        ),
        id="hz-iii-filed-model-but-not-maas-or-agent-is-20pct",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=(HZ_PARTNER,),
            domestic=True,
            purpose="training",
            program=HZ,
            rate="0.30",
            amount="3000.00",
            reasons={HZ: "rate 0.30 (domestic hardware)"},
        ),
        id="hz-iii-30pct-domestic-training",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=True,
            purpose="inference",
            program=HZ,
            rate="0.30",
            amount="3000.00",
        ),
        id="hz-iii-30pct-domestic-inference",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=True,
            purpose="maas",
            relies=True,
            program=HZ,
            rate="0.30",
            amount="3000.00",
        ),
        id="hz-iii-overall-ceiling-30pct-when-two-tiers-hold",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            domestic=False,
            purpose="inference",
            program=HZ,
            rate="0.20",
            amount="2000.00",
            reasons={HZ: "rate 0.20 (unconditional tier)"},
        ),
        id="hz-iii-20pct-other-hardware-inference",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=("some-other-list",),
            reasons={HZ: "provider is not on any of: hz-matchmaking-partner, hz-planned-icc"},
        ),
        id="hz-iii-provider-not-on-hz-lists",
    ),
    # ------------------------------------------------------------ zj-province rate tiers
    pytest.param(
        Case(
            region=NINGBO,
            domestic=True,
            program=ZJ,
            rate="0.30",
            amount="3000.00",
            reasons={ZJ: "executed amount (estimated as the gross amount"},
        ),
        id="zj-15-30pct-autonomous-any-listed-provider",
    ),
    pytest.param(
        Case(region=NINGBO, domestic=False, program=ZJ, rate="0.10", amount="1000.00"),
        id="zj-15-10pct-non-autonomous",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=(),
            domestic=True,
            reasons={
                ZJ: "enterprise region 330106 is excluded (3301)",
                HZ: "provider is not on any of",
            },
        ),
        id="zj-15-doc-hangzhou-excluded-from-province-framework",
    ),
    pytest.param(
        Case(region=NANJING, domestic=True, reasons={ZJ: "enterprise region 320102 is outside 33"}),
        id="zj-15-jiangsu-enterprise-outside-zhejiang",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            domestic=False,
            programs=[variant(ZJ, rates=[{"rate": "0.30", "when": {"domestic": True}}])],
            reasons={ZJ: "no rate tier applies (non-domestic hardware"},
        ),
        id="step-3-no-tier-holds-is-ineligible",
    ),
    # ------------------------------------------------------------ binjiang
    pytest.param(
        Case(
            lists=(HZ_PARTNER,),
            domestic=True,
            program=HZ,
            rate="0.30",
            amount="3000.00",
            reasons={BJ: "provider is not on any of: binjiang-compute-partner"},
        ),
        id="bj-vi-provider-not-a-binjiang-partner-falls-to-hz",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=BOTH_BJ_HZ,
            domestic=True,
            program=HZ,
            rate="0.30",
            amount="3000.00",
            reasons={BJ: "enterprise region 330106 is outside 330108"},
        ),
        id="bj-vi-xihu-enterprise-not-in-binjiang",
    ),
    # ------------------------------------------------------------ validity, both ends
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            on=date(2024, 8, 18),
            reasons={HZ: "not valid on 2024-08-18 (valid 2024-08-19..2027-12-31)"},
        ),
        id="hz-iii-effective-day-before-2024-08-18",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            on=date(2024, 8, 19),
            program=HZ,
            rate="0.30",
            amount="3000.00",
        ),
        id="hz-iii-effective-first-day-2024-08-19",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            on=date(2027, 12, 31),
            program=HZ,
            rate="0.30",
            amount="3000.00",
        ),
        id="hz-iii-until-last-day-2027-12-31",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            on=date(2028, 1, 1),
            reasons={HZ: "not valid on 2028-01-01 (valid 2024-08-19..2027-12-31)"},
        ),
        id="hz-iii-until-day-after-2028-01-01",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            on=date(2025, 5, 30),
            reasons={ZJ: "not valid on 2025-05-30 (valid 2025-05-31..2027-12-31)"},
        ),
        id="zj-15-day-before-2025-05-30",
    ),
    pytest.param(
        Case(region=NINGBO, on=date(2025, 5, 31), program=ZJ, rate="0.30", amount="3000.00"),
        id="zj-15-first-day-2025-05-31",
    ),
    pytest.param(
        Case(region=NINGBO, on=date(2027, 12, 31), program=ZJ, rate="0.30", amount="3000.00"),
        id="zj-15-last-day-2027-12-31",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            on=date(2028, 1, 1),
            reasons={ZJ: "not valid on 2028-01-01 (valid 2025-05-31..2027-12-31)"},
        ),
        id="zj-15-day-after-2028-01-01",
    ),
    pytest.param(
        Case(
            lists=(BJ_PARTNER,),
            on=date(2025, 6, 9),
            reasons={BJ: "not valid on 2025-06-09 (valid 2025-06-10..2028-06-09)"},
        ),
        id="bj-annex-ii-day-before-2025-06-09",
    ),
    pytest.param(
        Case(lists=(BJ_PARTNER,), on=date(2025, 6, 10), program=BJ, rate="0.60", amount="6000.00"),
        id="bj-annex-ii-first-day-2025-06-10",
    ),
    pytest.param(
        Case(lists=(BJ_PARTNER,), on=date(2028, 6, 9), program=BJ, rate="0.60", amount="6000.00"),
        id="bj-annex-ii-last-day-of-three-years-2028-06-09",
    ),
    pytest.param(
        Case(lists=(BJ_PARTNER,), on=date(2028, 6, 10), reasons={BJ: "not valid on 2028-06-10"}),
        id="bj-annex-ii-day-after-2028-06-10",
    ),
    # ------------------------------------------------------------ enterprise caps (step 4)
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            used={HZ: "7990000.00"},
            program=HZ,
            rate="0.30",
            amount="10000.00",
            capped_by="enterprise_cap",
            reasons={HZ: "capped by enterprise cap: 10000.00 left of 8000000.00"},
        ),
        id="hz-iii-8m-cap-partly-used",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            used={HZ: "8000000.00"},
            considered_capped={HZ: "enterprise_cap"},
            reasons={HZ: "capped by enterprise cap: 0.00 left of 8000000.00"},
        ),
        id="hz-iii-8m-cap-reached-gives-nothing",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            used={HZ: "8500000.00"},
            considered_capped={HZ: "enterprise_cap"},
        ),
        id="hz-iii-doc-cap-overrun-never-negative",
    ),
    pytest.param(
        Case(
            lists=BOTH_BJ_HZ,
            gross="552960.00",
            used={BJ: "20000000.00"},
            program=HZ,
            rate="0.30",
            amount="165888.00",
            considered_capped={BJ: "enterprise_cap"},
        ),
        id="bj-vi-20m-cap-reached-hz-pays-instead",
    ),
    pytest.param(
        Case(
            lists=BOTH_BJ_HZ,
            gross="552960.00",
            used={BJ: "19900000.00"},
            program=HZ,
            rate="0.30",
            amount="165888.00",
            considered_capped={BJ: "enterprise_cap"},
            reasons={BJ: "capped by enterprise cap: 100000.00 left of 20000000.00"},
        ),
        id="step-5-capped-binjiang-loses-to-uncapped-hz",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            domestic=True,
            used={ZJ: "7999000.00"},
            program=ZJ,
            rate="0.30",
            amount="1000.00",
            capped_by="enterprise_cap",
        ),
        id="zj-15-doc-8m-cap-also-applies-to-30pct",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            domestic=False,
            used={ZJ: "7999500.00"},
            program=ZJ,
            rate="0.10",
            amount="500.00",
            capped_by="enterprise_cap",
        ),
        id="zj-15-8m-cap-on-10pct",
    ),
    # ------------------------------------------------------------ budgets (step 4)
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            budget_used={HZ: "250000000.00"},
            considered_capped={HZ: "program_budget"},
            reasons={HZ: "capped by program budget: 0.00 left of 250000000.00"},
        ),
        id="hz-iii-250m-budget-reached",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            budget_used={HZ: "249999000.00"},
            program=HZ,
            rate="0.30",
            amount="1000.00",
            capped_by="program_budget",
        ),
        id="hz-iii-250m-budget-partly-left",
    ),
    pytest.param(
        Case(
            lists=BOTH_BJ_HZ,
            gross="552960.00",
            budget_used={BJ: "100000000.00"},
            program=HZ,
            rate="0.30",
            amount="165888.00",
            considered_capped={BJ: "program_budget"},
        ),
        id="bj-vi-100m-budget-reached-hz-pays-instead",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            used={HZ: "7995000.00"},
            budget_used={HZ: "249999000.00"},
            program=HZ,
            rate="0.30",
            amount="1000.00",
            capped_by="program_budget",
            reasons={
                HZ: "capped by enterprise cap: 5000.00 left of 8000000.00; "
                "capped by program budget: 1000.00 left of 250000000.00"
            },
        ),
        id="step-4-cap-then-budget",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            budget_used={ZJ: "999999999999.00"},
            program=ZJ,
            rate="0.30",
            amount="3000.00",
        ),
        id="zj-15-no-budget-stated-is-unlimited",
    ),
    # ------------------------------------------------------------ relaxed caps
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            foundation=True,
            relaxed={HZ: "20000000.00"},
            used={HZ: "8000000.00"},
            program=HZ,
            rate="0.30",
            amount="30000.00",
            reasons={HZ: "cap relaxed to 20000000.00 for this foundation-model enterprise"},
        ),
        id="hz-iii-relaxable-foundation-enterprise-with-grant",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            foundation=True,
            relaxed={HZ: "8010000.00"},
            used={HZ: "8000000.00"},
            program=HZ,
            rate="0.30",
            amount="10000.00",
            capped_by="enterprise_cap",
            reasons={HZ: "10000.00 left of 8010000.00"},
        ),
        id="hz-iii-relaxable-relaxed-cap-still-caps",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            foundation=True,
            used={HZ: "8000000.00"},
            considered_capped={HZ: "enterprise_cap"},
        ),
        id="hz-iii-relaxable-no-relaxation-without-grant",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            foundation=False,
            relaxed={HZ: "20000000.00"},
            used={HZ: "8000000.00"},
            considered_capped={HZ: "enterprise_cap"},
            reasons={HZ: "ignored: the enterprise is not a foundation-model enterprise"},
        ),
        id="hz-iii-relaxable-grant-ignored-for-non-foundation-enterprise",
    ),
    pytest.param(
        Case(
            lists=(BJ_PARTNER,),
            foundation=True,
            relaxed={BJ: "30000000.00"},
            used={BJ: "20000000.00"},
            considered_capped={BJ: "enterprise_cap"},
            reasons={BJ: "ignored: this program's cap is not relaxable"},
        ),
        id="bj-vi-cap-not-relaxable-grant-ignored",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            gross="100000.00",
            foundation=True,
            relaxed={HZ: "1000.00"},
            program=HZ,
            rate="0.30",
            amount="30000.00",
            reasons={HZ: "a relaxation never lowers a cap"},
        ),
        id="hz-iii-doc-grant-below-cap-never-lowers-it",
    ),
    # ------------------------------------------------------------ providers (step 2)
    *[
        pytest.param(
            Case(
                region=XIHU,
                lists=HZ_LISTS,
                provider_status=status,
                reasons={HZ: f"provider is {status}, not listed"},
            ),
            id=f"step-2-provider-{status}-never-subsidised",
        )
        for status in ("pending", "suspended", "rejected", "delisted")
    ],
    pytest.param(
        Case(
            region=NINGBO,
            provider_status="suspended",
            reasons={ZJ: "provider is suspended, not listed"},
        ),
        id="zj-15-any-list-still-needs-a-listed-provider",
    ),
    # ------------------------------------------------------------ the draft
    pytest.param(
        Case(lists=(AICC_LIST,), reasons={AICC: "draft: never applied until activated"}),
        id="aicc-2.3-draft-never-applies",
    ),
    pytest.param(
        Case(
            lists=(AICC_LIST,),
            programs=[variant(AICC, status="active")],
            reasons={AICC: "not valid on 2026-03-01 (no validity set)"},
        ),
        id="aicc-2.3-activated-without-validity-never-valid",
    ),
    pytest.param(
        Case(
            lists=(AICC_LIST,),
            programs=[
                seed(HZ),
                seed(ZJ),
                seed(BJ),
                variant(
                    AICC, status="active", effective_from="2026-01-01", effective_until="2026-12-31"
                ),
            ],
            program=AICC,
            rate="0.50",
            amount="5000.00",
        ),
        id="aicc-2.3-activated-with-validity-pays-50pct",
    ),
    pytest.param(
        Case(
            lists=(AICC_LIST,),
            gross="100000.00",
            used={AICC: "990000.00"},
            programs=[variant(AICC, status="active", effective_from="2026-01-01")],
            program=AICC,
            rate="0.50",
            amount="10000.00",
            capped_by="enterprise_cap",
            reasons={AICC: "10000.00 left of 1000000.00"},
        ),
        id="aicc-2.3-activated-1m-cap",
    ),
    pytest.param(
        Case(
            lists=(BJ_PARTNER,),
            programs=[variant(BJ, status="retired")],
            reasons={BJ: "retired: no longer applied"},
        ),
        id="doc-retired-program-never-applies",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            programs=[variant(HZ, id="hz-model-voucher", voucher_type="model")],
            reasons={"hz-model-voucher": "model voucher (模型券): only compute vouchers"},
        ),
        id="doc-model-voucher-never-pays-a-compute-contract",
    ),
    pytest.param(
        Case(
            region=XIHU,
            lists=HZ_LISTS,
            purpose="inference",
            programs=[variant(HZ, purposes=["training"])],
            reasons={HZ: "purpose inference is not covered (covers: training)"},
        ),
        id="step-2-purpose-not-covered",
    ),
    # ------------------------------------------------------------ ties (step 5)
    pytest.param(
        Case(
            lists=BOTH_BJ_HZ,
            domestic=False,
            purpose="maas",
            relies=True,
            program=HZ,
            rate="0.30",
            amount="3000.00",
        ),
        id="step-5-tie-contract-amount-beats-settled-amount",
    ),
    pytest.param(
        Case(
            lists=(BJ_PARTNER,),
            programs=[seed(BJ), variant(BJ, id="zz-binjiang-executed", base="executed_amount")],
            program="zz-binjiang-executed",
            rate="0.60",
            amount="6000.00",
        ),
        id="step-5-tie-executed-beats-settled-before-id",
    ),
    pytest.param(
        Case(
            lists=(BJ_PARTNER,),
            programs=[variant(BJ, id="bj-b-copy"), variant(BJ, id="bj-a-copy")],
            program="bj-a-copy",
            rate="0.60",
            amount="6000.00",
        ),
        id="step-5-tie-same-base-smaller-id",
    ),
    # ------------------------------------------------------------ rounding (step 4)
    pytest.param(
        Case(
            region=XIHU, lists=HZ_LISTS, gross="33333.33", program=HZ, rate="0.30", amount="9999.99"
        ),
        id="step-4-round-down-30pct-of-33333.33-is-9999.99",
    ),
    pytest.param(
        Case(
            region=NINGBO,
            domestic=False,
            gross="12345.67",
            program=ZJ,
            rate="0.10",
            amount="1234.56",
        ),
        id="step-4-round-down-10pct-of-12345.67",
    ),
    pytest.param(
        Case(lists=(BJ_PARTNER,), gross="0.01", reasons={BJ: "nothing to pay"}),
        id="step-4-round-down-to-zero-means-no-program",
    ),
    pytest.param(
        Case(lists=(BJ_PARTNER,), gross="0.00"),
        id="step-5-zero-gross-no-program",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_rules(case: Case) -> None:
    result = run(case)
    assert result.program_id == case.program
    assert result.rate == D(case.rate)
    assert result.amount == D(case.amount)
    assert str(result.amount) == case.amount  # quantized to the fen
    assert result.capped_by == case.capped_by
    by_id = {c.program_id: c for c in result.considered}
    # every program appears, once
    expected_ids = {p["id"] for p in (PROGRAMS if case.programs is None else case.programs)}
    assert set(by_id) == expected_ids
    assert len(result.considered) == len(expected_ids)
    for program_id, text in case.reasons.items():
        assert text in by_id[program_id].reason, by_id[program_id].reason
    for program_id, capped in case.considered_capped.items():
        assert by_id[program_id].eligible
        assert by_id[program_id].capped_by == capped
    if case.program is None:
        assert result.base is None
        assert all(c.amount == 0 for c in result.considered)
    else:
        winner = result.considered[0]
        assert winner.program_id == case.program
        assert result.base == winner.base
        # 从优、从高: nobody else would have paid more
        assert all(c.amount <= result.amount for c in result.considered)
    for c in result.considered:
        if not c.eligible:
            assert (c.rate, c.amount, c.raw_amount, c.capped_by) == (None, 0, 0, None)
            assert c.reason


def test_case_count() -> None:
    assert len(CASES) >= 45


# --------------------------------------------------------------------------- orders and shape


def test_considered_is_in_decision_order() -> None:
    result = run(Case(lists=BOTH_BJ_HZ, gross="552960.00"))
    assert [c.program_id for c in result.considered] == [BJ, HZ, AICC, ZJ]
    assert [c.eligible for c in result.considered] == [True, True, False, False]


def test_no_programs_at_all() -> None:
    result = run(Case(programs=[]))
    assert (result.program_id, result.amount, result.considered) == (None, D("0.00"), ())


def test_ineligible_reasons_list_every_failed_condition() -> None:
    result = run(Case(region=SHANGHAI, lists=(), provider_status="pending", on=date(2024, 1, 1)))
    reason = {c.program_id: c.reason for c in result.considered}[HZ]
    assert "not valid on 2024-01-01" in reason
    assert "outside 3301" in reason
    assert "provider is pending" in reason
    assert "provider is not on any of" in reason


def test_raw_amount_is_kept_when_capped() -> None:
    result = run(Case(region=XIHU, lists=HZ_LISTS, gross="100000.00", used={HZ: "7990000.00"}))
    hz = result.considered[0]
    assert (hz.raw_amount, hz.amount) == (D("30000.00"), D("10000.00"))


def test_max_rate() -> None:
    programs = [Program.from_data(p) for p in PROGRAMS]
    assert max_rate(programs) == D("0.60")
    assert max_rate(programs, on=date(2025, 6, 9)) == D("0.30")
    assert max_rate(programs, on=date(2024, 1, 1)) == D("0")
    # the draft (50%) never counts until activated
    assert max_rate([Program.from_data(seed(AICC))]) == D("0")
    assert Program.from_data(seed(AICC)).max_rate == D("0.50")
    assert max_rate([]) == D("0")


@pytest.mark.parametrize(
    ("reserved", "rate", "executed", "settled"),
    [
        ("331776.00", "0.60", "552960.00", "331776.00"),  # executed as contracted
        ("331776.00", "0.60", "500000.00", "300000.00"),  # executed less: subsidy falls
        ("331776.00", "0.60", "600000.00", "331776.00"),  # executed more: never rises
        ("10000.00", "0.30", "100000.00", "10000.00"),  # capped at placement: stays capped
        ("9999.99", "0.30", "33333.33", "9999.99"),  # rounds down again
        ("100.00", "0.30", "0.00", "0.00"),  # nothing executed
    ],
    ids=["same", "falls", "never-rises", "capped-stays-capped", "round-down", "zero"],
)
def test_settlement_never_raises_the_subsidy(
    reserved: str, rate: str, executed: str, settled: str
) -> None:
    assert settled_subsidy(D(reserved), D(rate), D(executed)) == D(settled)


@dataclass
class SettleCase:
    """An order's parts as placed (gross, reserved, rate), what was executed, and per
    part the executed share, the settled subsidy and what goes back to cap and budget."""

    parts: list[tuple[str, str, str]]
    executed: str
    expected: list[tuple[str, str, str]]


# policies.md, "Base and amount" and 10: at settlement, for every base alike, the subsidy
# is the rate × the executed amount rounded down to the fen, never above the reservation;
# the rest is released.
SETTLEMENTS = [
    pytest.param(
        # seed 001 (三): “算力券”按不超过算力合同费用的30%: a contract_amount program pays
        # 30% of what was spent, not the reservation (100,000.00 contracted, 30,000.00 spent).
        SettleCase(
            [("100000.00", "30000.00", "0.30")], "30000.00", [("30000.00", "9000.00", "21000.00")]
        ),
        id="hz-iii-contract-amount-settles-30pct-of-executed",
    ),
    pytest.param(
        # seed 001 (三) 单家企业每年“算力券”申领不超过800万元: capped at placement
        # (reserved below 30% of the gross); what was spent pays even less.
        SettleCase(
            [("40000000.00", "8000000.00", "0.30")],
            "20000000.00",
            [("20000000.00", "6000000.00", "2000000.00")],
        ),
        id="hz-iii-8m-capped-order-settled-lower",
    ),
    pytest.param(
        # The same capped order, all of it executed: the cap that held at placement holds.
        SettleCase(
            [("40000000.00", "8000000.00", "0.30")],
            "40000000.00",
            [("40000000.00", "8000000.00", "0.00")],
        ),
        id="hz-iii-8m-capped-order-executed-in-full-stays-capped",
    ),
    pytest.param(
        # seed 002 (15): the actual execution amount of the contract; no cap reached.
        SettleCase(
            [("552960.00", "165888.00", "0.30")],
            "500000.00",
            [("500000.00", "150000.00", "15888.00")],
        ),
        id="zj-15-uncapped-executed-amount-falls",
    ),
    pytest.param(
        # seed 004 (六) 上一年度实际租用算力结算费用: settled_amount, uncapped, 60%.
        SettleCase(
            [("552960.00", "331776.00", "0.60")],
            "500000.00",
            [("500000.00", "300000.00", "31776.00")],
        ),
        id="bj-vi-uncapped-settled-amount-falls",
    ),
    pytest.param(
        # Round down again (policies.md step 4): 30% of 33,333.33 is 9,999.99.
        SettleCase(
            [("100000.00", "30000.00", "0.30")], "33333.33", [("33333.33", "9999.99", "20000.01")]
        ),
        id="step-4-settlement-rounds-down",
    ),
    pytest.param(
        # doc: a split order's executed amount is shared in proportion to the parts'
        # gross amounts; each part settles its own rate on its share.
        SettleCase(
            [("60000.00", "18000.00", "0.30"), ("40000.00", "12000.00", "0.30")],
            "50000.00",
            [("30000.00", "9000.00", "9000.00"), ("20000.00", "6000.00", "6000.00")],
        ),
        id="doc-split-order-shares-the-executed-amount",
    ),
    pytest.param(
        # doc: a split whose second part was capped (the cap left 1,000.00 for it) and
        # whose shares do not divide evenly (the last part takes the remainder).
        SettleCase(
            [("33333.33", "9999.99", "0.30"), ("66666.67", "1000.00", "0.30")],
            "10000.00",
            [("3333.33", "999.99", "9000.00"), ("6666.67", "1000.00", "0.00")],
        ),
        id="doc-split-order-capped-part-and-remainder",
    ),
    pytest.param(
        SettleCase([("100.00", "30.00", "0.30")], "0.00", [("0.00", "0.00", "30.00")]),
        id="doc-nothing-executed-releases-everything",
    ),
]


@pytest.mark.parametrize("case", SETTLEMENTS)
def test_settlement_table(case: SettleCase) -> None:
    parts = [PartReservation(D(g), D(r), D(rate)) for g, r, rate in case.parts]
    done = settle(parts, D(case.executed))
    assert [(d.executed_amount, d.settled, d.released) for d in done] == [
        (D(e), D(st), D(rel)) for e, st, rel in case.expected
    ]
    assert sum(d.executed_amount for d in done) == D(case.executed)
    for part, d in zip(parts, done, strict=True):
        assert d.settled + d.released == part.reserved
        assert d.settled <= part.rate * d.executed_amount


def test_effective_cap() -> None:
    hz = Program.from_data(seed(HZ))
    zj = Program.from_data(seed(ZJ))
    grant = {HZ: D("20000000.00"), ZJ: D("9000000.00")}
    assert effective_cap(hz, EnterpriseFacts("330106")) == D("8000000.00")
    assert effective_cap(hz, EnterpriseFacts("330106", True, relaxed_caps=grant)) == D(
        "20000000.00"
    )
    assert effective_cap(hz, EnterpriseFacts("330106", False, relaxed_caps=grant)) == D(
        "8000000.00"
    )
    assert effective_cap(zj, EnterpriseFacts("330212", True, relaxed_caps=grant)) == D("8000000.00")
    uncapped = Program.from_data(variant(HZ, enterprise_annual_cap=None))
    assert effective_cap(uncapped, EnterpriseFacts("330106", True, relaxed_caps=grant)) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rates": []}, "rates"),
        ({"rates": [{"rate": "1.5", "when": {}}]}, "between 0 and 1"),
        ({"rates": [{"rate": 0.3, "when": {}}]}, "decimal string"),
        ({"rates": [{"rate": "0.3", "when": {"hardware": "x"}}]}, "unknown condition"),
        ({"rates": [{"rate": "0.3", "when": {"purposes": []}}]}, "never hold"),
        ({"effective_from": "2027-01-01", "effective_until": "2026-01-01"}, "after"),
        ({"effective_from": "2027-13-01"}, "YYYY-MM-DD"),
        ({"base": "gross"}, "base"),
        ({"status": "paused"}, "status"),
        ({"voucher_type": "coupon"}, "voucher_type"),
        ({"purposes": ["mining"]}, "purpose"),
        ({"enterprise_regions": {"include": [], "exclude": []}}, "include"),
        ({"enterprise_annual_cap": "-1"}, "negative"),
        ({"annual_budget": "lots"}, "not a decimal"),
        ({"cap_relaxable_for_foundation_model_enterprises": "yes"}, "boolean"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else v,
)
def test_from_data_refuses_malformed_programs(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Program.from_data(variant(HZ, **change))


def test_from_data_accepts_native_types() -> None:
    data = variant(
        HZ,
        effective_from=date(2024, 8, 19),
        effective_until=date(2027, 12, 31),
        enterprise_annual_cap=Decimal("8000000"),
        annual_budget=250000000,
        rates=[
            {
                "rate": Decimal("0.3"),
                "when": {"purposes": ["maas", "agent"], "relies_on_filed_model": True},
            },
            {"rate": "0.30", "when": {"domestic": True}},
            {"rate": "0.2", "when": None},
        ],
    )
    assert Program.from_data(data) == Program.from_data(seed(HZ))


# --------------------------------------------------------------------------- schemas


def test_schema_enums_match_the_rules() -> None:
    assert tuple(Purpose) == PURPOSES
    assert tuple(ProgramBase) == BASES
    assert tuple(ProgramStatus) == PROGRAM_STATUSES
    assert tuple(VoucherType) == VOUCHER_TYPES


@pytest.mark.parametrize("data", PROGRAMS, ids=lambda p: p["id"])
def test_seed_programs_are_valid_program_creates(data: dict[str, Any]) -> None:
    created = ProgramCreate.model_validate(data)
    # The seeds predate the claim fields, which take their defaults.
    assert {name: created.to_data()[name] for name in data} == data
    assert created.to_program() == Program.from_data(data)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "X"},
        {"surprise": 1},
        {"rates": []},
        {"rates": [{"rate": "1.01", "when": {}}]},
        {"rates": [{"rate": 0.3, "when": {}}]},
        {"rates": [{"rate": "0.3", "when": {"domestic": "yes"}}]},
        {"rates": [{"rate": "0.3", "when": {"hardware": True}}]},
        {"effective_from": "2028-01-01"},
        {"effective_from": None},
        {"effective_from": 1700000000},
        {"enterprise_regions": {"include": []}},
        {"enterprise_regions": {"include": ["330"]}},
        {"enterprise_regions": {"include": ["٣٣"]}},
        {"enterprise_annual_cap": "1.001"},
        {"annual_budget": -5},
        {"purposes": ["training", "training"]},
        {"level": "county"},
    ],
    ids=lambda c: str(c)[:50],
)
def test_program_create_refuses(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProgramCreate.model_validate(variant(HZ, **change))


def test_program_create_requires_explicit_cap_and_budget() -> None:
    data = seed(ZJ)
    del data["annual_budget"]
    with pytest.raises(ValidationError, match="annual_budget"):
        ProgramCreate.model_validate(data)


def test_program_update() -> None:
    patch = ProgramUpdate.model_validate(
        {"status": "active", "effective_from": "2026-01-01", "annual_budget": None}
    )
    merged = patch.apply_to(seed(AICC))
    assert merged["status"] == "active"
    assert merged["effective_from"] == "2026-01-01"
    assert merged["annual_budget"] is None
    assert merged["rates"] == seed(AICC)["rates"]
    assert Program.from_data(merged).is_valid_on(date(2026, 3, 1))
    for bad in (
        {"id": "other-id"},
        {"name": None},
        {"rates": None},
        {"status": "active", "effective_from": None},
        {"effective_from": "2027-01-02", "effective_until": "2027-01-01"},
        {"rates": [{"rate": "2", "when": {}}]},
    ):
        with pytest.raises(ValidationError):
            ProgramUpdate.model_validate(bad)


QUOTE = {
    "enterprise": {
        "region_code": "330108",
        "is_foundation_model_enterprise": False,
        "relies_on_filed_model": False,
        "relaxed_caps": {},
    },
    "provider": {"lists": ["binjiang-compute-partner"], "status": "listed"},
    "domestic": True,
    "purpose": "training",
    "gross_amount": "552960.00",
    "contract_date": "2026-03-01",
    "already_claimed": {"binjiang-compute-2025": "0.00"},
}


def test_what_if_quote_end_to_end() -> None:
    request = SubsidyQuoteRequest.model_validate(QUOTE)
    enterprise, provider, contract = request.to_facts()
    result = evaluate(
        [Program.from_data(p) for p in PROGRAMS],
        enterprise,
        provider,
        contract,
        Usage(enterprise_used=request.already_claimed),
    )
    body = quote_response(request.gross_amount, result).model_dump(mode="json")
    assert body["subsidy"] == {
        "program_id": BJ,
        "rate": "0.60",
        "amount": "331776.00",
        "base": "settled_amount",
        "capped_by": None,
    }
    assert body["net_amount"] == "221184.00"
    assert body["gross_amount"] == "552960.00"
    assert body["considered"][0]["program_id"] == BJ
    none = quote_response(Decimal("10.00"), run(Case(region=SHANGHAI)))
    assert none.model_dump(mode="json")["subsidy"] == {
        "program_id": None,
        "rate": "0.00",
        "amount": "0.00",
        "base": None,
        "capped_by": None,
    }


@pytest.mark.parametrize(
    "change",
    [
        {"surprise": True},
        {"enterprise": {"region_code": "3301"}},
        {"enterprise": {"region_code": "330108", "extra": 1}},
        {"provider": {"status": "unknown"}},
        {"purpose": "mining"},
        {"gross_amount": 552960.0},
        {"gross_amount": "-1.00"},
        {"gross_amount": "1.234"},
        {"contract_date": "2026-02-30"},
        {"already_claimed": {"binjiang-compute-2025": "abc"}},
        {"already_claimed": {"Bad Id": "1.00"}},
        {"domestic": "yes"},
    ],
    ids=lambda c: str(c)[:50],
)
def test_what_if_quote_refuses(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SubsidyQuoteRequest.model_validate({**QUOTE, **change})
