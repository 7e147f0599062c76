from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.security import Principal
from app.core.timeutil import utcnow
from app.matching.engine import Hold, peak_usage
from app.models import Accelerator, Offer, OrderPart, Provider
from app.offers.schemas import (
    OfferCreate,
    OfferFields,
    OfferSearch,
    OfferStatus,
    OfferSync,
    OfferUpdate,
    SyncResult,
)

# A provider locked while its offers are created or synced, so that these take turns.
# FOR NO KEY UPDATE, not FOR UPDATE: an order holds its offers locked while the
# foreign keys of its rows take a key-share lock on their provider, which FOR UPDATE
# would refuse; a sync, waiting for those offers, and the order would wait for each
# other until the database aborted one.
_LOCK_PROVIDER = (
    select(Provider).where(Provider.id == bindparam("provider_id")).with_for_update(key_share=True)
)

# Columns a provider states; compared field by field to tell an update from a no-op.
STATED = (
    "accelerator_id",
    "domestic",
    "cards_total",
    "price_per_card_hour",
    "available_from",
    "available_until",
    "min_hours",
    "region_code",
    "supports_training",
    "supports_inference",
    "free_trial_hours",
    "free_migration_support",
    "status",
)


def can_write(principal: Principal, offer: Offer) -> bool:
    return principal.is_operator or principal.provider_id == offer.provider_id


async def catalog(session: AsyncSession) -> dict[str, bool]:
    """Accelerator id -> domestic flag (the catalog is small: one query)."""
    rows = (await session.execute(select(Accelerator.id, Accelerator.domestic))).all()
    return dict(rows)


def resolve_domestic(
    known: dict[str, bool], accelerator_id: str, declared: bool | None, loc: list[str | int]
) -> bool:
    if accelerator_id not in known:
        raise Unprocessable.field(
            [*loc, "accelerator_id"],
            f"unknown accelerator {accelerator_id!r}; see GET /v1/accelerators",
        )
    domestic = known[accelerator_id]
    if declared is not None and declared != domestic:
        raise Unprocessable.field(
            [*loc, "domestic"],
            f"{accelerator_id} is {'domestic' if domestic else 'non-domestic'} hardware in the "
            f"catalog; an offer's domestic flag comes from its accelerator",
        )
    return domestic


def row_from(fields: OfferFields, domestic: bool) -> dict[str, Any]:
    return {
        "accelerator_id": fields.accelerator_id,
        "domestic": domestic,
        "cards_total": fields.cards_total,
        "price_per_card_hour": fields.price_per_card_hour,
        "available_from": fields.available_from,
        "available_until": fields.available_until,
        "min_hours": fields.min_hours,
        "region_code": fields.region_code,
        "supports_training": "training" in fields.workloads,
        "supports_inference": "inference" in fields.workloads,
        "free_trial_hours": fields.free_trial_hours,
        "free_migration_support": fields.free_migration_support,
        "status": fields.status.value,
    }


def snapshot(offer: Offer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in STATED:
        value = getattr(offer, name)
        out[name] = (
            value.isoformat()
            if isinstance(value, datetime)
            else (str(value) if not isinstance(value, bool | int | str) else value)
        )
    return out


async def _writable_provider(
    session: AsyncSession, principal: Principal, provider_id: str | None
) -> Provider:
    if principal.role == "provider":
        if provider_id is not None and provider_id != principal.provider_id:
            raise Forbidden("a provider key creates offers for its own provider only")
        provider_id = principal.provider_id
    elif not principal.is_operator:
        raise Forbidden("only providers and the operator create offers")
    if provider_id is None:
        raise Unprocessable.field(["body", "provider_id"], "the operator must name provider_id")
    # Locked like a sync does: creates and syncs of one provider take turns, so the
    # external_id check below cannot be raced (PostgreSQL; SQLite writers already do).
    provider = await session.scalar(_LOCK_PROVIDER, {"provider_id": provider_id})
    if provider is None:
        raise Unprocessable.field(["body", "provider_id"], f"no provider {provider_id}")
    if provider.status in ("delisted", "rejected"):
        raise Conflict(f"a {provider.status} provider cannot offer compute")
    return provider


async def create_offer(session: AsyncSession, principal: Principal, payload: OfferCreate) -> Offer:
    provider = await _writable_provider(session, principal, payload.provider_id)
    domestic = resolve_domestic(
        await catalog(session), payload.accelerator_id, payload.domestic, ["body"]
    )
    taken = await session.scalar(
        select(Offer.id).where(
            Offer.provider_id == provider.id, Offer.external_id == payload.external_id
        )
    )
    if taken is not None:
        raise Conflict(
            f"offer with external_id {payload.external_id!r} already exists ({taken}); "
            "PATCH it or use offers:sync"
        )
    offer = Offer(
        id=new_id("off"),
        provider_id=provider.id,
        external_id=payload.external_id,
        version=1,
        **row_from(payload, domestic),
    )
    session.add(offer)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"offer with external_id {payload.external_id!r} already exists; "
            "PATCH it or use offers:sync"
        ) from None
    await audit.record(
        session, principal, "offer.created", "offer", offer.id, after=snapshot(offer)
    )
    return offer


async def live_holds(session: AsyncSession, offer_id: str) -> list[Hold]:
    """Holds of reserved or completed orders on this offer that have not ended yet."""
    rows = (
        await session.execute(
            select(OrderPart.start, OrderPart.end, OrderPart.cards).where(
                OrderPart.offer_id == offer_id,
                OrderPart.holding.is_(True),
                OrderPart.end > utcnow(),
            )
        )
    ).all()
    return [Hold(start=s, end=e, cards=c) for s, e, c in rows]


def _check_capacity_kept(offer_id: str, holds: Sequence[Hold], row: dict[str, Any]) -> None:
    if not holds:
        return
    first = min(h.start for h in holds)
    last = max(h.end for h in holds)
    if row["available_from"] > first or row["available_until"] < last:
        raise Conflict(
            f"offer {offer_id} has live orders from {first.isoformat()} to {last.isoformat()}; "
            "its availability cannot shrink past them"
        )
    peak = peak_usage(holds, first, last)
    if row["cards_total"] < peak:
        raise Conflict(
            f"offer {offer_id} has {peak} cards held by live orders; "
            f"cards_total cannot go below that"
        )


async def update_offer(
    session: AsyncSession, principal: Principal, offer: Offer, payload: OfferUpdate
) -> Offer:
    await lock_offer(session, offer)
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    if changes.get("status") == OfferStatus.retired:
        raise Unprocessable.field(["body", "status"], "use DELETE /v1/offers/{id} to retire")
    if offer.status == OfferStatus.retired.value and "status" not in changes:
        raise Conflict(f"offer {offer.id} is retired; set status active or paused to reopen it")
    if not changes:
        return offer
    stated = {name: getattr(offer, name) for name in STATED if name in OfferFields.model_fields}
    stated.update(external_id=offer.external_id, workloads=offer.workloads)
    stated.update({k: v for k, v in changes.items() if k != "domestic"})
    try:
        merged = OfferFields.model_validate(stated)
    except ValidationError as exc:
        raise Unprocessable(
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()),
            errors=[{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()],
        ) from None
    domestic = resolve_domestic(
        await catalog(session), merged.accelerator_id, payload.domestic, ["body"]
    )
    row = row_from(merged, domestic)
    _check_capacity_kept(offer.id, await live_holds(session, offer.id), row)
    before = snapshot(offer)
    for name, value in row.items():
        setattr(offer, name, value)
    offer.version += 1
    await session.flush()
    await audit.record(
        session, principal, "offer.updated", "offer", offer.id, before=before, after=snapshot(offer)
    )
    return offer


async def lock_offer(session: AsyncSession, offer: Offer) -> Offer:
    """Re-read an offer under a row lock before checking (If-Match, holds) and writing.

    Serialises with order placement and other updates, which lock the same row.
    """
    locked = await session.scalar(
        select(Offer)
        .where(Offer.id == offer.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise NotFound(f"offer {offer.id} does not exist")
    return locked


async def retire_offer(session: AsyncSession, principal: Principal, offer: Offer) -> Offer:
    await lock_offer(session, offer)
    if offer.status == OfferStatus.retired.value:
        return offer
    holds = await live_holds(session, offer.id)
    if holds:
        raise Conflict(
            f"offer {offer.id} has {len(holds)} live order part(s); "
            "it can be paused, and retired once they end"
        )
    before = snapshot(offer)
    offer.status = OfferStatus.retired.value
    offer.version += 1
    await session.flush()
    await audit.record(
        session, principal, "offer.retired", "offer", offer.id, before=before, after=snapshot(offer)
    )
    return offer


def search_statement(principal: Principal, filters: OfferSearch) -> Select[Offer]:
    stmt = select(Offer)
    own = principal.provider_id
    if not principal.is_operator:
        # Others' inventory is visible only while it is on sale by a listed provider.
        visible_market = (Offer.status == OfferStatus.active.value) & Offer.provider_id.in_(
            select(Provider.id).where(Provider.status == "listed")
        )
        stmt = stmt.where(visible_market | (Offer.provider_id == own) if own else visible_market)
    if filters.accelerator_id:
        stmt = stmt.where(Offer.accelerator_id.in_(filters.accelerator_id))
    if filters.domestic is not None:
        stmt = stmt.where(Offer.domestic == filters.domestic)
    if filters.min_cards is not None:
        stmt = stmt.where(Offer.cards_total >= filters.min_cards)
    if filters.max_price_per_card_hour is not None:
        stmt = stmt.where(Offer.price_per_card_hour <= filters.max_price_per_card_hour)
    if filters.region_prefix:
        stmt = stmt.where(
            or_(
                *(
                    Offer.region_code.startswith(prefix, autoescape=True)
                    for prefix in filters.region_prefix
                )
            )
        )
    if filters.provider_id:
        stmt = stmt.where(Offer.provider_id == filters.provider_id)
    if filters.status is not None:
        stmt = stmt.where(Offer.status == filters.status.value)
    return stmt


async def sync_offers(
    session: AsyncSession,
    principal: Principal,
    provider_id: str,
    payload: OfferSync,
    max_batch: int,
) -> SyncResult:
    """Upsert a provider's offers by external_id, in one transaction."""
    if len(payload.offers) > max_batch:
        raise Unprocessable.field(["body", "offers"], f"at most {max_batch} offers per sync call")
    provider = await session.scalar(_LOCK_PROVIDER, {"provider_id": provider_id})
    if provider is None:
        raise NotFound(f"provider {provider_id} does not exist")
    if provider.status in ("delisted", "rejected"):
        raise Conflict(f"a {provider.status} provider cannot offer compute")

    known = await catalog(session)
    seen: dict[str, int] = {}
    rows: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(payload.offers):
        loc: list[str | int] = ["body", "offers", index]
        if item.external_id in seen:
            raise Unprocessable.field(
                [*loc, "external_id"],
                f"external_id {item.external_id!r} repeats item {seen[item.external_id]}",
            )
        seen[item.external_id] = index
        rows.append(
            (
                item.external_id,
                row_from(item, resolve_domestic(known, item.accelerator_id, item.domestic, loc)),
            )
        )

    # Plain rows of the compared columns, not ORM objects: a 10,000-offer inventory
    # loads in a fraction of the time and nothing stale stays in the session.
    columns = [Offer.id, Offer.external_id, Offer.version, *(getattr(Offer, n) for n in STATED)]
    existing = {
        o.external_id: o
        for o in await session.execute(select(*columns).where(Offer.provider_id == provider.id))
    }
    now = utcnow()
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    changed_ids: list[tuple[str, dict[str, Any]]] = []
    unchanged = 0
    for external_id, row in rows:
        current = existing.get(external_id)
        if current is None:
            to_insert.append(
                {
                    "id": new_id("off"),
                    "provider_id": provider.id,
                    "external_id": external_id,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    **row,
                }
            )
        elif all(getattr(current, k) == v for k, v in row.items()):
            unchanged += 1
        else:
            changed_ids.append((current.id, row))
            to_update.append(
                {"id": current.id, "version": current.version + 1, "updated_at": now, **row}
            )
    retired: list[dict[str, Any]] = []
    if payload.retire_missing:
        retired = [
            {"id": o.id, "version": o.version + 1, "updated_at": now, "status": "retired"}
            for ext, o in existing.items()
            if ext not in seen and o.status != OfferStatus.retired.value
        ]
    await _check_sync_capacity(session, changed_ids, [r["id"] for r in retired])
    # Rows are locked in id order, as order placement locks them: no deadlock between the two.
    to_update.sort(key=lambda r: r["id"])
    retired.sort(key=lambda r: r["id"])

    if to_insert:
        await session.execute(insert(Offer), to_insert)
    if to_update:
        await session.execute(update(Offer), to_update)
    if retired:
        await session.execute(update(Offer), retired)
    result = SyncResult(
        created=len(to_insert), updated=len(to_update), unchanged=unchanged, retired=len(retired)
    )
    await audit.record(
        session, principal, "offers.synced", "provider", provider.id, after=result.model_dump()
    )
    return result


async def _check_sync_capacity(
    session: AsyncSession, changed: list[tuple[str, dict[str, Any]]], retiring: list[str]
) -> None:
    ids = [offer_id for offer_id, _ in changed] + retiring
    if not ids:
        return
    holds: dict[str, list[Hold]] = {}
    now = utcnow()
    for chunk_start in range(0, len(ids), 1000):
        chunk = ids[chunk_start : chunk_start + 1000]
        result = await session.execute(
            select(OrderPart.offer_id, OrderPart.start, OrderPart.end, OrderPart.cards).where(
                OrderPart.offer_id.in_(chunk), OrderPart.holding.is_(True), OrderPart.end > now
            )
        )
        for offer_id, start, end, cards in result:
            holds.setdefault(offer_id, []).append(Hold(start=start, end=end, cards=cards))
    for offer_id, row in changed:
        _check_capacity_kept(offer_id, holds.get(offer_id, []), row)
    for offer_id in retiring:
        if holds.get(offer_id):
            raise Conflict(f"offer {offer_id} has live orders and cannot be retired by a sync")
