"""The auditor's check: export a program's year, recompute every row's subsidy from
the rules and the executed amount, and verify the chain the rows point into; the XLSX
says what the CSV says; the report adds up."""

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from openpyxl import load_workbook

from app.claims import chain, reports
from app.claims.reports import COLUMNS
from app.core.db import Database
from app.core.money import round_down
from app.core.timeutil import today_shanghai
from tests.claims.helpers import PROGRAM, documents_for, file_claim, hz_market, reviewer
from tests.claims.helpers import settled_order as settle
from tests.factories import OPERATOR, bearer


async def a_year_of_claims(client: AsyncClient) -> dict[str, Any]:
    """Claims in every status, from two enterprises, with documents."""
    provider, offer, first = await hz_market(client)
    second = (await hz_market(client))[2]
    office, other = await reviewer(client), await reviewer(client)
    claims: dict[str, Any] = {}
    for status, enterprise, hours in (
        ("paid", first, 100),
        ("approved", first, 50),
        ("rejected", second, 20),
        ("returned", second, 30),
        ("submitted", first, 10),
    ):
        order = await settle(client, provider, offer, enterprise, hours=hours)
        documents = await documents_for(client, enterprise, order)
        claim = (await file_claim(client, enterprise, [order], documents)).json()
        url = f"/v1/voucher-claims/{claim['id']}"
        if status in ("paid", "approved"):
            await client.post(
                url + "/review",
                json={"decision": "approve", "approved_amount": "500.00"},
                headers=office["headers"],
            )
        if status == "paid":
            await client.post(
                url + "/disbursements",
                json={"amount": "500.00", "paid_on": "2027-02-01", "bank_reference": "B-1"},
                headers=other["headers"],
            )
        if status in ("rejected", "returned"):
            decision = "reject" if status == "rejected" else "return"
            await client.post(
                url + "/review",
                json={"decision": decision, "reason": "audit sample"},
                headers=office["headers"],
            )
        got = await client.get(url, headers=OPERATOR)
        assert got.json()["status"] == status
        claims[status] = got.json()
    return {"claims": claims, "office": office, "enterprise": first}


async def test_export_recompute_and_verify(client: AsyncClient, db: Database) -> None:
    world = await a_year_of_claims(client)
    office = world["office"]
    year = today_shanghai().year
    resp = await client.get(
        "/v1/voucher-claims/export",
        params={"program_id": PROGRAM, "year": year, "format": "csv"},
        headers=office["headers"],
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert list(rows[0]) == list(COLUMNS)
    assert {r["claim_status"] for r in rows} == {
        "paid",
        "approved",
        "rejected",
        "returned",
        "submitted",
    }
    latest: dict[str, str] = {}
    for row in rows:
        # The rules: rate × executed amount, rounded down to the fen.
        recomputed = round_down(Decimal(row["rate"]) * Decimal(row["executed_amount"]))
        assert Decimal(row["subsidy_settled"]) == recomputed, row
        assert Decimal(row["subsidy_paid"]) <= Decimal(row["subsidy_approved"])
        assert Decimal(row["subsidy_approved"]) <= Decimal(row["subsidy_settled"])
        assert row["evidence_sha256"].count(" ") == 2  # contract, invoice, payment
        latest[row["claim_id"]] = row["latest_event_hash"]
    # Each row's hash is its claim's last link, and every link recomputes.
    for claim_id, digest in latest.items():
        events = (
            await client.get(f"/v1/voucher-claims/{claim_id}/events", headers=office["headers"])
        ).json()
        assert events[-1]["hash"] == digest
        assert all(chain.link_hash(e) == e["hash"] for e in events)
    async with db.sessionmaker() as session:
        count, broken = await chain.verify(session)
    assert broken is None
    assert count == 10  # 5 filed, 4 decided, 1 paid

    xlsx = await client.get(
        "/v1/voucher-claims/export",
        params={"program_id": PROGRAM, "year": year, "format": "xlsx"},
        headers=OPERATOR,
    )
    assert xlsx.status_code == 200, xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True)["claims"]
    cells = [[c if c is not None else "" for c in r] for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == list(COLUMNS)
    assert cells[1:] == [list(r.values()) for r in rows]


async def test_the_report_adds_up_and_is_the_office_s(client: AsyncClient) -> None:
    world = await a_year_of_claims(client)
    year = today_shanghai().year
    url = f"/v1/subsidy-programs/{PROGRAM}/report"
    resp = await client.get(url, params={"year": year}, headers=world["office"]["headers"])
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["claims"] == 5
    claims = world["claims"]
    live = [c for s, c in claims.items() if s != "rejected"]
    assert Decimal(report["claimed"]) == sum(Decimal(c["amount"]) for c in live)
    assert report["approved"] == "1000.00"
    assert report["paid"] == "500.00"
    assert report["by_payer"] == [{"payer": PROGRAM, "paid": "500.00"}]
    assert sum(Decimal(d["approved"]) for d in report["by_district"]) == Decimal("1000.00")
    assert [o["origin"] for o in report["by_origin"]] == ["domestic"]
    assert report["top_enterprises"][0]["enterprise_id"] == world["enterprise"]["id"]
    budget = Decimal(report["budget"])
    used = Decimal(report["reserved"]) + Decimal(report["settled"])
    assert Decimal(report["remaining"]) == budget - used
    enterprise = world["enterprise"]
    refused = await client.get(url, params={"year": year}, headers=bearer(enterprise["api_key"]))
    assert refused.status_code == 404
    export = await client.get(
        "/v1/voucher-claims/export",
        params={"program_id": PROGRAM, "year": year},
        headers=bearer(enterprise["api_key"]),
    )
    assert export.status_code == 403


async def test_the_export_is_the_same_a_claim_a_page(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await a_year_of_claims(client)
    params = {"program_id": PROGRAM, "year": today_shanghai().year}
    whole = {
        fmt: await client.get(
            "/v1/voucher-claims/export", params={**params, "format": fmt}, headers=OPERATOR
        )
        for fmt in ("csv", "xlsx")
    }
    monkeypatch.setattr(reports, "PAGE", 1)
    paged = await client.get("/v1/voucher-claims/export", params=params, headers=OPERATOR)
    assert paged.content == whole["csv"].content
    assert paged.content.count(b"\r\n") == 1 + 5  # the header and one row per claimed part
    book = await client.get(
        "/v1/voucher-claims/export", params={**params, "format": "xlsx"}, headers=OPERATOR
    )
    assert book.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )

    def cells(content: bytes) -> list[list[Any]]:
        sheet = load_workbook(io.BytesIO(content), read_only=True)["claims"]
        return [list(r) for r in sheet.iter_rows(values_only=True)]

    assert cells(book.content) == cells(whole["xlsx"].content)
    assert len(cells(book.content)) == 6
