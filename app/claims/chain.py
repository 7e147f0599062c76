"""The tamper-evident chain of claim events (claims.md "Tamper evidence").

Every event of every claim is one link: `hash` = hex SHA-256 of the UTF-8 bytes of
`prev_hash` followed by the canonical JSON (sorted keys, no spaces, non-ASCII kept)
of every field but `hash`; the first link's `prev_hash` is 64 zeros. An auditor can
recompute it from what the API answers. Appends are serial: each locks the chain's
head row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite has one writer at a time).
"""

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import Principal
from app.core.timeutil import utcnow
from app.models import ClaimChainHead, ClaimEvent

GENESIS = "0" * 64
HEAD_ID = 1
FIELDS = ("seq", "claim_id", "kind", "at", "actor", "data", "prev_hash")


def canonical(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(event: Mapping[str, Any]) -> str:
    """The hash of an event given as the API answers it (its `hash` is ignored)."""
    body = {name: event[name] for name in FIELDS}
    return hashlib.sha256((event["prev_hash"] + canonical(body)).encode("utf-8")).hexdigest()


def timestamp(instant: datetime) -> str:
    """An event's `at`: UTC, microseconds, as the text that is hashed and stored."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_dict(event: ClaimEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "claim_id": event.claim_id,
        "kind": event.kind,
        "at": event.at,
        "actor": event.actor,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


async def _head(session: AsyncSession) -> ClaimChainHead:
    stmt = select(ClaimChainHead).where(ClaimChainHead.id == HEAD_ID).with_for_update()
    head = await session.scalar(stmt)
    if head is None:
        # The migration writes the head; a database emptied since (a restore of the
        # other tables, the tests' reset) starts the chain again from its genesis. Two
        # first appends at once: one row, then each locks it in turn.
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(ClaimChainHead)
            .values(id=HEAD_ID, seq=0, hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = await session.scalar(stmt)
        assert head is not None
    return head


async def append(
    session: AsyncSession,
    principal: Principal,
    claim_id: str,
    kind: str,
    data: Mapping[str, Any],
) -> ClaimEvent:
    """Append one event after the chain's head, in the caller's transaction."""
    head = await _head(session)
    fields = {
        "seq": head.seq + 1,
        "claim_id": claim_id,
        "kind": kind,
        "at": timestamp(utcnow()),
        "actor": {"key_id": principal.key_id, "role": principal.role},
        "data": dict(data),
        "prev_hash": head.hash,
    }
    event = ClaimEvent(**fields, hash=link_hash(fields))
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    await session.flush()
    return event


@dataclass(frozen=True)
class Break:
    seq: int
    why: str


async def _all_events(session: AsyncSession) -> AsyncIterator[ClaimEvent]:
    result = await session.stream_scalars(
        select(ClaimEvent).order_by(ClaimEvent.seq).execution_options(yield_per=1000)
    )
    async for event in result:
        yield event


async def verify(session: AsyncSession) -> tuple[int, Break | None]:
    """(events checked, the first link that does not hold or None)."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    async for event in _all_events(session):
        count += 1
        if event.seq != expected_seq:
            return count, Break(event.seq, f"sequence jumps from {expected_seq - 1}")
        if event.prev_hash != expected_prev:
            return count, Break(event.seq, "prev_hash is not the previous event's hash")
        if link_hash(event_dict(event)) != event.hash:
            return count, Break(event.seq, "hash does not match the event's fields")
        expected_prev, expected_seq = event.hash, event.seq + 1
    head = await session.get(ClaimChainHead, HEAD_ID)
    if head is not None and count and (head.seq, head.hash) != (expected_seq - 1, expected_prev):
        return count, Break(head.seq, "the chain's head names an event that is not the last")
    return count, None


async def claim_events(session: AsyncSession, claim_id: str) -> list[ClaimEvent]:
    return list(
        await session.scalars(
            select(ClaimEvent).where(ClaimEvent.claim_id == claim_id).order_by(ClaimEvent.seq)
        )
    )


async def latest_hashes(session: AsyncSession, claim_ids: list[str]) -> dict[str, str]:
    if not claim_ids:
        return {}
    rows = await session.execute(
        select(ClaimEvent.claim_id, ClaimEvent.hash)
        .where(ClaimEvent.claim_id.in_(claim_ids))
        .order_by(ClaimEvent.seq)
    )
    # Ordered by seq: the last hash of each claim wins.
    return {str(claim_id): str(digest) for claim_id, digest in rows}


# SQLite's append-only triggers, as migration 0008 creates them (the tests' reset of a
# SQLite database drops them to empty the table, then makes them again).
SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER claim_events_no_update BEFORE UPDATE ON claim_events BEGIN "
    "SELECT RAISE(ABORT, 'claim_events is append-only: UPDATE refused'); END",
    "CREATE TRIGGER claim_events_no_delete BEFORE DELETE ON claim_events BEGIN "
    "SELECT RAISE(ABORT, 'claim_events is append-only: DELETE refused'); END",
)
