"""A claim's whole cycle through the API: filed, reviewed, paid, and its ledger."""

from typing import Any

from httpx import AsyncClient

from app.claims import chain
from app.core.db import Database
from app.core.timeutil import today_shanghai
from app.ops.invariants import check
from tests.claims.helpers import (
    PROGRAM,
    documents_for,
    file_claim,
    hz_market,
    reviewer,
    settled_order,
)
from tests.factories import OPERATOR, bearer, create_request


async def usage(client: AsyncClient, enterprise: dict[str, Any]) -> dict[str, Any]:
    resp = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage",
        params={"year": today_shanghai().year},
        headers=bearer(enterprise["api_key"]),
    )
    assert resp.status_code == 200, resp.text
    item: dict[str, Any] = next(i for i in resp.json()["items"] if i["program_id"] == PROGRAM)
    return item


async def budget_used(client: AsyncClient) -> str:
    resp = await client.get(f"/v1/subsidy-programs/{PROGRAM}", headers=OPERATOR)
    used: str = resp.json()["budget_used"]
    return used


async def test_filed_partly_approved_paid_in_two_and_chained(
    client: AsyncClient, db: Database
) -> None:
    provider, offer, enterprise = await hz_market(client)
    # 8 cards × 100 h × 12.00 = 9,600.00; 30% on domestic hardware = 2,880.00.
    order = await settled_order(client, provider, offer, enterprise)
    assert order["subsidy"]["program_id"] == PROGRAM
    assert order["subsidy"]["amount"] == "2880.00"
    documents = await documents_for(client, enterprise, order)
    office = await reviewer(client)

    filed = await file_claim(client, enterprise, [order], documents)
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    assert claim["status"] == "submitted"
    assert claim["amount"] == "2880.00"
    assert [p["order_id"] for p in claim["parts"]] == [order["id"]]
    assert {c["check"]: c["passed"] for c in claim["checks"]} == {
        "invoices_cover": True,
        "payments_cover": True,
        "documents_complete": True,
        "related_parties": True,
        "within_cap": True,
        "within_budget": True,
    }
    assert all(d["evidence_sha256"] for d in claim["documents"])
    before = await budget_used(client)

    # The reviewer approves 2,000.00 of 2,880.00: 880.00 goes back to cap and budget.
    approved = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "approve", "approved_amount": "2000.00", "reason": "one invoice short"},
        headers=office["headers"],
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    assert body["approved_amount"] == "2000.00"
    assert body["reviews"][0]["reviewer_key_id"] == office["id"]
    assert body["reviews"][0]["decision"] == "approve"
    mine = await usage(client, enterprise)
    assert mine["settled"] == "2000.00"
    assert mine["remaining"] == "7998000.00"
    assert float(before) - float(await budget_used(client)) == 880.0

    # Paid in two: a retry with the same key pays nothing twice; never above approved.
    pay = {"amount": "1500.00", "paid_on": "2027-02-10", "bank_reference": "TRX-1"}
    headers = {**office["headers"], "Idempotency-Key": "pay-1"}
    first = await client.post(
        f"/v1/voucher-claims/{claim['id']}/disbursements", json=pay, headers=headers
    )
    again = await client.post(
        f"/v1/voucher-claims/{claim['id']}/disbursements", json=pay, headers=headers
    )
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["splits"] == [{"payer": PROGRAM, "share": "1.00", "amount": "1500.00"}]
    over = await client.post(
        f"/v1/voucher-claims/{claim['id']}/disbursements",
        json={**pay, "amount": "500.01", "bank_reference": "TRX-2"},
        headers=office["headers"],
    )
    assert over.status_code == 409, over.text
    assert over.json()["reason"] == "above_approved"
    rest = await client.post(
        f"/v1/voucher-claims/{claim['id']}/disbursements",
        json={**pay, "amount": "500.00", "bank_reference": "TRX-2"},
        headers=office["headers"],
    )
    assert rest.status_code == 201, rest.text
    paid = await client.get(f"/v1/voucher-claims/{claim['id']}", headers=office["headers"])
    assert paid.json()["status"] == "paid"
    assert paid.json()["disbursed_amount"] == "2000.00"
    assert len(paid.json()["disbursements"]) == 2

    events = await client.get(
        f"/v1/voucher-claims/{claim['id']}/events", headers=bearer(enterprise["api_key"])
    )
    assert events.status_code == 200, events.text
    kinds = [e["kind"] for e in events.json()]
    assert kinds == ["submitted", "reviewed", "disbursed", "disbursed"]
    # An auditor recomputes each hash from the answer alone.
    for event in events.json():
        assert chain.link_hash(event) == event["hash"]
    async with db.sessionmaker() as session:
        assert await check(session) == []
        count, broken = await chain.verify(session)
    assert (count, broken) == (4, None)


async def test_the_refusals_in_their_order(client: AsyncClient) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    # Binjiang's claims for this year open only after the year ends: the window first,
    # even for orders that are not its own.
    closed = await file_claim(client, enterprise, [order], program_id="binjiang-compute-2025")
    assert closed.status_code == 409
    assert closed.json()["reason"] == "claims_not_open"
    # A deadline already past: claims_closed.
    await client.patch(
        f"/v1/subsidy-programs/{PROGRAM}", json={"claims_close": "01-01"}, headers=OPERATOR
    )
    year = today_shanghai().year
    late = await file_claim(client, enterprise, [order], year=year - 1)
    assert late.status_code == 409
    assert late.json()["reason"] == "claims_closed"
    await client.patch(
        f"/v1/subsidy-programs/{PROGRAM}", json={"claims_close": None}, headers=OPERATOR
    )
    # An order that is only reserved: not_settled.
    request = await create_request(client, enterprise, cards=8, hours=10)
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    reserved = await client.post(
        "/v1/orders", json={"quote_id": quote.json()["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert reserved.status_code == 201, reserved.text
    unsettled = await file_claim(client, enterprise, [order, reserved.json()])
    assert unsettled.status_code == 409
    assert unsettled.json()["reason"] == "not_settled"
    # Claimed under a program the order got nothing from: not_settled too.
    other = await file_claim(client, enterprise, [order], program_id="zj-province-compute-2025")
    assert other.status_code == 409
    assert other.json()["reason"] == "not_settled"
    # Filed once; the second filing of the same order: already_claimed.
    assert (await file_claim(client, enterprise, [order])).status_code == 201
    twice = await file_claim(client, enterprise, [order])
    assert twice.status_code == 409
    assert twice.json()["reason"] == "already_claimed"
    # Another enterprise's order is not there for it.
    _, _, stranger = await hz_market(client)
    foreign = await file_claim(client, stranger, [order])
    assert foreign.status_code == 422


async def test_checks_name_what_is_missing(client: AsyncClient) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    documents = await documents_for(client, enterprise, order, invoice="9000.00")
    filed = await file_claim(client, enterprise, [order], documents[:2])
    assert filed.status_code == 201, filed.text
    checks = {c["check"]: c for c in filed.json()["checks"]}
    assert checks["invoices_cover"]["passed"] is False
    assert "9000.00 < 9600.00" in checks["invoices_cover"]["detail"]
    assert checks["payments_cover"]["passed"] is False
    assert checks["documents_complete"]["passed"] is False
    assert "lacks payment" in checks["documents_complete"]["detail"]
    assert checks["related_parties"]["passed"] is True


async def test_rejection_releases_everything_and_frees_the_orders(client: AsyncClient) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    office = await reviewer(client)
    claim = (await file_claim(client, enterprise, [order])).json()
    no_reason = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "reject"},
        headers=office["headers"],
    )
    assert no_reason.status_code == 422
    rejected = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "reject", "reason": "no delivery record"},
        headers=office["headers"],
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert (await usage(client, enterprise))["settled"] == "0.00"
    again = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "approve"},
        headers=office["headers"],
    )
    assert again.status_code == 409
    # A rejected claim holds no order: it may be filed again.
    assert (await file_claim(client, enterprise, [order])).status_code == 201


async def test_returned_changed_and_resubmitted(client: AsyncClient) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    office = await reviewer(client)
    documents = await documents_for(client, enterprise, order)
    claim = (await file_claim(client, enterprise, [order], documents[:1])).json()
    returned = await client.post(
        f"/v1/voucher-claims/{claim['id']}/review",
        json={"decision": "return", "reason": "add the invoice and the payment"},
        headers=office["headers"],
    )
    assert returned.json()["status"] == "returned"
    # Only the filer changes it, only while returned.
    by_office = await client.patch(
        f"/v1/voucher-claims/{claim['id']}",
        json={"documents": documents},
        headers=office["headers"],
    )
    assert by_office.status_code == 403
    changed = await client.patch(
        f"/v1/voucher-claims/{claim['id']}",
        json={"documents": documents},
        headers=bearer(enterprise["api_key"]),
    )
    assert changed.status_code == 200, changed.text
    resubmitted = await client.post(
        f"/v1/voucher-claims/{claim['id']}/submit", headers=bearer(enterprise["api_key"])
    )
    assert resubmitted.status_code == 200, resubmitted.text
    body = resubmitted.json()
    assert body["status"] == "submitted"
    assert body["round"] == 2
    assert all(c["passed"] for c in body["checks"])
    again = await client.post(
        f"/v1/voucher-claims/{claim['id']}/submit", headers=bearer(enterprise["api_key"])
    )
    assert again.status_code == 409
    events = await client.get(f"/v1/voucher-claims/{claim['id']}/events", headers=office["headers"])
    assert [e["kind"] for e in events.json()] == ["submitted", "returned", "resubmitted"]
    # The edit is in the chain as the documents the resubmission put before the office
    # (claims.md names no event of its own for a PATCH of a returned claim).
    submitted, _, resubmission = events.json()
    assert [d["kind"] for d in submitted["data"]["documents"]] == ["contract"]
    chained = resubmission["data"]["documents"]
    assert [(d["kind"], d["evidence_id"]) for d in chained] == [
        (d["kind"], d["evidence_id"]) for d in documents
    ]
    assert chained == body["documents"]
    assert all(len(d["evidence_sha256"]) == 64 for d in chained)


async def test_dual_review_needs_two_different_reviewer_keys(client: AsyncClient) -> None:
    await client.patch(
        f"/v1/subsidy-programs/{PROGRAM}",
        json={
            "dual_review_above": "1000.00",
            "funding": [
                {"payer": "hangzhou-city", "share": "0.50"},
                {"payer": "gongshu-district", "share": "0.50"},
            ],
        },
        headers=OPERATOR,
    )
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    first, second = await reviewer(client), await reviewer(client)
    claim = (await file_claim(client, enterprise, [order])).json()
    url = f"/v1/voucher-claims/{claim['id']}/review"
    one = await client.post(url, json={"decision": "approve"}, headers=first["headers"])
    assert one.json()["status"] == "awaiting_second_review"
    same = await client.post(url, json={"decision": "approve"}, headers=first["headers"])
    assert same.status_code == 409
    assert same.json()["reason"] == "same_reviewer"
    two = await client.post(
        url, json={"decision": "approve", "approved_amount": "2880.00"}, headers=second["headers"]
    )
    assert two.json()["status"] == "approved"
    assert [r["reviewer_key_id"] for r in two.json()["reviews"]] == [first["id"], second["id"]]
    # 0.01 split in halves: each rounded down, the remainder to the first payer.
    paid = await client.post(
        f"/v1/voucher-claims/{claim['id']}/disbursements",
        json={"amount": "1000.01", "paid_on": "2027-02-10", "bank_reference": "TRX-9"},
        headers=second["headers"],
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["splits"] == [
        {"payer": "hangzhou-city", "share": "0.50", "amount": "500.01"},
        {"payer": "gongshu-district", "share": "0.50", "amount": "500.00"},
    ]


async def test_who_may_do_what(client: AsyncClient) -> None:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    claim = (await file_claim(client, enterprise, [order])).json()
    elsewhere = await reviewer(client, "binjiang-compute-2025")
    mine = await reviewer(client)
    url = f"/v1/voucher-claims/{claim['id']}"
    # A reviewer of another program does not see it; the enterprise never reviews.
    assert (await client.get(url, headers=elsewhere["headers"])).status_code == 404
    listed = await client.get("/v1/voucher-claims", headers=elsewhere["headers"])
    assert listed.json()["items"] == []
    own = await client.post(
        url + "/review", json={"decision": "approve"}, headers=bearer(enterprise["api_key"])
    )
    assert own.status_code == 403
    # The program's reviewer reads the claim and the order it covers, nothing else.
    assert (await client.get(url, headers=mine["headers"])).status_code == 200
    seen = await client.get(f"/v1/orders/{order['id']}", headers=mine["headers"])
    assert seen.status_code == 200
    assert (
        await client.get(f"/v1/orders/{order['id']}", headers=elsewhere["headers"])
    ).status_code == 404
    assert (await client.get("/v1/offers", headers=mine["headers"])).status_code == 403
    assert (
        await client.get(f"/v1/enterprises/{enterprise['id']}", headers=mine["headers"])
    ).status_code == 404
    listed = await client.get(
        "/v1/voucher-claims", params={"status": "submitted"}, headers=mine["headers"]
    )
    assert [c["id"] for c in listed.json()["items"]] == [claim["id"]]
    # A reviewer key needs programs that exist.
    bad = await client.post(
        "/v1/api-keys",
        json={"role": "reviewer", "program_ids": ["no-such-program"]},
        headers=OPERATOR,
    )
    assert bad.status_code == 422
    none = await client.post("/v1/api-keys", json={"role": "reviewer"}, headers=OPERATOR)
    assert none.status_code == 422
