import logging
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.auth import service as auth_service
from app.core import audit
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.security import Principal
from app.core.timeutil import today_shanghai, utcnow
from app.models import Listing, Provider, ProviderList
from app.providers.schemas import ListingCreate, ProviderCreate, ProviderStatus, ProviderUpdate

log = logging.getLogger("computematch.providers")

# domain.md: pending → listed | rejected; listed ⇄ suspended; any → delisted (final).
TRANSITIONS: dict[str, set[str]] = {
    "pending": {"listed", "rejected", "delisted"},
    "listed": {"suspended", "delisted"},
    "suspended": {"listed", "delisted"},
    "rejected": {"delisted"},
    "delisted": set(),
}


def snapshot(p: Provider) -> dict[str, Any]:
    return {
        "name": p.name,
        "kind": p.kind,
        "region_code": p.region_code,
        "status": p.status,
        "related_parties": list(p.related_parties or []),
    }


async def load_provider(session: AsyncSession, provider_id: str) -> Provider | None:
    return await session.scalar(
        select(Provider).where(Provider.id == provider_id).options(selectinload(Provider.listings))
    )


async def lock_provider(session: AsyncSession, provider: Provider) -> Provider:
    """Re-read a provider and its listings under a row lock, before checking and writing.

    On PostgreSQL two requests could otherwise both pass a check (If-Match, the status
    machine, an overlapping listing) against what each read, and both write. SQLite's
    writers already hold the database from BEGIN IMMEDIATE, so there it is only a re-read.
    """
    locked = await session.scalar(
        select(Provider)
        .where(Provider.id == provider.id)
        .options(selectinload(Provider.listings))
        # FOR NO KEY UPDATE: orders' foreign keys may still take their key share.
        .with_for_update(of=Provider, key_share=True)
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise NotFound(f"provider {provider.id} does not exist")
    return locked


def can_see(principal: Principal, provider_id: str) -> bool:
    return principal.is_operator or principal.provider_id == provider_id


async def create_provider(
    session: AsyncSession, principal: Principal | None, payload: ProviderCreate
) -> tuple[Provider, str | None]:
    """Operator creates (pending or listed); anyone else self-registers as pending with a key."""
    if principal is not None and not principal.is_operator:
        raise Forbidden("only the operator creates providers; register without a key instead")
    status = ProviderStatus.pending
    if payload.status is not None:
        if principal is None:
            raise Unprocessable.field(
                ["body", "status"], "status is set by the operator, not at self-registration"
            )
        if payload.status not in (ProviderStatus.pending, ProviderStatus.listed):
            raise Unprocessable.field(["body", "status"], "a new provider is pending or listed")
        status = payload.status
    await _ensure_code_free(session, payload.unified_social_credit_code)
    provider = Provider(
        id=new_id("prv"),
        name=payload.name,
        kind=payload.kind.value,
        unified_social_credit_code=payload.unified_social_credit_code,
        region_code=payload.region_code,
        status=status.value,
        related_parties=list(payload.related_parties or []),
        version=1,
    )
    session.add(provider)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("a provider with this unified social credit code exists") from None
    secret = None
    if principal is None:
        _, secret = await auth_service.issue_key(
            session, role="provider", provider_id=provider.id, name="self-registration"
        )
    await audit.record(
        session, principal, "provider.created", "provider", provider.id, after=snapshot(provider)
    )
    loaded = await load_provider(session, provider.id)
    assert loaded is not None
    return loaded, secret


async def _ensure_code_free(session: AsyncSession, code: str) -> None:
    taken = await session.scalar(
        select(Provider.id).where(Provider.unified_social_credit_code == code)
    )
    if taken is not None:
        raise Conflict(f"a provider with unified social credit code {code} already exists")


async def update_provider(
    session: AsyncSession, principal: Principal, provider: Provider, payload: ProviderUpdate
) -> Provider:
    before = snapshot(provider)
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    if "related_parties" in changes:
        changes["related_parties"] = related_parties_after(
            principal, provider.related_parties, changes["related_parties"]
        )
    for field, value in changes.items():
        setattr(provider, field, value.value if hasattr(value, "value") else value)
    provider.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "provider.updated",
        "provider",
        provider.id,
        before=before,
        after=snapshot(provider),
    )
    return provider


async def change_status(
    session: AsyncSession,
    principal: Principal,
    provider: Provider,
    new_status: ProviderStatus,
    reason: str | None,
) -> Provider:
    # Lock the row so two operators cannot race a transition past the state machine.
    await lock_provider(session, provider)
    if new_status.value not in TRANSITIONS[provider.status]:
        allowed = ", ".join(sorted(TRANSITIONS[provider.status])) or "none (final)"
        raise Conflict(
            f"a {provider.status} provider cannot become {new_status.value}; allowed: {allowed}"
        )
    before = snapshot(provider)
    provider.status = new_status.value
    provider.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "provider.status_changed",
        "provider",
        provider.id,
        before=before,
        after={**snapshot(provider), "reason": reason},
    )
    return provider


async def grant_listing(
    session: AsyncSession, principal: Principal, provider: Provider, payload: ListingCreate
) -> Listing:
    if await session.get(ProviderList, payload.list) is None:
        known = (await session.scalars(select(ProviderList.id).order_by(ProviderList.id))).all()
        raise Unprocessable.field(
            ["body", "list"], f"unknown list {payload.list!r}; known lists: {', '.join(known)}"
        )
    # Two grants racing must not both pass the overlap check below.
    await lock_provider(session, provider)
    if provider.status in ("delisted", "rejected"):
        raise Conflict(f"a {provider.status} provider cannot be put on a list")
    for existing in provider.listings:
        if (
            existing.list_id == payload.list
            and existing.ended_at is None
            and _overlaps(existing.since, existing.until, payload.since, payload.until)
        ):
            raise Conflict(f"provider is already on {payload.list} over that period")
    listing = Listing(
        id=new_id("lst"),
        provider_id=provider.id,
        list_id=payload.list,
        since=payload.since,
        until=payload.until,
        reference=payload.reference,
    )
    session.add(listing)
    provider.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "listing.granted",
        "provider",
        provider.id,
        after={
            "list": listing.list_id,
            "since": str(listing.since),
            "until": str(listing.until) if listing.until else None,
            "reference": listing.reference,
        },
    )
    log.info(
        "listing granted: %s on %s",
        provider.id,
        listing.list_id,
        extra={
            "event": "listing.granted",
            "provider_id": provider.id,
            "list_id": listing.list_id,
            "since": str(listing.since),
            "until": str(listing.until) if listing.until else None,
        },
    )
    return listing


def _overlaps(a0: date, a1: date | None, b0: date, b1: date | None) -> bool:
    return (a1 is None or b0 <= a1) and (b1 is None or a0 <= b1)


async def end_listing(
    session: AsyncSession, principal: Principal, provider: Provider, list_id: str
) -> Listing:
    await lock_provider(session, provider)
    today = today_shanghai()
    active = [
        lst
        for lst in provider.listings
        if lst.list_id == list_id
        and lst.ended_at is None
        and (lst.until is None or lst.until >= today)
    ]
    if not active:
        raise NotFound(f"provider {provider.id} has no current listing on {list_id}")
    for listing in active:
        listing.ended_at = utcnow()
        # Ends today; one that has not started yet is cancelled, and keeps until ≥ since.
        end = max(today, listing.since)
        if listing.until is None or listing.until > end:
            listing.until = end
    provider.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "listing.ended",
        "provider",
        provider.id,
        before={"list": list_id},
        after={"until": str(today)},
    )
    log.info(
        "listing ended: %s on %s",
        provider.id,
        list_id,
        extra={
            "event": "listing.ended",
            "provider_id": provider.id,
            "list_id": list_id,
            "until": str(today),
        },
    )
    return active[0]


def lists_on(provider: Provider, day: date) -> frozenset[str]:
    """The official lists a provider is on at a given (Asia/Shanghai) date."""
    return frozenset(lst.list_id for lst in provider.listings if lst.active_on(day))


def related_parties_after(
    principal: Principal, current: list[str] | None, sent: list[str]
) -> list[str]:
    """A party's related parties as sent: the party declares and adds; only the operator
    removes a code (claims.md "the operator may add more"), so none slips away unseen."""
    dropped = sorted(set(current or []) - set(sent))
    if dropped and not principal.is_operator:
        raise Unprocessable.field(
            ["body", "related_parties"],
            f"only the operator removes a related party ({', '.join(dropped)})",
        )
    return list(sent)
