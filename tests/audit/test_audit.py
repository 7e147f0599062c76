"""Every change of state in the registry leaves an audit entry: who, what, when."""

from typing import Any

from httpx import AsyncClient
from sqlalchemy import select

from app.core.db import Database
from app.models import AuditEntry
from tests.factories import OPERATOR, bearer, create_offer, create_provider, offer_body


async def entries(db: Database, resource_id: str) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.resource_id == resource_id).order_by(AuditEntry.at)
        )
        return list(rows)


def actions(rows: list[AuditEntry]) -> list[str]:
    return [row.action for row in rows]


async def test_provider_lifecycle_is_audited(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client, status="pending")
    pid = provider["id"]
    await client.patch(
        f"/v1/providers/{pid}", json={"name": "New name"}, headers=bearer(provider["api_key"])
    )
    await client.post(
        f"/v1/providers/{pid}/status",
        json={"status": "listed", "reason": "documents checked"},
        headers={**OPERATOR, "X-Request-ID": "review-1"},
    )
    await client.post(
        f"/v1/providers/{pid}/listings",
        json={"list": "hz-planned-icc", "since": "2025-01-01", "until": None},
        headers=OPERATOR,
    )
    await client.delete(f"/v1/providers/{pid}/listings/hz-planned-icc", headers=OPERATOR)

    rows = await entries(db, pid)
    assert actions(rows) == [
        "provider.created",
        "provider.updated",
        "provider.status_changed",
        "listing.granted",
        "listing.ended",
    ]
    updated = rows[1]
    assert updated.principal_role == "provider"
    assert updated.principal_id == pid
    assert updated.before is not None
    assert updated.after is not None
    assert updated.after["name"] == "New name"
    assert updated.before["name"] != "New name"
    status = rows[2]
    assert status.principal_role == "operator"
    assert status.request_id == "review-1"
    assert status.before is not None
    assert status.after is not None
    assert status.before["status"] == "pending"
    assert status.after["status"] == "listed"
    assert status.after["reason"] == "documents checked"


async def test_refused_changes_leave_no_audit_entry(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client, status="pending")
    before = actions(await entries(db, provider["id"]))
    resp = await client.post(
        f"/v1/providers/{provider['id']}/status", json={"status": "suspended"}, headers=OPERATOR
    )
    assert resp.status_code == 409
    assert actions(await entries(db, provider["id"])) == before


async def test_offer_changes_are_audited(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    key = bearer(provider["api_key"])
    offer = await create_offer(client, provider)
    await client.patch(f"/v1/offers/{offer['id']}", json={"cards_total": 8}, headers=key)
    await client.delete(f"/v1/offers/{offer['id']}", headers=key)
    rows = await entries(db, offer["id"])
    assert actions(rows) == ["offer.created", "offer.updated", "offer.retired"]
    changed: Any = rows[1]
    assert changed.before["cards_total"] == 64
    assert changed.after["cards_total"] == 8

    sync = await client.put(
        f"/v1/providers/{provider['id']}/offers:sync",
        json={"offers": [offer_body(external_id="s1")]},
        headers=key,
    )
    assert sync.status_code == 200
    synced = [r for r in await entries(db, provider["id"]) if r.action == "offers.synced"]
    assert len(synced) == 1
    assert synced[0].after == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "retired": 0,
        "reactivated": 0,
    }


async def test_key_changes_are_audited(client: AsyncClient, db: Database) -> None:
    made = await client.post("/v1/api-keys", json={"role": "operator"}, headers=OPERATOR)
    key_id = made.json()["id"]
    await client.delete(f"/v1/api-keys/{key_id}", headers=OPERATOR)
    rows = await entries(db, key_id)
    assert actions(rows) == ["api_key.created", "api_key.revoked"]
    assert all(row.principal_role == "operator" for row in rows)
    # The audit log never holds the secret.
    secret = made.json()["key"]
    assert all(secret not in str(row.after) for row in rows)
