"""The operator CLI (`computematch …`), through Typer's test runner against the test database."""

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.core.timeutil import today_shanghai
from app.models import ComputeRequest, Listing, Offer, Provider
from app.offers import service as offer_service
from tests.factories import (
    OPERATOR,
    T0,
    bearer,
    create_offer,
    create_provider,
    credit_code,
    offer_body,
)
from tests.ops.conftest import Cli
from tests.orders.test_flow import market, order, quote_for


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


async def count(db: Any, model: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def provider_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "name": "西湖智算中心",
        "kind": "intelligent_computing_center",
        "unified_social_credit_code": credit_code("330106"),
        "region_code": "330106",
        "status": "listed",
    }
    row.update(overrides)
    return row


def offer_row(code: str, **overrides: Any) -> dict[str, Any]:
    body = offer_body()
    row = {
        "provider_id": "",
        "unified_social_credit_code": code,
        **{k: v for k, v in body.items() if k != "workloads"},
        "workloads": "training;inference",
        "status": "active",
    }
    row.update(overrides)
    return row


# --------------------------------------------------------------------------- keys


async def test_create_key_prints_a_secret_that_works_and_revoke_key_stops_it(
    run: Cli, client: AsyncClient
) -> None:
    made = await run("create-key", "--role", "operator", "--name", "ops laptop")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("cm_")
    key_id = made.stderr.split("key id: ")[1].split()[0]
    assert (await client.get("/v1/accelerators", headers=bearer(secret))).status_code == 200

    revoked = await run("revoke-key", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {key_id}" in revoked.stdout
    assert (await client.get("/v1/accelerators", headers=bearer(secret))).status_code == 401

    again = await run("revoke-key", key_id)
    assert again.exit_code == 1
    assert "already revoked" in again.stderr
    unknown = await run("revoke-key", "key_nope")
    assert unknown.exit_code == 1
    assert "does not exist" in unknown.stderr


async def test_create_key_for_an_unknown_enterprise_fails_plainly(run: Cli) -> None:
    result = await run("create-key", "--role", "enterprise", "--enterprise-id", "ent_nope")
    assert result.exit_code == 1
    assert "no such enterprise" in result.stderr


# --------------------------------------------------------------------------- import


async def test_import_providers_creates_updates_and_refuses_with_reasons(
    run: Cli, client: AsyncClient, db: Any, tmp_path: Path
) -> None:
    existing = await create_provider(client, status="listed", region_code="330108")
    good = provider_row()
    rows = [
        good,
        provider_row(unified_social_credit_code="91330106MA2H2XWL3X", name="bad code"),
        provider_row(kind="cloud"),
        provider_row(unified_social_credit_code=good["unified_social_credit_code"]),
        # The existing provider: renamed and suspended (listed → suspended is allowed).
        provider_row(
            unified_social_credit_code=existing["unified_social_credit_code"],
            name="滨江新名字",
            region_code="330108",
            status="suspended",
        ),
        provider_row(status="suspended", name="born suspended"),
    ]
    path = write_csv(tmp_path / "providers.csv", rows)
    result = await run("import-csv", "providers", str(path), "--refused", str(tmp_path / "r.csv"))
    assert result.exit_code == 3, result.output
    assert "providers: 2 created, 1 updated, 0 unchanged, 3 refused" in result.stdout

    refused = read_csv(tmp_path / "r.csv")
    assert [r["line"] for r in refused] == ["3", "4", "5"]
    assert "check character" in refused[0]["reason"]
    assert refused[1]["reason"].startswith("kind:")
    assert "repeats line 2" in refused[2]["reason"]
    assert refused[0]["name"] == "bad code"  # the row as it was, to fix and import again

    listed = (await client.get("/v1/providers?limit=50", headers=OPERATOR)).json()["items"]
    by_code = {p["unified_social_credit_code"]: p for p in listed}
    assert by_code[good["unified_social_credit_code"]]["status"] == "listed"
    assert by_code[existing["unified_social_credit_code"]]["name"] == "滨江新名字"
    assert by_code[existing["unified_social_credit_code"]]["status"] == "suspended"
    assert by_code[rows[5]["unified_social_credit_code"]]["status"] == "suspended"

    # The same file again: nothing new; suspended → listed is allowed, delisted is final.
    again = await run("import-csv", "providers", str(path), "--refused", str(tmp_path / "r.csv"))
    assert "providers: 0 created, 0 updated, 3 unchanged, 3 refused" in again.stdout
    assert await count(db, Provider) == 3


async def test_an_illegal_status_move_is_refused_and_leaves_the_row_as_it_was(
    run: Cli, client: AsyncClient, tmp_path: Path
) -> None:
    provider = await create_provider(client, status="pending")
    path = write_csv(
        tmp_path / "p.csv",
        [
            provider_row(
                unified_social_credit_code=provider["unified_social_credit_code"],
                name="renamed",
                status="suspended",
            )
        ],
    )
    result = await run("import-csv", "providers", str(path))
    assert result.exit_code == 3
    assert "a pending provider cannot become suspended" in result.output
    assert (tmp_path / "p.refused.csv").exists()  # the default place, beside the file
    after = (await client.get(f"/v1/providers/{provider['id']}", headers=OPERATOR)).json()
    assert after["name"] == provider["name"]
    assert after["status"] == "pending"


async def test_import_listings_grants_and_refuses(
    run: Cli, client: AsyncClient, tmp_path: Path
) -> None:
    provider = await create_provider(client, lists=("hz-planned-icc",))
    code = provider["unified_social_credit_code"]
    rows = [
        {"unified_social_credit_code": code, "list": "binjiang-compute-partner",
         "since": "2025-07-01", "until": "", "reference": "杭高新〔2025〕9号"},
        {"unified_social_credit_code": code, "list": "hz-planned-icc",
         "since": "2024-01-01", "until": "", "reference": "test"},
        {"unified_social_credit_code": code, "list": "hz-matchmaking-partner",
         "since": "2024-06-01", "until": "2024-01-01", "reference": ""},
        {"unified_social_credit_code": code, "list": "no-such-list",
         "since": "2025-01-01", "until": "", "reference": ""},
        {"unified_social_credit_code": credit_code(), "list": "hz-planned-icc",
         "since": "2025-01-01", "until": "", "reference": ""},
    ]  # fmt: skip
    path = write_csv(tmp_path / "listings.csv", rows)
    result = await run("import-csv", "listings", str(path))
    assert result.exit_code == 3, result.output
    assert "listings: 1 created, 0 updated, 1 unchanged, 3 refused" in result.stdout
    reasons = [r["reason"] for r in read_csv(tmp_path / "listings.refused.csv")]
    assert "until must not be before since" in reasons[0]
    assert "unknown list 'no-such-list'" in reasons[1]
    assert "no provider with unified_social_credit_code" in reasons[2]
    lists = (await client.get(f"/v1/providers/{provider['id']}", headers=OPERATOR)).json()[
        "listings"
    ]
    assert {lst["list"] for lst in lists} == {"hz-planned-icc", "binjiang-compute-partner"}


async def test_import_offers_takes_domestic_from_the_catalog_and_refuses_bad_rows(
    run: Cli, client: AsyncClient, db: Any, tmp_path: Path
) -> None:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    code = provider["unified_social_credit_code"]
    rows = [
        offer_row(code, external_id="a", accelerator_id="huawei-ascend-910b", domestic=""),
        offer_row(code, external_id="b", accelerator_id="nvidia-h100-sxm", workloads="inference"),
        offer_row(code, external_id="c", accelerator_id="nvidia-h100-sxm", domestic="true"),
        offer_row(code, external_id="d", accelerator_id="no-such-card"),
        offer_row(code, external_id="e", price_per_card_hour="-1"),
        offer_row(code, external_id="f", available_until=T0.isoformat()),
        offer_row(credit_code(), external_id="g"),
        offer_row(code, external_id="a"),
        offer_row(code, external_id="h", region_code="330199"),
    ]
    rows[1].update(provider_id=provider["id"], unified_social_credit_code="")
    path = write_csv(tmp_path / "offers.csv", rows)
    result = await run("import-csv", "offers", str(path))
    assert result.exit_code == 3, result.output
    assert "offers: 2 created, 0 updated, 0 unchanged, 7 refused" in result.stdout
    reasons = {r["external_id"]: r["reason"] for r in read_csv(tmp_path / "offers.refused.csv")}
    assert "domestic flag comes from its accelerator" in reasons["c"]
    assert "unknown accelerator 'no-such-card'" in reasons["d"]
    assert reasons["e"].startswith("price_per_card_hour:")
    assert "available_from must be before available_until" in reasons["f"]
    assert "no provider" in reasons["g"]
    assert "repeats line 2" in reasons["a"]
    assert "330199 is not a GB/T 2260 county-level code" in reasons["h"]

    offers = (
        await client.get(f"/v1/offers?provider_id={provider['id']}", headers=OPERATOR)
    ).json()["items"]
    by_ext = {o["external_id"]: o for o in offers}
    assert by_ext["a"]["domestic"] is True
    assert by_ext["b"]["domestic"] is False
    assert by_ext["b"]["workloads"] == ["inference"]

    # Changed price on one, the other as it was: an update and an unchanged.
    rows[0]["price_per_card_hour"] = "9.50"
    again = await run("import-csv", "offers", str(write_csv(tmp_path / "o2.csv", rows[:2])))
    assert again.exit_code == 0, again.output
    assert "offers: 0 created, 1 updated, 1 unchanged, 0 refused" in again.stdout
    assert not (tmp_path / "o2.refused.csv").exists()
    assert await count(db, Offer) == 2


async def test_an_offer_update_that_would_drop_held_capacity_is_refused_alone(
    run: Cli, client: AsyncClient, tmp_path: Path
) -> None:
    provider, offer, enterprise = await market(client, cards_total=8)
    from tests.factories import T0, create_request

    soon = T0 + timedelta(days=1)
    request = await create_request(
        client,
        enterprise,
        cards=8,
        hours=10,
        earliest_start=soon.isoformat(),
        latest_start=soon.isoformat(),
    )  # a hold that is still live: it has not ended yet
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    code = provider["unified_social_credit_code"]
    rows = [
        offer_row(code, external_id=offer["external_id"], cards_total="4"),
        offer_row(code, external_id="new-one"),
    ]
    result = await run("import-csv", "offers", str(write_csv(tmp_path / "o.csv", rows)))
    assert result.exit_code == 3, result.output
    assert "offers: 1 created, 0 updated, 0 unchanged, 1 refused" in result.stdout
    [refused] = read_csv(tmp_path / "o.refused.csv")
    assert "cards held by live orders" in refused["reason"]
    kept = (await client.get(f"/v1/offers/{offer['id']}", headers=OPERATOR)).json()
    assert kept["cards_total"] == 8


async def test_nothing_is_imported_when_the_database_write_fails(
    run: Cli, client: AsyncClient, db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await create_provider(client)
    second = await create_provider(client)
    rows = [
        offer_row(first["unified_social_credit_code"], external_id="x1"),
        offer_row(second["unified_social_credit_code"], external_id="x2"),
    ]
    real_sync = offer_service.sync_offers
    calls = 0

    async def failing_sync(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first provider's offers are written; then the disk fills up
            raise OperationalError("INSERT INTO offers", {}, Exception("disk full"))
        return await real_sync(*args, **kwargs)

    monkeypatch.setattr(offer_service, "sync_offers", failing_sync)
    result = await run("import-csv", "offers", str(write_csv(tmp_path / "o.csv", rows)))
    assert result.exit_code == 1
    assert "nothing was imported" in result.stderr
    assert "disk full" in result.stderr
    assert await count(db, Offer) == 0
    assert not (tmp_path / "o.refused.csv").exists()


async def test_a_file_with_unknown_columns_is_refused_whole(
    run: Cli, db: Any, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", [{**provider_row(), "colour": "blue"}])
    result = await run("import-csv", "providers", str(path))
    assert result.exit_code == 2
    assert "unknown column(s) colour" in result.stderr
    missing = write_csv(tmp_path / "m.csv", [{"name": "x"}])
    result = await run("import-csv", "providers", str(missing))
    assert result.exit_code == 2
    assert "missing column(s)" in result.stderr
    assert await count(db, Provider) == 0


async def test_dry_run_checks_every_row_and_writes_nothing(
    run: Cli, db: Any, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", [provider_row(), provider_row(kind="cloud")])
    result = await run("import-csv", "providers", str(path), "--dry-run")
    assert result.exit_code == 3
    assert "dry run, nothing written: providers: 1 created, 0 updated" in result.stdout
    assert await count(db, Provider) == 0


# --------------------------------------------------------------------------- export


async def test_export_then_import_round_trips_unchanged(
    run: Cli, client: AsyncClient, tmp_path: Path
) -> None:
    provider = await create_provider(client, lists=("hz-planned-icc", "binjiang-compute-partner"))
    await client.delete(
        f"/v1/providers/{provider['id']}/listings/binjiang-compute-partner", headers=OPERATOR
    )
    await create_offer(client, provider, accelerator_id="nvidia-a100-sxm-80gb")
    await create_offer(client, provider, workloads=["inference"], free_migration_support=True)
    retired = await create_offer(client, provider)
    await client.delete(f"/v1/offers/{retired['id']}", headers=bearer(provider["api_key"]))

    for kind, expected in (("providers", 1), ("listings", 2), ("offers", 3)):
        path = tmp_path / f"{kind}.csv"
        exported = await run("export-csv", kind, str(path))
        assert exported.exit_code == 0, exported.output
        assert f"{expected} {kind} written" in exported.stdout
        assert len(read_csv(path)) == expected
        back = await run("import-csv", kind, str(path))
        assert back.exit_code == 0, back.output
        assert f"{kind}: 0 created, 0 updated, {expected} unchanged, 0 refused" in back.stdout

    offers = read_csv(tmp_path / "offers.csv")
    assert {o["workloads"] for o in offers} == {"training;inference", "inference"}
    assert {o["status"] for o in offers} == {"active", "retired"}
    assert all(o["unified_social_credit_code"] == provider["unified_social_credit_code"]
               for o in offers)  # fmt: skip
    to_stdout = await run("export-csv", "providers", "-")
    assert to_stdout.stdout.startswith("id,name,kind,unified_social_credit_code")


# --------------------------------------------------------------------------- reports and checks


async def test_voucher_report_as_csv_and_table(run: Cli, client: AsyncClient) -> None:
    _, offer, enterprise = await market(client, cards_total=64)
    from tests.factories import create_request

    request = await create_request(client, enterprise, cards=64, hours=720)
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    year = str(today_shanghai().year)  # the contract date is the day the order is placed

    as_csv = await run("voucher-report", "--year", year, "--format", "csv", "--top", "3")
    assert as_csv.exit_code == 0, as_csv.output
    rows = {r["program_id"]: r for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    binjiang = rows["binjiang-compute-2025"]
    assert binjiang["budget"] == "100000000.00"
    assert binjiang["reserved"] == "331776.00"
    assert binjiang["used"] == "331776.00"
    assert binjiang["remaining"] == "99668224.00"
    assert binjiang["rank"] == "1"
    assert binjiang["enterprise_id"] == enterprise["id"]
    assert binjiang["enterprise_used"] == "331776.00"
    assert rows["zj-province-compute-2025"]["budget"] == ""  # no annual budget
    assert rows["hz-city-compute-2024"]["enterprise_id"] == ""

    table = await run("voucher-report")
    assert table.exit_code == 0, table.output
    assert f"Compute vouchers {year}" in table.stdout
    assert "331776.00" in table.stdout
    assert enterprise["id"] in table.stdout
    empty_year = await run("voucher-report", "--year", "2030", "-f", "csv")
    assert "331776.00" not in empty_year.stdout


async def test_check_invariants_on_a_fresh_market(run: Cli) -> None:
    result = await run("check-invariants")
    assert result.exit_code == 0, result.output
    assert "all invariants hold" in result.stdout


async def test_demo_data_fills_an_empty_database_with_a_living_market(
    run: Cli, client: AsyncClient, db: Any
) -> None:
    result = await run(
        "demo-data", "--providers", "40", "--offers-per-provider", "5", "--enterprises", "12"
    )
    assert result.exit_code == 0, result.output
    assert "40 providers" in result.stdout
    async with db.sessionmaker() as session:
        lists = set(await session.scalars(select(Listing.list_id).distinct()))
        kinds = set(await session.scalars(select(Offer.domestic).distinct()))
        first_request = await session.scalar(select(ComputeRequest.id).limit(1))
    assert lists == {
        "hz-planned-icc",
        "hz-matchmaking-partner",
        "binjiang-compute-partner",
        "hz-ai-computing-center",
    }
    assert kinds == {True, False}
    assert first_request is not None

    requests = (await client.get("/v1/compute-requests?limit=100", headers=OPERATOR)).json()
    subsidised = 0
    for request in requests["items"][:5]:
        matches = await client.get(
            f"/v1/compute-requests/{request['id']}/matches?limit=3", headers=OPERATOR
        )
        assert matches.status_code == 200, matches.text
        subsidised += sum(1 for m in matches.json()["items"] if m["subsidy"]["program_id"])
    assert subsidised > 0

    skipped = await run("demo-data", "--if-empty")
    assert skipped.exit_code == 0
    assert "skipped" in skipped.stdout
