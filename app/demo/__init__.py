"""A realistic demo market for `make run`: Hangzhou providers, offers and enterprises."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select

from app.config import Settings, get_settings
from app.core.db import Database, begin_write
from app.core.ids import new_id
from app.core.validators import make_credit_code
from app.demo import history
from app.models import Accelerator, ApiKey, ComputeRequest, Enterprise, Listing, Offer, Provider

HANGZHOU_DISTRICTS = {
    "330102": "上城",
    "330105": "拱墅",
    "330106": "西湖",
    "330108": "滨江",
    "330109": "萧山",
    "330110": "余杭",
    "330111": "富阳",
    "330112": "临安",
    "330113": "临平",
    "330114": "钱塘",
}
OTHER_ZHEJIANG = {
    "330203": "宁波海曙",
    "330302": "温州鹿城",
    "330402": "嘉兴南湖",
    "330602": "绍兴越城",
    "330702": "金华婺城",
}
# Typical list prices per card-hour (CNY) by accelerator, before vouchers.
PRICE_BANDS: dict[str, tuple[str, str]] = {
    "nvidia-h100-sxm": ("22.00", "38.00"),
    "nvidia-h800-sxm": ("20.00", "34.00"),
    "nvidia-a100-sxm-80gb": ("12.00", "20.00"),
    "nvidia-a800-sxm-80gb": ("11.00", "18.00"),
    "nvidia-h20": ("8.00", "14.00"),
    "nvidia-l20": ("4.00", "7.00"),
    "nvidia-l40s": ("5.00", "9.00"),
    "nvidia-rtx-4090": ("1.80", "3.50"),
    "huawei-ascend-910b": ("9.00", "16.00"),
    "huawei-ascend-910c": ("15.00", "26.00"),
    "cambricon-mlu590": ("7.00", "12.00"),
    "hygon-dcu-k100": ("5.00", "9.00"),
    "kunlunxin-p800": ("7.00", "12.00"),
    "metax-c500": ("6.00", "10.00"),
}
# What a node of each model is usually built as: cards, interconnect, software stack.
NODE_KINDS: dict[str, tuple[int, str, str, tuple[str, ...]]] = {
    "nvidia-h100-sxm": (8, "nvlink", "cuda", ("12.4", "12.6")),
    "nvidia-h800-sxm": (8, "nvlink", "cuda", ("12.2", "12.4")),
    "nvidia-a100-sxm-80gb": (8, "nvlink", "cuda", ("11.8", "12.2")),
    "nvidia-a800-sxm-80gb": (8, "nvlink", "cuda", ("11.8", "12.2")),
    "nvidia-h20": (8, "nvlink", "cuda", ("12.4",)),
    "nvidia-l20": (8, "pcie", "cuda", ("12.2", "12.4")),
    "nvidia-l40s": (8, "pcie", "cuda", ("12.2", "12.4")),
    "nvidia-rtx-4090": (8, "pcie", "cuda", ("12.2",)),
    "huawei-ascend-910b": (8, "hccs", "cann", ("7.0", "8.0.RC3")),
    "huawei-ascend-910c": (8, "hccs", "cann", ("8.0.RC3",)),
    "cambricon-mlu590": (8, "other", "bang", ("1.20",)),
    "hygon-dcu-k100": (8, "pcie", "dtk", ("24.04",)),
    "kunlunxin-p800": (8, "other", "other", ("xpu-5.0",)),
    "metax-c500": (8, "other", "other", ("maca-2.2",)),
}
NETWORKS = [("infiniband", 400), ("roce", 200), ("roce", 400), ("ethernet", 100)]
LISTS = ["hz-planned-icc", "hz-matchmaking-partner", "binjiang-compute-partner"]


def _price(rng: random.Random, band: tuple[str, str]) -> Decimal:
    low, high = Decimal(band[0]), Decimal(band[1])
    return (low + (high - low) * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.01"))


def _open_requests(
    rng: random.Random, enterprise_rows: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """A few open compute requests, so that /matches has something to show at once.

    The first is a Binjiang enterprise's, on domestic hardware: its best match shows the
    district's 60% voucher.
    """
    rows: list[dict[str, Any]] = []
    for enterprise in enterprise_rows[: max(1, min(20, len(enterprise_rows)))]:
        start = now + timedelta(days=1)
        rows.append(
            {
                "id": "",
                "enterprise_id": enterprise["id"],
                "accelerator_ids": [],
                "min_memory_gb": None,
                "domestic": "required" if not rows else rng.choice(["any", "preferred"]),
                "cards": 8 if not rows else rng.choice([8, 16, 32]),
                "hours": 720 if not rows else rng.choice([72, 168, 720]),
                "earliest_start": start,
                "latest_start": start + timedelta(days=14),
                "purpose": "training" if not rows else rng.choice(["training", "inference"]),
                "filed_model": None,
                "max_net_budget": None,
                "region_prefixes": [],
                "allow_split": False,
                "status": "open",
                "created_at": now,
                "updated_at": now,
            }
        )
    # Ids made in one millisecond sort at random: sorted, the Binjiang request lists first.
    for row, request_id in zip(rows, sorted(new_id("req") for _ in rows), strict=True):
        row["id"] = request_id
    return rows


async def load_demo_market(
    db: Database,
    *,
    providers: int = 300,
    offers_per_provider: int = 12,
    enterprises: int = 60,
    seed: int = 2026,
    if_empty: bool = False,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> str:
    """The demo market as of `now` (default: the hour now), and its past (app.demo.history)."""
    rng = random.Random(seed)
    try:
        async with db.sessionmaker() as session:
            await begin_write(session)
            existing = await session.scalar(select(func.count()).select_from(Provider))
            if if_empty and existing:
                # A restart names the same first request as the first run did: the demo's
                # requests were the database's first, and the Binjiang one sorts first.
                first = await session.scalar(
                    select(ComputeRequest.id).order_by(ComputeRequest.id).limit(1)
                )
                where = (
                    f"; first compute request: {first}, see its matches at "
                    f"/v1/compute-requests/{first}/matches"
                    if first is not None
                    else ""
                )
                return f"demo data skipped: {existing} providers already exist{where}"
            accelerators = list((await session.scalars(select(Accelerator))).all())
            catalog = {a.id: a for a in accelerators}
            priced = [a for a in PRICE_BANDS if a in catalog]
            now = now or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            districts = list(HANGZHOU_DISTRICTS)
            provider_rows: list[dict[str, Any]] = []
            listing_rows: list[dict[str, Any]] = []
            offer_rows: list[dict[str, Any]] = []
            for n in range(providers):
                region = rng.choice(districts + list(OTHER_ZHEJIANG)[:2])
                kind = rng.choice(["intelligent_computing_center", "matchmaking_partner"])
                status = rng.choices(["listed", "pending", "suspended"], [90, 7, 3])[0]
                pid = new_id("prv")
                provider_rows.append(
                    {
                        "id": pid,
                        "name": f"{HANGZHOU_DISTRICTS.get(region, '浙江')}算力{n + 1:03d}",
                        "kind": kind,
                        "unified_social_credit_code": make_credit_code(region, seed * 100_000 + n),
                        "region_code": region,
                        "status": status,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                lists = {
                    "hz-planned-icc"
                    if kind == "intelligent_computing_center"
                    else "hz-matchmaking-partner"
                }
                if region == "330108" or rng.random() < 0.25:
                    lists.add("binjiang-compute-partner")
                if n == 0:
                    lists.add("hz-ai-computing-center")
                for list_id in sorted(lists):
                    listing_rows.append(
                        {
                            "id": new_id("lst"),
                            "provider_id": pid,
                            "list_id": list_id,
                            "since": date(2025, 1, 1),
                            "until": None,
                            "reference": "demo listing",
                            "created_at": now,
                        }
                    )
                for k in range(offers_per_provider):
                    acc_id = rng.choice(priced)
                    start = now - timedelta(days=rng.randint(0, 30))
                    per_node, interconnect, stack, versions = NODE_KINDS[acc_id]
                    network, gbps = rng.choice(NETWORKS)
                    # Some providers state nothing of their nodes, as in any real market.
                    stated = rng.random() < 0.8
                    offer_rows.append(
                        {
                            "id": new_id("off"),
                            "provider_id": pid,
                            "external_id": f"demo-{n}-{k}",
                            "accelerator_id": acc_id,
                            "domestic": catalog[acc_id].domestic,
                            "cards_total": rng.choice([8, 16, 32, 64, 128, 256]),
                            "price_per_card_hour": _price(rng, PRICE_BANDS[acc_id]),
                            "available_from": start,
                            "available_until": start + timedelta(days=rng.choice([90, 180, 365])),
                            "min_hours": rng.choice([1, 1, 8, 24, 72]),
                            "region_code": region,
                            "supports_training": rng.random() < 0.8,
                            "supports_inference": True,
                            "free_trial_hours": rng.choice([0, 0, 4, 24]),
                            "free_migration_support": rng.random() < 0.4,
                            "status": "active",
                            "cards_per_node": per_node if stated else None,
                            "interconnect": interconnect if stated else None,
                            "network": network if stated else None,
                            "network_gbps": gbps if stated else None,
                            "software": (
                                [{"stack": stack, "version": rng.choice(versions)}]
                                if stated
                                else []
                            ),
                            "software_stacks": f",{stack}," if stated else "",
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            enterprise_rows = []
            for n in range(enterprises):
                # The first is in Binjiang, so its requests show the district's 60% voucher.
                region = "330108" if n == 0 else rng.choice(districts + list(OTHER_ZHEJIANG))
                foundation = rng.random() < 0.1
                place = HANGZHOU_DISTRICTS.get(region) or OTHER_ZHEJIANG[region]
                enterprise_rows.append(
                    {
                        "id": new_id("ent"),
                        "name": f"{place}智能科技{n + 1:03d}",
                        "unified_social_credit_code": make_credit_code(
                            region, seed * 100_000 + 50_000 + n
                        ),
                        "region_code": region,
                        "is_foundation_model_enterprise": foundation,
                        "filed_models": [
                            {
                                "filing_number": f"Zhejiang-DemoModel-2025{n:04d}",
                                "name": f"Demo model {n}",
                                "filed_on": "2025-03-01",
                            }
                        ]
                        if foundation or rng.random() < 0.3
                        else [],
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            request_rows = _open_requests(rng, enterprise_rows, now)
            past = history.registry(now, seed)
            await session.execute(insert(Provider), provider_rows + past.providers)
            await session.execute(insert(Listing), listing_rows + past.listings)
            every_offer = offer_rows + past.offers
            for i in range(0, len(every_offer), 2000):
                await session.execute(insert(Offer), every_offer[i : i + 2000])
            await session.execute(insert(Enterprise), enterprise_rows + past.enterprises)
            await session.execute(insert(ComputeRequest), request_rows)
            await session.commit()
        counts = await history.write_past(db, settings or get_settings(), past, now, seed)
        return (
            f"demo market: {len(provider_rows)} providers, {len(listing_rows)} listings, "
            f"{len(offer_rows)} offers, {len(enterprise_rows)} enterprises, "
            f"{len(request_rows)} open compute requests (first: {request_rows[0]['id']}, "
            f"see its matches at /v1/compute-requests/{request_rows[0]['id']}/matches); "
            f"its past year: {len(past.providers)} computing centres and "
            f"{len(past.enterprises)} enterprises, {counts.orders} orders "
            f"({counts.completed} settled), {counts.claims} voucher claims "
            "(binjiang-compute-2025, hz-city-compute-2024)"
        )
    finally:
        await db.dispose()


# The label of the operator key `computematch serve` (`make run`) mints; "make run" is
# what earlier versions wrote.
DEMO_KEY_NAMES = ("demo operator key (computematch serve)", "make run")
# The label of the Binjiang voucher office's reviewer key `computematch serve` mints
# where the demo's past is loaded.
DEMO_REVIEWER_KEY_NAME = "demo reviewer key, Binjiang (computematch serve)"


async def rotate_demo_operator_key(db: Database) -> tuple[str, list[str]]:
    """A new demo operator key, and the ids of the earlier ones, revoked in the same
    transaction: however often the demo restarts, one demo key is live (keys made with
    create-key or the API are never touched)."""
    return await _rotate(db, "operator", DEMO_KEY_NAMES)


async def rotate_demo_reviewer_key(db: Database) -> tuple[str, list[str]] | None:
    """The same for a reviewer of binjiang-compute-2025, where the demo's past (its
    claims) is loaded; None where it is not."""
    try:
        async with db.sessionmaker() as session:
            provider = await session.scalar(
                select(Provider.id).where(Provider.name == history.BINJIANG_PROVIDER_NAME)
            )
    finally:
        await db.dispose()
    if provider is None:
        return None
    return await _rotate(db, "reviewer", (DEMO_REVIEWER_KEY_NAME,), program_ids=[history.BINJIANG])


async def _rotate(
    db: Database, role: str, names: tuple[str, ...], program_ids: list[str] | None = None
) -> tuple[str, list[str]]:
    from app.auth import service as auth_service
    from app.ops.csv_io import OPERATOR

    try:
        async with db.sessionmaker() as session:
            await begin_write(session)
            earlier = list(
                await session.scalars(
                    select(ApiKey.id)
                    .where(
                        ApiKey.role == role,
                        ApiKey.name.in_(names),
                        ApiKey.revoked_at.is_(None),
                    )
                    .order_by(ApiKey.id.desc())
                )
            )
            for key_id in earlier:
                await auth_service.revoke_key(session, OPERATOR, key_id)
            _, secret = await auth_service.issue_key(
                session, role=role, name=names[0], program_ids=program_ids
            )
            await session.commit()
            return secret, earlier
    finally:
        await db.dispose()
