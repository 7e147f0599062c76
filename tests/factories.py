"""Small async factories that build state through the public API."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient

from app.core.validators import make_credit_code
from tests.conftest import OPERATOR_KEY

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
_seq = itertools.count(1)
# A whole day in the future: a start window that has passed is refused (domain.md,
# "Compute requests"), and a match starts at the request's earliest start only when
# that has not passed yet. Two days ahead, so a run across midnight keeps it ahead.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def credit_code(region: str = "330108") -> str:
    return make_credit_code(region, next(_seq) * 7919)


async def create_provider(
    client: AsyncClient,
    *,
    status: str = "listed",
    lists: tuple[str, ...] = (),
    region_code: str = "330108",
    kind: str = "intelligent_computing_center",
    since: str = "2024-01-01",
) -> dict[str, Any]:
    """A provider made by the operator, with a provider key under `api_key`."""
    resp = await client.post(
        "/v1/providers",
        json={
            "name": f"Provider {next(_seq)}",
            "kind": kind,
            "unified_social_credit_code": credit_code(region_code),
            "region_code": region_code,
            "status": status,
        },
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    provider = resp.json()
    for list_id in lists:
        r = await client.post(
            f"/v1/providers/{provider['id']}/listings",
            json={"list": list_id, "since": since, "until": None, "reference": "test"},
            headers=OPERATOR,
        )
        assert r.status_code == 201, r.text
    key = await client.post(
        "/v1/api-keys", json={"role": "provider", "provider_id": provider["id"]}, headers=OPERATOR
    )
    assert key.status_code == 201, key.text
    provider["api_key"] = key.json()["key"]
    return provider


def offer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": f"ext-{next(_seq)}",
        "accelerator_id": "huawei-ascend-910b",
        "cards_total": 64,
        "price_per_card_hour": "12.00",
        "available_from": T0.isoformat(),
        "available_until": (T0 + timedelta(days=365)).isoformat(),
        "min_hours": 1,
        "region_code": "330108",
        "workloads": ["training", "inference"],
        "free_trial_hours": 0,
        "free_migration_support": False,
    }
    body.update(overrides)
    return body


async def create_offer(
    client: AsyncClient, provider: dict[str, Any], **overrides: Any
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/offers", json=offer_body(**overrides), headers=bearer(provider["api_key"])
    )
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def create_enterprise(
    client: AsyncClient,
    *,
    region_code: str = "330108",
    is_foundation_model_enterprise: bool = False,
    filed_models: list[dict[str, Any]] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """An enterprise made by the operator, with an enterprise key under `api_key`."""
    resp = await client.post(
        "/v1/enterprises",
        json={
            "name": name or f"Enterprise {next(_seq)}",
            "unified_social_credit_code": credit_code(region_code),
            "region_code": region_code,
            "is_foundation_model_enterprise": is_foundation_model_enterprise,
            "filed_models": filed_models or [],
        },
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    enterprise: dict[str, Any] = resp.json()
    key = await client.post(
        "/v1/api-keys",
        json={"role": "enterprise", "enterprise_id": enterprise["id"]},
        headers=OPERATOR,
    )
    assert key.status_code == 201, key.text
    enterprise["api_key"] = key.json()["key"]
    return enterprise


def request_body(**overrides: Any) -> dict[str, Any]:
    """A compute request for 8 cards over 720 hours starting within 30 days of T0."""
    body: dict[str, Any] = {
        "accelerator_ids": [],
        "domestic": "any",
        "cards": 8,
        "hours": 720,
        "earliest_start": T0.isoformat(),
        "latest_start": (T0 + timedelta(days=30)).isoformat(),
        "purpose": "training",
        "filed_model": None,
        "max_net_budget": None,
        "region_prefixes": [],
        "allow_split": False,
    }
    body.update(overrides)
    return body


async def create_request(
    client: AsyncClient, enterprise: dict[str, Any], **overrides: Any
) -> dict[str, Any]:
    """A compute request posted with the enterprise's own key."""
    resp = await client.post(
        "/v1/compute-requests",
        json=request_body(**overrides),
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result
