"""The claims pages: the queue, a claim, and its review and disbursement forms, with
the API's own object-level rules and refusals."""

import re
from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from app.console.i18n import money
from tests.claims.helpers import (
    PROGRAM,
    documents_for,
    file_claim,
    hz_market,
    reviewer,
    settled_order,
)
from tests.conftest import OPERATOR_KEY
from tests.console.conftest import csrf_of, new_browser, sign_in

XSS = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
VERSION = re.compile(r'name="version" value="(\d+)"')


async def a_claim(client: AsyncClient, *, number: str = "HT-1") -> dict[str, Any]:
    provider, offer, enterprise = await hz_market(client)
    order = await settled_order(client, provider, offer, enterprise)
    documents = await documents_for(client, enterprise, order)
    documents[0]["number"] = number
    filed = await file_claim(client, enterprise, [order], documents)
    assert filed.status_code == 201, filed.text
    claim: dict[str, Any] = filed.json()
    return claim


def form_of(html: str) -> tuple[str, str]:
    found = VERSION.search(html)
    assert found, "the page has no form with the claim's version"
    return csrf_of(html), found.group(1)


async def test_a_reviewer_sees_its_programs_and_claims_only(app: Any, client: AsyncClient) -> None:
    claim = await a_claim(client)
    mine = await reviewer(client, PROGRAM)
    other = await reviewer(client, "binjiang-compute-2025")
    async with new_browser(app) as b:
        assert (await sign_in(b, mine["key"])).status_code == 303
        programs = (await b.get("/console/")).text
        assert PROGRAM in programs
        assert "binjiang-compute-2025" not in programs
        assert (await b.get("/console/programs/binjiang-compute-2025")).status_code == 404
        queue = await b.get("/console/claims", params={"status": "submitted"})
        assert claim["id"] in queue.text
        page = await b.get(f"/console/claims/{claim['id']}")
        assert page.status_code == 200
        # The documents' amounts are money too, not their JSON text.
        invoice = next(d for d in claim["documents"] if d["kind"] == "invoice")
        assert f">{invoice['amount']}<" not in page.text
        assert money(Decimal(invoice["amount"])) in page.text
    async with new_browser(app) as b:
        await sign_in(b, other["key"])
        assert claim["id"] not in (await b.get("/console/claims")).text
        assert (await b.get(f"/console/claims/{claim['id']}")).status_code == 404


async def test_approving_a_claim_moves_the_programs_figures(app: Any, client: AsyncClient) -> None:
    claim = await a_claim(client)
    key = await reviewer(client, PROGRAM)
    async with new_browser(app) as b:
        await sign_in(b, key["key"])
        before = (await b.get("/console/", params={"year": claim["year"]})).text
        page = await b.get(f"/console/claims/{claim['id']}")
        csrf, version = form_of(page.text)
        done = await b.post(
            f"/console/claims/{claim['id']}/review",
            data={"csrf_token": csrf, "version": version, "decision": "approve"},
        )
        assert done.status_code == 303, done.text
        shown = await client.get(f"/v1/voucher-claims/{claim['id']}", headers=key["headers"])
        assert shown.json()["status"] == "approved"
        after = (await b.get("/console/", params={"year": claim["year"]})).text
        assert before != after
        assert money(Decimal(claim["amount"])) in after.split(PROGRAM, 1)[1]
        # Paid from the claim's page: the claim is paid, split by the program's funding.
        page = await b.get(f"/console/claims/{claim['id']}")
        csrf, version = form_of(page.text)
        paid = await b.post(
            f"/console/claims/{claim['id']}/disbursements",
            data={
                "csrf_token": csrf,
                "version": version,
                "amount": claim["amount"],
                "paid_on": "2026-06-01",
                "bank_reference": "BANK-" + XSS,
            },
        )
        assert paid.status_code == 303, paid.text
        page = await b.get(f"/console/claims/{claim['id']}")
        assert "BANK-" + ESCAPED in page.text
        assert "<script" not in page.text
    shown = await client.get(f"/v1/voucher-claims/{claim['id']}", headers=key["headers"])
    assert shown.json()["status"] == "paid"


async def test_a_form_already_acted_on_is_not_applied_twice(app: Any, client: AsyncClient) -> None:
    claim = await a_claim(client)
    key = await reviewer(client, PROGRAM)
    async with new_browser(app) as b:
        await sign_in(b, key["key"])
        csrf, version = form_of((await b.get(f"/console/claims/{claim['id']}")).text)
        data = {"csrf_token": csrf, "version": version, "decision": "approve"}
        assert (await b.post(f"/console/claims/{claim['id']}/review", data=data)).status_code == 303
        again = await b.post(f"/console/claims/{claim['id']}/review", data=data)
        assert again.status_code == 409
    events = await client.get(f"/v1/voucher-claims/{claim['id']}/events", headers=key["headers"])
    assert [e["kind"] for e in events.json()].count("reviewed") == 1


async def test_a_reason_is_required_to_reject_and_is_shown_as_text(
    app: Any, client: AsyncClient
) -> None:
    claim = await a_claim(client, number="HT-" + XSS)
    key = await reviewer(client, PROGRAM)
    async with new_browser(app) as b:
        await sign_in(b, key["key"])
        page = await b.get(f"/console/claims/{claim['id']}")
        assert "HT-" + ESCAPED in page.text
        assert "<script" not in page.text
        csrf, version = form_of(page.text)
        bare = await b.post(
            f"/console/claims/{claim['id']}/review",
            data={"csrf_token": csrf, "version": version, "decision": "reject"},
        )
        assert bare.status_code in (409, 422)
        assert 'role="alert"' in bare.text
        rejected = await b.post(
            f"/console/claims/{claim['id']}/review",
            data={"csrf_token": csrf, "version": version, "decision": "reject", "reason": XSS},
        )
        assert rejected.status_code == 303
        page = await b.get(f"/console/claims/{claim['id']}")
        assert ESCAPED in page.text
        assert "<script" not in page.text


async def test_a_review_without_the_sessions_token_changes_nothing(
    app: Any, client: AsyncClient
) -> None:
    claim = await a_claim(client)
    async with new_browser(app) as b:
        await sign_in(b, OPERATOR_KEY)
        _, version = form_of((await b.get(f"/console/claims/{claim['id']}")).text)
        forged = await b.post(
            f"/console/claims/{claim['id']}/review",
            data={"csrf_token": "forged", "version": version, "decision": "approve"},
        )
        assert forged.status_code == 403
    shown = await client.get(
        f"/v1/voucher-claims/{claim['id']}", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    )
    assert shown.json()["status"] == "submitted"


async def test_evidence_opens_as_a_download_for_the_programs_reviewer_only(
    app: Any, client: AsyncClient
) -> None:
    claim = await a_claim(client)
    evidence_id = claim["documents"][0]["evidence_id"]
    mine = await reviewer(client, PROGRAM)
    other = await reviewer(client, "binjiang-compute-2025")
    async with new_browser(app) as b:
        await sign_in(b, mine["key"])
        page = await b.get(f"/console/claims/{claim['id']}")
        assert f'href="/console/evidence/{evidence_id}"' in page.text
        # The event chain with its hashes, the actor as a role and key, not a mapping.
        events = await client.get(
            f"/v1/voucher-claims/{claim['id']}/events", headers=mine["headers"]
        )
        assert events.status_code == 200, events.text
        for event in events.json():
            assert event["hash"] in page.text
            assert event["prev_hash"] in page.text
        assert "key_id" not in page.text
        # The queue marks each check: every check of this claim passed.
        queue = (await b.get("/console/claims", params={"status": "submitted"})).text
        row = queue.split(claim["id"], 1)[1].split("</tr>", 1)[0]
        assert row.count('class="ok"') == len(claim["checks"]) > 0
        assert 'class="bad"' not in row
        got = await b.get(f"/console/evidence/{evidence_id}")
        assert got.status_code == 200
        assert got.content.startswith(b"%PDF")
        assert got.headers["content-disposition"] == "attachment"
        assert got.headers["x-content-type-options"] == "nosniff"
    async with new_browser(app) as b:
        await sign_in(b, other["key"])
        assert (await b.get(f"/console/evidence/{evidence_id}")).status_code == 404
    async with new_browser(app) as b:
        assert (await b.get(f"/console/evidence/{evidence_id}")).status_code == 303
