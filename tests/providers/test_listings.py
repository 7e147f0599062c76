"""Listings: the operator grants and ends a provider's memberships of official lists."""

from datetime import date, timedelta
from typing import Any

from httpx import AsyncClient

from app.core.db import Database
from app.core.timeutil import today_shanghai
from app.models import Listing
from tests.factories import OPERATOR, bearer, create_provider
from tests.helpers import assert_problem, count, error_locs, mentions_field

KNOWN_LISTS = {
    "hz-planned-icc",
    "hz-matchmaking-partner",
    "binjiang-compute-partner",
    "hz-ai-computing-center",
}


def grant(list_id: str = "binjiang-compute-partner", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "list": list_id,
        "since": "2025-07-01",
        "until": None,
        "reference": "杭高新〔2025〕9号",
    }
    body.update(overrides)
    return body


async def test_grant_and_read_listings(client: AsyncClient) -> None:
    provider = await create_provider(client)
    url = f"/v1/providers/{provider['id']}/listings"
    resp = await client.post(url, json=grant(), headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    listing = resp.json()
    assert listing["list"] == "binjiang-compute-partner"
    assert listing["since"] == "2025-07-01"
    assert listing["until"] is None
    assert listing["reference"] == "杭高新〔2025〕9号"
    assert listing["active"] is True
    assert listing["ended_at"] is None

    second = await client.post(
        url, json=grant("hz-planned-icc", until="2099-12-31"), headers=OPERATOR
    )
    assert second.status_code == 201, second.text

    page = await client.get(url, headers=OPERATOR)
    assert page.status_code == 200
    assert [item["list"] for item in page.json()["items"]] == [
        "binjiang-compute-partner",
        "hz-planned-icc",
    ]
    # The provider reads its own listings, and sees them on itself.
    own = await client.get(url, headers=bearer(provider["api_key"]))
    assert len(own.json()["items"]) == 2
    me = await client.get(f"/v1/providers/{provider['id']}", headers=bearer(provider["api_key"]))
    assert {item["list"] for item in me.json()["listings"]} == {
        "binjiang-compute-partner",
        "hz-planned-icc",
    }


async def test_grant_changes_the_provider_etag(client: AsyncClient) -> None:
    provider = await create_provider(client)
    path = f"/v1/providers/{provider['id']}"
    etag = (await client.get(path, headers=OPERATOR)).headers["etag"]
    await client.post(f"{path}/listings", json=grant(), headers=OPERATOR)
    assert (await client.get(path, headers=OPERATOR)).headers["etag"] != etag


async def test_unknown_list_is_422_naming_the_known_ones(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    before = await count(db, Listing)
    resp = await client.post(
        f"/v1/providers/{provider['id']}/listings", json=grant("hz-secret-list"), headers=OPERATOR
    )
    body = assert_problem(resp, 422)
    assert ["body", "list"] in error_locs(body)
    for known in KNOWN_LISTS:
        assert known in body["detail"]
    assert await count(db, Listing) == before


async def test_until_before_since_is_422(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    before = await count(db, Listing)
    resp = await client.post(
        f"/v1/providers/{provider['id']}/listings",
        json=grant(since="2025-07-01", until="2025-06-30"),
        headers=OPERATOR,
    )
    body = assert_problem(resp, 422)
    assert "until" in body["detail"]
    bad_date = await client.post(
        f"/v1/providers/{provider['id']}/listings", json=grant(since="2025-13-01"), headers=OPERATOR
    )
    assert mentions_field(assert_problem(bad_date, 422), "since")
    assert await count(db, Listing) == before


async def test_overlapping_active_listing_is_409(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client)
    url = f"/v1/providers/{provider['id']}/listings"
    first = await client.post(
        url, json=grant(since="2025-01-01", until="2025-12-31"), headers=OPERATOR
    )
    assert first.status_code == 201
    before = await count(db, Listing)
    for since, until in (
        ("2025-06-01", None),
        ("2024-01-01", "2025-01-01"),
        ("2025-12-31", "2026-01-31"),
    ):
        resp = await client.post(url, json=grant(since=since, until=until), headers=OPERATOR)
        assert_problem(resp, 409)
    assert await count(db, Listing) == before
    # A disjoint period on the same list, or another list, is fine.
    later = await client.post(url, json=grant(since="2026-01-01"), headers=OPERATOR)
    assert later.status_code == 201, later.text
    other = await client.post(
        url, json=grant("hz-planned-icc", since="2025-06-01"), headers=OPERATOR
    )
    assert other.status_code == 201, other.text


async def test_delete_ends_the_current_listing_as_of_today(client: AsyncClient) -> None:
    provider = await create_provider(client, lists=("binjiang-compute-partner", "hz-planned-icc"))
    url = f"/v1/providers/{provider['id']}/listings"
    resp = await client.delete(f"{url}/binjiang-compute-partner", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    ended = resp.json()
    today = today_shanghai()
    assert ended["active"] is False
    assert ended["until"] == today.isoformat()
    assert ended["ended_at"] is not None

    page = (await client.get(url, headers=OPERATOR)).json()["items"]
    by_list = {item["list"]: item for item in page}
    assert by_list["binjiang-compute-partner"]["active"] is False
    assert by_list["binjiang-compute-partner"]["until"] == today.isoformat()
    assert by_list["hz-planned-icc"]["active"] is True

    # Ending it again: nothing current to end.
    assert_problem(await client.delete(f"{url}/binjiang-compute-partner", headers=OPERATOR), 404)
    # It can be granted afresh afterwards.
    regrant = await client.post(
        url, json=grant(since=(today + timedelta(days=1)).isoformat()), headers=OPERATOR
    )
    assert regrant.status_code == 201, regrant.text


async def test_delete_with_no_current_listing_is_404(client: AsyncClient) -> None:
    provider = await create_provider(client)
    url = f"/v1/providers/{provider['id']}/listings"
    assert_problem(await client.delete(f"{url}/hz-planned-icc", headers=OPERATOR), 404)
    assert_problem(await client.delete(f"{url}/no-such-list", headers=OPERATOR), 404)
    # A listing that already ran out is not current either.
    expired = await client.post(
        url, json=grant("hz-planned-icc", since="2020-01-01", until="2020-12-31"), headers=OPERATOR
    )
    assert expired.status_code == 201
    assert expired.json()["active"] is False
    assert_problem(await client.delete(f"{url}/hz-planned-icc", headers=OPERATOR), 404)


async def test_delete_of_a_future_listing_keeps_dates_ordered(client: AsyncClient) -> None:
    provider = await create_provider(client)
    url = f"/v1/providers/{provider['id']}/listings"
    future = (today_shanghai() + timedelta(days=30)).isoformat()
    made = await client.post(url, json=grant(since=future), headers=OPERATOR)
    assert made.status_code == 201
    resp = await client.delete(f"{url}/binjiang-compute-partner", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    ended = resp.json()
    assert ended["active"] is False
    assert ended["ended_at"] is not None
    # A listing that never started is cancelled; its dates stay ordered.
    assert ended["since"] == future
    assert date.fromisoformat(ended["until"]) >= date.fromisoformat(ended["since"])
    assert_problem(await client.delete(f"{url}/binjiang-compute-partner", headers=OPERATOR), 404)


async def test_only_the_operator_grants_or_ends(client: AsyncClient, db: Database) -> None:
    provider = await create_provider(client, lists=("hz-planned-icc",))
    key = bearer(provider["api_key"])
    url = f"/v1/providers/{provider['id']}/listings"
    before = await count(db, Listing)
    assert_problem(await client.post(url, json=grant(), headers=key), 403)
    assert_problem(await client.delete(f"{url}/hz-planned-icc", headers=key), 403)
    assert await count(db, Listing) == before
    still = (await client.get(url, headers=key)).json()["items"]
    assert [item["active"] for item in still] == [True]


async def test_rejected_provider_cannot_be_listed(client: AsyncClient) -> None:
    provider = await create_provider(client, status="pending")
    await client.post(
        f"/v1/providers/{provider['id']}/status", json={"status": "rejected"}, headers=OPERATOR
    )
    resp = await client.post(
        f"/v1/providers/{provider['id']}/listings", json=grant(), headers=OPERATOR
    )
    assert_problem(resp, 409)
