"""The claim events' chain: recomputable from the API, append-only in the database,
and `computematch verify-chain` names the first link that does not hold."""

import asyncio
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.claims import chain
from app.cli import cli
from app.config import get_settings
from app.core.db import Database
from app.core.timeutil import today_shanghai
from app.models import ClaimEvent
from tests.claims.helpers import file_claim, hz_market, reviewer, settled_order


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_the_hash_is_exactly_the_documented_one() -> None:
    # claims.md: sha256 hex of prev_hash + canonical JSON (sorted keys, no spaces,
    # non-ASCII kept) of every field but hash.
    event = {
        "seq": 1,
        "claim_id": "clm_1",
        "kind": "submitted",
        "at": "2027-01-05T02:00:00.000000Z",
        "actor": {"key_id": "key_1", "role": "enterprise"},
        "data": {"note": "滨江", "amount": "1.00"},
        "prev_hash": "0" * 64,
    }
    text_ = (
        '{"actor":{"key_id":"key_1","role":"enterprise"},"at":"2027-01-05T02:00:00.000000Z",'
        '"claim_id":"clm_1","data":{"amount":"1.00","note":"滨江"},"kind":"submitted",'
        '"prev_hash":"' + "0" * 64 + '","seq":1}'
    )
    expected = hashlib.sha256(("0" * 64 + text_).encode("utf-8")).hexdigest()
    assert chain.link_hash({**event, "hash": "ignored"}) == expected
    assert json.loads(text_) == event


async def _claims(client: Any) -> None:
    provider, offer, enterprise = await hz_market(client)
    office = await reviewer(client)
    for _ in range(2):
        order = await settled_order(client, provider, offer, enterprise)
        claim = (await file_claim(client, enterprise, [order])).json()
        approved = await client.post(
            f"/v1/voucher-claims/{claim['id']}/review",
            json={"decision": "approve"},
            headers=office["headers"],
        )
        assert approved.status_code == 200, approved.text


async def test_events_cannot_be_updated_or_deleted(client: Any, db: Database) -> None:
    await _claims(client)
    for statement in (
        update(ClaimEvent).where(ClaimEvent.seq == 2).values(kind="forged"),
        delete(ClaimEvent).where(ClaimEvent.seq == 4),
    ):
        async with db.sessionmaker() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(statement)
    async with db.sessionmaker() as session:
        assert await chain.verify(session) == (4, None)


async def test_verify_chain_names_the_first_broken_event(
    client: Any, db: Database, cli_env: CliRunner
) -> None:
    await _claims(client)
    ok = await asyncio.to_thread(cli_env.invoke, cli, ["verify-chain"])
    assert ok.exit_code == 0, ok.output
    assert "the chain of 4 claim events holds" in ok.output
    # Someone with the database's owner rights steps around the trigger and rewrites
    # event 3's amount: the chain says so, at event 3.
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.execute(text("DROP TRIGGER claim_events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE claim_events DISABLE TRIGGER USER"))
        await conn.execute(
            update(ClaimEvent).where(ClaimEvent.seq == 3).values(data={"amount": "999999.00"})
        )
        if db.is_sqlite:
            await conn.execute(text(chain.SQLITE_APPEND_ONLY[0]))
        else:
            await conn.execute(text("ALTER TABLE claim_events ENABLE TRIGGER USER"))
    broken = await asyncio.to_thread(cli_env.invoke, cli, ["verify-chain"])
    assert broken.exit_code == 1
    assert "claim event 3: hash does not match" in broken.output


async def test_claims_report_prints_the_year_and_writes_the_export(
    client: Any, cli_env: CliRunner, tmp_path: Any
) -> None:
    await _claims(client)
    year = str(today_shanghai().year)
    target = tmp_path / "claims.csv"
    result = await asyncio.to_thread(
        cli_env.invoke,
        cli,
        ["claims-report", "hz-city-compute-2024", "--year", year, "--export", str(target)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["claims"] == 2
    assert report["approved"] == report["claimed"]
    lines = target.read_bytes().decode("utf-8-sig").splitlines()
    assert len(lines) == 3  # the header and one row per claimed order part
    missing = await asyncio.to_thread(
        cli_env.invoke, cli, ["claims-report", "no-such-program", "--year", year]
    )
    assert missing.exit_code == 1
