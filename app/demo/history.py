"""The demo market's past: a year of orders settled and claimed, for the voucher office.

Orders, settlements, evidence, claims, reviews and disbursements are written through
the services, each on its own day: the app's clock is set to that instant
(`timeutil.clock_at`), so contract dates and the ledger's years, the entries' writing
times (the console's burn chart), the claims' windows and the events of the chain are
what they would have been had the market run that year. So every invariant holds
(`check-invariants`) and the chain verifies (`verify-chain`).

- Binjiang (binjiang-compute-2025, claims open after the year ends): six Binjiang
  enterprises rent an Ascend 910B pool of 滨江智算中心 in both years; last year's
  orders are claimed this year, in every status of a claim.
- Hangzhou's city program (hz-city-compute-2024, claims open on settlement): thirty-one
  enterprises elsewhere in Hangzhou rent Ascend 910C of 余杭未来算力中心 across this
  year, most up to the ¥8,000,000 cap, so that the budget runs out before the year
  does (the burn chart's projection meets it); nine of them claim. Claims above
  ¥5,000,000 need two reviewers (the demo sets `dual_review_above`).

Each registry row (providers, offers, enterprises) is made here and inserted with the
rest of the demo market; keys of the past's actors are made with no secret kept.
"""

import heapq
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from app.auth import service as auth_service
from app.claims import service as claims_service
from app.claims.schemas import ClaimCreate, DisbursementIn, DocumentIn, ReviewIn
from app.config import Settings
from app.core.db import Database, session_scope
from app.core.ids import new_id
from app.core.money import FEN, format_money, round_down
from app.core.security import Principal
from app.core.timeutil import SHANGHAI, clock_at
from app.core.validators import make_credit_code
from app.demo import documents
from app.evidence import service as evidence_service
from app.models import Order, SubsidyProgram
from app.orders import service as order_service
from app.orders.schemas import QuoteCreate
from app.requests import service as request_service
from app.requests.schemas import ComputeRequestCreate
from app.subsidies import service as subsidy_service
from app.subsidies.schemas import ProgramUpdate

BINJIANG = "binjiang-compute-2025"
HZ_CITY = "hz-city-compute-2024"
# Above this a Hangzhou city claim needs two reviewers (set on the program by the demo).
HZ_DUAL_REVIEW_ABOVE = Decimal("5000000.00")
HZ_DISTRICTS = ["330102", "330105", "330106", "330109", "330110", "330111", "330113", "330114"]
WORDS = [
    "智语", "数影", "星图", "深算", "灵犀", "天工", "云帆", "知远", "青禾", "曜石", "墨言",
    "澜图", "极光", "衡山", "若水", "启明", "万象", "拾光", "北辰", "银河", "翼展", "峰峦",
    "沧澜", "远见", "博观", "九章", "鲲鹏", "朗识", "明镜", "新语", "栖霞", "锦程", "泰和",
    "云杉", "觅知", "南山", "长风",
]  # fmt: skip
OPERATOR = Principal(role="operator", key_id="demo")
BINJIANG_PROVIDER_NAME = "滨江智算中心"


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    region_code: str


@dataclass
class Registry:
    """The past's providers, offers and enterprises, as rows for the demo's inserts."""

    providers: list[dict[str, Any]] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)
    enterprises: list[dict[str, Any]] = field(default_factory=list)
    binjiang_pool: str = ""  # the offer Binjiang's enterprises rent
    city_pool: str = ""  # the offer the city's enterprises rent
    binjiang_provider: str = ""
    city_provider: str = ""
    binjiang_enterprises: list[str] = field(default_factory=list)
    city_enterprises: list[str] = field(default_factory=list)


def registry(now: datetime, seed: int) -> Registry:
    """Two large intelligent computing centres and the enterprises that rent them, on
    the market since before last year's Binjiang orders."""
    out = Registry()
    since = datetime(now.year - 1, 1, 1, tzinfo=UTC)
    until = now + timedelta(days=180)

    def provider(name: str, region: str, lists: list[str], n: int) -> str:
        pid = new_id("prv")
        out.providers.append(
            {
                "id": pid,
                "name": name,
                "kind": "intelligent_computing_center",
                "unified_social_credit_code": make_credit_code(region, seed * 100_000 + 90_000 + n),
                "region_code": region,
                "status": "listed",
                "version": 1,
                "created_at": since,
                "updated_at": since,
            }
        )
        for list_id in lists:
            out.listings.append(
                {
                    "id": new_id("lst"),
                    "provider_id": pid,
                    "list_id": list_id,
                    "since": since.date(),
                    "until": None,
                    "reference": "demo listing",
                    "created_at": since,
                }
            )
        return pid

    def offer(pid: str, region: str, accelerator: str, cards: int, price: str, n: int) -> str:
        oid = new_id("off")
        out.offers.append(
            {
                "id": oid,
                "provider_id": pid,
                "external_id": f"pool-{n}",
                "accelerator_id": accelerator,
                "domestic": True,
                "cards_total": cards,
                "price_per_card_hour": Decimal(price),
                "available_from": since,
                "available_until": until,
                "min_hours": 24,
                "region_code": region,
                "supports_training": True,
                "supports_inference": True,
                "free_trial_hours": 0,
                "free_migration_support": True,
                "status": "active",
                "cards_per_node": 8,
                "interconnect": "hccs",
                "network": "roce",
                "network_gbps": 400,
                "software": [{"stack": "cann", "version": "8.0.RC3"}],
                "software_stacks": ",cann,",
                "version": 1,
                "created_at": since,
                "updated_at": since,
            }
        )
        return oid

    out.binjiang_provider = provider(
        BINJIANG_PROVIDER_NAME, "330108", ["binjiang-compute-partner", "hz-planned-icc"], 1
    )
    out.city_provider = provider("余杭未来算力中心", "330110", ["hz-planned-icc"], 2)
    out.binjiang_pool = offer(
        out.binjiang_provider, "330108", "huawei-ascend-910b", 4096, "12.00", 1
    )
    out.city_pool = offer(out.city_provider, "330110", "huawei-ascend-910c", 8192, "20.00", 2)
    rng = random.Random(seed)
    words = WORDS[:]
    rng.shuffle(words)
    regions = ["330108"] * 6 + [HZ_DISTRICTS[n % len(HZ_DISTRICTS)] for n in range(31)]
    for n, (word, region) in enumerate(zip(words, regions, strict=True)):
        eid = new_id("ent")
        out.enterprises.append(
            {
                "id": eid,
                "name": f"杭州{word}科技有限公司",
                "unified_social_credit_code": make_credit_code(region, seed * 100_000 + 95_000 + n),
                "region_code": region,
                "is_foundation_model_enterprise": False,
                "filed_models": [],
                "version": 1,
                "created_at": since,
                "updated_at": since,
            }
        )
        (out.binjiang_enterprises if region == "330108" else out.city_enterprises).append(eid)
    return out


# --------------------------------------------------------------------------- timeline


Step = Callable[[], Awaitable[None]]


class Timeline:
    """Steps run in the order of their instants, each with the clock at its instant; a
    step may schedule later ones. Nothing is scheduled after `now`: what would happen
    later has not happened yet."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._heap: list[tuple[datetime, int, Step]] = []
        self._seq = itertools.count()

    def at(self, when: datetime, step: Step) -> None:
        if when <= self.now:
            heapq.heappush(self._heap, (when, next(self._seq), step))

    async def run(self) -> None:
        while self._heap:
            when, _, step = heapq.heappop(self._heap)
            with clock_at(when):
                await step()


def office_hours(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI).astimezone(UTC)


# --------------------------------------------------------------------------- the past


@dataclass
class Claim:
    """A claim's script: who files which orders when, and what the office decides."""

    enterprise: str
    program_id: str
    year: int
    orders: list[Order] = field(default_factory=list)
    id: str = ""
    # (days after the previous step, step name, argument)
    script: list[tuple[float, str, Any]] = field(default_factory=list)


@dataclass
class Counts:
    orders: int = 0
    completed: int = 0
    claims: int = 0


class Past:
    """The actors of the past (their keys), its timeline and what it wrote."""

    def __init__(
        self, db: Database, settings: Settings, reg: Registry, now: datetime, seed: int
    ) -> None:
        self.db = db
        self.settings = settings
        self.reg = reg
        self.timeline = Timeline(now)
        self.rng = random.Random(seed)
        self.keys: dict[str, Principal] = {}
        self.reviewers: dict[str, list[Principal]] = {}
        self.counts = Counts()
        self.serial = itertools.count(1)  # numbers the documents

    async def make_keys(self) -> None:
        """A key for each actor of the past, its secret not kept (as if lost): the
        claims and decisions name the keys that made them."""
        async with session_scope(self.db) as session:
            for pid in (self.reg.binjiang_provider, self.reg.city_provider):
                key, _ = await auth_service.issue_key(
                    session, role="provider", provider_id=pid, name="demo history"
                )
                self.keys[pid] = Principal("provider", key.id, provider_id=pid)
            for eid in self.reg.binjiang_enterprises + self.reg.city_enterprises:
                key, _ = await auth_service.issue_key(
                    session, role="enterprise", enterprise_id=eid, name="demo history"
                )
                self.keys[eid] = Principal("enterprise", key.id, enterprise_id=eid)
            for program_id, names in (
                (BINJIANG, ["滨江区经信局 审核"]),
                (HZ_CITY, ["杭州市数据资源局 审核一", "杭州市数据资源局 审核二"]),
            ):
                for name in names:
                    key, _ = await auth_service.issue_key(
                        session, role="reviewer", name=name, program_ids=[program_id]
                    )
                    self.reviewers.setdefault(program_id, []).append(
                        Principal("reviewer", key.id, program_ids=(program_id,))
                    )

    async def two_reviewers_above(self) -> None:
        async with session_scope(self.db) as session:
            row = await session.get(SubsidyProgram, HZ_CITY)
            if row is not None and row.dual_review_above is None:
                await subsidy_service.update_program(
                    session, OPERATOR, row, ProgramUpdate(dual_review_above=HZ_DUAL_REVIEW_ABOVE)
                )

    # ----------------------------------------------------------------------- orders

    def order(
        self,
        enterprise: str,
        offer_id: str,
        provider: str,
        placed: datetime,
        *,
        cards: int,
        hours: int,
        executed: Decimal = Decimal("1"),
        then: Callable[[Order], None] | None = None,
    ) -> None:
        """Quote and place an order at `placed` to start the next day; complete it once
        its window has ended, at `executed` of its gross."""
        principal = self.keys[enterprise]

        async def place() -> None:
            start = (placed + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
            async with session_scope(self.db) as session:
                request = await request_service.create_request(
                    session,
                    principal,
                    ComputeRequestCreate(
                        cards=cards,
                        hours=hours,
                        earliest_start=start,
                        latest_start=start + timedelta(days=3),
                        purpose="training",
                    ),
                    self.settings.max_open_requests_per_enterprise,
                )
                quote = await order_service.create_quote(
                    session,
                    principal,
                    QuoteCreate(request_id=request.id, offer_id=offer_id),
                    self.settings,
                )
            placed_order, _, _ = await order_service.place(
                self.db, principal, quote.id, render=_no_answer
            )
            self.counts.orders += 1
            self.timeline.at(placed_order.end + timedelta(hours=6), complete(placed_order.id))

        def complete(order_id: str) -> Step:
            async def step() -> None:
                async with session_scope(self.db) as session:
                    order = await order_service.load_order(session, order_id)
                    amount = round_down(order.gross_amount * executed)
                    done = await order_service.complete_order(
                        session, self.keys[provider], order, amount
                    )
                self.counts.completed += 1
                if then is not None:
                    then(done)

            return step

        self.timeline.at(placed, place)

    # ----------------------------------------------------------------------- claims

    async def _upload(self, principal: Principal, content: bytes, name: str) -> tuple[str, str]:
        async with session_scope(self.db) as session:
            evidence, _ = await evidence_service.upload(session, principal, content, name, None)
            return evidence.id, evidence.sha256

    async def documents_for(
        self, claim: Claim, *, short_payment: bool = False, delivery: bool = True
    ) -> list[DocumentIn]:
        """A contract, an invoice and a bank receipt per order (the enterprise's), and
        the provider's delivery record."""
        principal = self.keys[claim.enterprise]
        out: list[DocumentIn] = []
        for order in claim.orders:
            n = next(self.serial)
            on = order.end.astimezone(SHANGHAI).date()
            executed = order.executed_amount or order.gross_amount
            paid = round_down(executed * Decimal("0.8")) if short_payment else executed
            contract, _ = await self._upload(
                principal,
                documents.pdf(
                    f"Compute service contract HT-{on.year}-{n:04d}",
                    f"Order {order.id}",
                    f"Cards {order.cards}, {order.start:%Y-%m-%d} to {order.end:%Y-%m-%d}",
                    f"Contract amount CNY {format_money(order.gross_amount)}",
                ),
                f"contract-{n:04d}.pdf",
            )
            invoice, _ = await self._upload(
                principal,
                documents.pdf(
                    f"VAT invoice 2433{on.year}{n:012d}",
                    f"Order {order.id}",
                    f"Amount CNY {format_money(executed)}, issued {on.isoformat()}",
                ),
                f"invoice-{n:04d}.pdf",
            )
            receipt, _ = await self._upload(principal, documents.png(n), f"receipt-{n:04d}.png")
            provider = order.parts[0].provider_id
            out += [
                DocumentIn(
                    kind="contract", order_id=order.id, number=f"HT-{on.year}-{n:04d}",
                    evidence_id=contract,
                ),
                DocumentIn(
                    kind="invoice", order_id=order.id, number=f"2433{on.year}{n:012d}",
                    amount=executed, issued_on=on, evidence_id=invoice,
                ),
                DocumentIn(
                    kind="payment", order_id=order.id, reference=f"ICBC-{on:%Y%m%d}-{n:05d}",
                    amount=paid, paid_on=on + timedelta(days=3), evidence_id=receipt,
                ),
            ]  # fmt: skip
            if delivery:
                record, _ = await self._upload(
                    self.keys[provider],
                    documents.pdf(
                        f"Delivery record JF-{on.year}-{n:04d}",
                        f"Order {order.id}: {order.cards} cards delivered",
                        f"{order.start:%Y-%m-%d %H:%M} to {order.end:%Y-%m-%d %H:%M} UTC",
                    ),
                    f"delivery-{n:04d}.pdf",
                )
                out.append(
                    DocumentIn(
                        kind="delivery",
                        order_id=order.id,
                        number=f"JF-{on.year}-{n:04d}",
                        evidence_id=record,
                    )
                )
        return out

    def claim_when_settled(
        self, claim: Claim, orders: int, opens: datetime | None = None
    ) -> Callable[[Order], None]:
        """Collects the claim's settled orders; with the last, the claim's script starts
        (not before its window `opens`)."""

        def settled(order: Order) -> None:
            claim.orders.append(order)
            if len(claim.orders) == orders:
                claim.orders.sort(key=lambda o: o.id)
                at = order.completed_at or order.end
                self.claim(claim, at if opens is None else max(at, opens))

        return settled

    def claim(self, claim: Claim, at: datetime) -> None:
        """Run the claim's script from `at`: each step a number of days after the last."""
        steps = iter(claim.script)

        def next_step(after: datetime) -> None:
            found = next(steps, None)
            if found is None:
                return
            days, name, arg = found
            when = after + timedelta(days=days)
            self.timeline.at(when, run(name, arg, when))

        def run(name: str, arg: Any, when: datetime) -> Step:
            async def step() -> None:
                await self.claim_step(claim, name, arg, when)
                next_step(when)

            return step

        next_step(at)

    async def claim_step(self, claim: Claim, name: str, arg: Any, when: datetime) -> None:
        enterprise = self.keys[claim.enterprise]
        reviewers = self.reviewers[claim.program_id]
        if name == "file":
            docs = await self.documents_for(claim, **(arg or {}))
            async with session_scope(self.db) as session:
                filed = await claims_service.file_claim(
                    session,
                    enterprise,
                    ClaimCreate(
                        program_id=claim.program_id,
                        year=claim.year,
                        order_ids=[o.id for o in claim.orders],
                        documents=docs,
                    ),
                )
                claim.id = filed.id
            self.counts.claims += 1
        elif name == "fix":
            docs = await self.documents_for(claim)
            async with session_scope(self.db) as session:
                await claims_service.update_documents(session, enterprise, claim.id, docs)
            async with session_scope(self.db) as session:
                await claims_service.resubmit(session, enterprise, claim.id)
        elif name == "pay":
            reviewer, fraction = reviewers[0], Decimal(arg)
            async with session_scope(self.db) as session:
                row = await claims_service.get_claim_for(session, reviewer, claim.id)
                assert row.approved_amount is not None
                left = row.approved_amount - row.disbursed_amount
                amount = left if fraction == 1 else round_down(row.approved_amount * fraction)
                await claims_service.disburse(
                    session,
                    reviewer,
                    claim.id,
                    DisbursementIn(
                        amount=amount,
                        paid_on=when.astimezone(SHANGHAI).date(),
                        bank_reference=f"GK-{when:%Y%m%d}-{claim.id[-6:]}",
                    ),
                )
        else:
            # A decision: ("approve", fraction | None, who) or (decision, reason, who).
            detail, who = arg
            review = (
                ReviewIn(decision="approve")
                if name == "approve" and detail is None
                else ReviewIn(
                    decision="approve",
                    approved_amount=await self._part_of(claim, detail),
                    reason="核减：部分发票金额与合同不符",
                )
                if name == "approve"
                else ReviewIn(decision=name, reason=detail)
            )
            async with session_scope(self.db) as session:
                await claims_service.review(session, reviewers[who], claim.id, review)

    async def _part_of(self, claim: Claim, fraction: str) -> Decimal:
        async with session_scope(self.db, write=False) as session:
            row = await claims_service.get_claim_for(session, OPERATOR, claim.id)
            return max(FEN, round_down(row.amount * Decimal(fraction)))


def _no_answer(order: Order) -> tuple[bytes, dict[str, str]]:
    """Orders placed here answer nobody."""
    return b"", {}


# Binjiang's claims for last year, one enterprise each: every status of a claim.
BINJIANG_SCRIPTS: list[list[tuple[float, str, Any]]] = [
    # returned for a clearer invoice, fixed, resubmitted, approved, paid
    [
        (6, "file", None),
        (9, "return", ("发票扫描件不清晰，请重新上传", 0)),
        (5, "fix", None),
        (8, "approve", (None, 0)),
        (20, "pay", "1"),
    ],
    # approved and paid in two instalments
    [(10, "file", None), (12, "approve", (None, 0)), (15, "pay", "0.5"), (45, "pay", "1")],
    # partly approved (an invoice short of the contract), half of it paid
    [
        (14, "file", None),
        (16, "approve", ("0.85", 0)),
        (30, "pay", "0.5"),
    ],
    # rejected: the payment proof does not cover the settled fees
    [(20, "file", {"short_payment": True}), (10, "reject", ("付款凭证金额不足结算费用", 0))],
    # returned: the provider's delivery record is missing
    [(25, "file", {"delivery": False}), (12, "return", ("请补充算力服务交付凭证", 0))],
    # filed late in the year, waiting in the queue
    [(300, "file", None)],
]

# The city's claims this year: (orders claimed: the first or both, the script).
CITY_SCRIPTS: list[tuple[str, list[tuple[float, str, Any]]]] = [
    (
        "both",
        [(8, "file", None), (6, "approve", (None, 0)), (3, "approve", (None, 1)), (20, "pay", "1")],
    ),
    ("both", [(8, "file", None), (6, "approve", (None, 0))]),
    ("first", [(5, "file", None), (7, "approve", (None, 1)), (14, "pay", "1")]),
    ("first", [(9, "file", None), (10, "approve", (None, 0))]),
    ("first", [(6, "file", None), (8, "approve", ("0.9", 1)), (21, "pay", "1")]),
    ("first", [(7, "file", {"short_payment": True}), (9, "reject", ("付款凭证不足", 0))]),
    ("first", [(12, "file", {"delivery": False}), (9, "return", ("缺少交付凭证", 1))]),
    ("first", [(10, "file", None)]),
    ("both", [(4, "file", None)]),
]


async def write_past(
    db: Database, settings: Settings, reg: Registry, now: datetime, seed: int
) -> Counts:
    """Write the past up to `now` (orders, settlements, claims and their events)."""
    past = Past(db, settings, reg, now, seed)
    year = now.astimezone(SHANGHAI).year
    with clock_at(office_hours(date(year - 1, 6, 12), 9)):
        await past.make_keys()
    past.timeline.at(office_hours(date(year, 1, 2), 9), past.two_reviewers_above)
    rng = past.rng

    # Binjiang, last year: two orders each, June to December; the claims open on 1 January.
    claims_open = office_hours(date(year, 1, 5))
    for n, enterprise in enumerate(reg.binjiang_enterprises):
        claim = Claim(enterprise, BINJIANG, year - 1, script=BINJIANG_SCRIPTS[n])
        for k in range(2):
            day = date(year - 1, 6, 15) + timedelta(days=15 * n + 100 * k + rng.randint(0, 9))
            past.order(
                enterprise,
                reg.binjiang_pool,
                reg.binjiang_provider,
                office_hours(day),
                cards=1024,
                hours=360,
                # One order used less than it booked: its subsidy settles lower.
                executed=Decimal("0.92") if (n, k) == (1, 1) else Decimal("1"),
                then=past.claim_when_settled(claim, 2, claims_open),
            )
    # Binjiang, this year: three orders each, spread over the year (claimed next year).
    first_day = date(year, 1, 3)
    span = max((now.astimezone(SHANGHAI).date() - first_day).days - 2, 1)
    for n, enterprise in enumerate(reg.binjiang_enterprises):
        for k in range(3):
            day = first_day + timedelta(days=span * (3 * k + n % 3) // 9 + n)
            past.order(
                enterprise,
                reg.binjiang_pool,
                reg.binjiang_provider,
                office_hours(min(day, first_day + timedelta(days=span))),
                cards=1024,
                hours=360,
            )
    # The city, this year: two orders each, evenly over the year; most reach the cap.
    city = reg.city_enterprises
    claims = {
        n: Claim(city[n], HZ_CITY, year, script=script)
        for n, (_, script) in enumerate(CITY_SCRIPTS[: len(city)])
    }
    total = 2 * len(city)
    for k in range(total):
        n, second = k % len(city), k >= len(city)
        both = n in claims and CITY_SCRIPTS[n][0] == "both"
        past.order(
            city[n],
            reg.city_pool,
            reg.city_provider,
            office_hours(first_day + timedelta(days=span * k // total), 11),
            cards=2048,
            hours=360,
            then=past.claim_when_settled(claims[n], 2 if both else 1)
            if n in claims and (both or not second)
            else None,
        )
    await past.timeline.run()
    return past.counts
