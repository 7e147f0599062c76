"""The programs' claim fields (validated, versioned) and related parties (关联方): the
pure rule, matching's reason in `considered`, and the check made again at filing."""

from typing import Any

import pytest
from httpx import AsyncClient

from app.subsidies.rules import related
from tests.claims.helpers import PROGRAM, file_claim, hz_market, settled_order
from tests.factories import OPERATOR, bearer, create_request, credit_code


@pytest.mark.parametrize(
    ("a", "list_a", "b", "list_b", "expected"),
    [
        ("A", [], "A", [], True),  # the same company
        ("A", ["B"], "B", [], True),  # A declares B
        ("A", [], "B", ["A"], True),  # B declares A
        ("A", ["C"], "B", ["C"], True),  # one controller, C, over both
        ("A", ["C"], "B", ["D"], False),
        ("A", [], "B", [], False),
    ],
)
def test_related_parties_rule(
    a: str, list_a: list[str], b: str, list_b: list[str], expected: bool
) -> None:
    assert related(a, list_a, b, list_b) is expected
    assert related(b, list_b, a, list_a) is expected


@pytest.mark.parametrize(
    "change",
    [
        {"claims_open": "someday"},
        {"claims_close": "02-30"},
        {"claims_close": "02-29"},
        {"claims_close": "13-01"},
        {"dual_review_above": "0.00"},
        {"dual_review_above": 5},
        {"funding": []},
        {"funding": [{"payer": "city", "share": "0.50"}]},
        {"funding": [{"payer": "city", "share": "0.50"}, {"payer": "city", "share": "0.50"}]},
        {"funding": [{"payer": "city", "share": "0.333"}, {"payer": "area", "share": "0.667"}]},
        {"excludes_related_parties": "yes"},
    ],
)
async def test_bad_claim_fields_are_422_and_change_nothing(
    client: AsyncClient, change: dict[str, Any]
) -> None:
    before = await client.get(f"/v1/subsidy-programs/{PROGRAM}", headers=OPERATOR)
    resp = await client.patch(f"/v1/subsidy-programs/{PROGRAM}", json=change, headers=OPERATOR)
    assert resp.status_code == 422, (change, resp.text)
    after = await client.get(f"/v1/subsidy-programs/{PROGRAM}", headers=OPERATOR)
    assert after.json() == before.json()


async def test_claim_fields_default_change_and_version(client: AsyncClient) -> None:
    program = (await client.get(f"/v1/subsidy-programs/{PROGRAM}", headers=OPERATOR)).json()
    assert program["claims_open"] == "on_settlement"
    assert program["claims_close"] is None
    assert program["excludes_related_parties"] is False
    assert program["dual_review_above"] is None
    assert program["funding"] == [{"payer": PROGRAM, "share": "1.00"}]
    binjiang = (
        await client.get("/v1/subsidy-programs/binjiang-compute-2025", headers=OPERATOR)
    ).json()
    assert binjiang["claims_open"] == "after_year_end"
    changed = await client.patch(
        f"/v1/subsidy-programs/{PROGRAM}",
        json={
            "claims_close": "06-30",
            "dual_review_above": "500000.00",
            "funding": [
                {"payer": "hangzhou-city", "share": "0.60"},
                {"payer": "district", "share": "0.40"},
            ],
        },
        headers=OPERATOR,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["version"] == program["version"] + 1
    assert body["claims_close"] == "06-30"
    assert body["dual_review_above"] == "500000.00"
    assert [f["share"] for f in body["funding"]] == ["0.60", "0.40"]


async def test_related_parties_get_nothing_where_the_program_excludes_them(
    client: AsyncClient,
) -> None:
    provider, _, enterprise = await hz_market(client)
    request = await create_request(client, enterprise, cards=8, hours=100)
    matches_url = f"/v1/compute-requests/{request['id']}/matches"
    headers = bearer(enterprise["api_key"])
    best = (await client.get(matches_url, headers=headers)).json()["items"][0]
    assert best["subsidy"]["program_id"] == PROGRAM
    # The enterprise declares the provider's parent, which the provider declares too.
    parent = credit_code("330106")
    for path, key in (
        (f"/v1/enterprises/{enterprise['id']}", enterprise["api_key"]),
        (f"/v1/providers/{provider['id']}", provider["api_key"]),
    ):
        resp = await client.patch(path, json={"related_parties": [parent]}, headers=bearer(key))
        assert resp.status_code == 200, resp.text
        assert resp.json()["related_parties"] == [parent]
    # Related, but the program does not exclude them yet: still subsidised.
    again = (await client.get(matches_url, headers=headers)).json()["items"][0]
    assert again["subsidy"]["program_id"] == PROGRAM
    await client.patch(
        f"/v1/subsidy-programs/{PROGRAM}", json={"excludes_related_parties": True}, headers=OPERATOR
    )
    excluded = (await client.get(matches_url, headers=headers)).json()["items"][0]
    assert excluded["subsidy"]["program_id"] is None
    reason = next(c for c in excluded["considered"] if c["program_id"] == PROGRAM)["reason"]
    assert "related parties" in reason
    # Only the operator removes a declared related party.
    dropped = await client.patch(
        f"/v1/enterprises/{enterprise['id']}", json={"related_parties": []}, headers=headers
    )
    assert dropped.status_code == 422


async def test_a_claim_checks_related_parties_as_of_now(client: AsyncClient) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    # Declared after the order was placed: the order keeps its subsidy, the claim says so.
    provider_code = (await client.get(f"/v1/providers/{provider['id']}", headers=OPERATOR)).json()[
        "unified_social_credit_code"
    ]
    added = await client.patch(
        f"/v1/enterprises/{enterprise['id']}",
        json={"related_parties": [provider_code]},
        headers=OPERATOR,
    )
    assert added.status_code == 200, added.text
    claim = await file_claim(client, enterprise, [order])
    assert claim.status_code == 201, claim.text
    check = next(c for c in claim.json()["checks"] if c["check"] == "related_parties")
    assert check["passed"] is False
    assert provider["id"] in check["detail"]
