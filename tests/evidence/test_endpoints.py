"""Evidence uploads: PDF, PNG and JPEG by their magic bytes, at most 10 MiB, stored in the
database once per owner and content, read by their owner, a reviewer of a claim citing
them and the operator."""

import hashlib

import pytest
from httpx import AsyncClient

from app.core.db import Database
from tests.claims.helpers import JPEG, PDF, PNG, hz_market, reviewer, upload
from tests.factories import OPERATOR, bearer
from tests.security.conftest import changed_tables, snapshot


@pytest.mark.parametrize(
    ("content", "media_type"),
    [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")],
)
async def test_upload_and_read_back(client: AsyncClient, content: bytes, media_type: str) -> None:
    _, _, enterprise = await hz_market(client)
    headers = bearer(enterprise["api_key"])
    resp = await upload(client, headers, content, name="发票.bin", media_type=media_type)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["media_type"] == media_type
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["size_bytes"] == len(content)
    assert body["filename"] == "发票.bin"
    meta = await client.get(f"/v1/evidence/{body['id']}", headers=headers)
    assert meta.json() == body
    raw = await client.get(f"/v1/evidence/{body['id']}/content", headers=headers)
    assert raw.status_code == 200
    assert raw.content == content
    assert raw.headers["content-type"] == media_type
    # The same bytes again from the same party: the same record.
    again = await upload(client, headers, content, media_type="application/octet-stream")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    # The same bytes from another party: a record of its own.
    _, _, other = await hz_market(client)
    theirs = await upload(client, bearer(other["api_key"]), content, media_type=media_type)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != body["id"]


async def test_lies_empties_and_oversize_store_nothing(client: AsyncClient, db: Database) -> None:
    _, _, enterprise = await hz_market(client)
    headers = bearer(enterprise["api_key"])
    before = await snapshot(db)
    lying = await upload(client, headers, PNG, media_type="application/pdf")
    assert lying.status_code == 422
    assert "image/png" in lying.json()["detail"]
    text = await upload(client, headers, b"just text", media_type="application/pdf")
    assert text.status_code == 422
    empty = await upload(client, headers, b"", media_type="application/pdf")
    assert empty.status_code == 422
    huge = await upload(client, headers, PDF + b"\0" * (11 * 1024 * 1024))
    assert huge.status_code == 413
    assert huge.headers["content-type"].startswith("application/problem+json")
    just_over = await upload(client, headers, PDF + b"\0" * (10 * 1024 * 1024 - len(PDF) + 1))
    assert just_over.status_code == 413
    assert changed_tables(before, await snapshot(db)) == []
    # Exactly 10 MiB is allowed, past the app's general body limit.
    limit = await upload(client, headers, PDF + b"\0" * (10 * 1024 * 1024 - len(PDF)))
    assert limit.status_code == 201, limit.text


async def test_only_the_owner_the_operator_and_a_citing_reviewer_read_it(
    client: AsyncClient,
) -> None:
    provider, _, enterprise = await hz_market(client)
    resp = await upload(client, bearer(enterprise["api_key"]))
    evidence = resp.json()["id"]
    office = await reviewer(client)
    for headers, status in (
        (OPERATOR, 200),
        (bearer(provider["api_key"]), 404),
        (office["headers"], 404),  # no claim of its programs cites it
    ):
        got = await client.get(f"/v1/evidence/{evidence}/content", headers=headers)
        assert got.status_code == status
    refused = await upload(client, office["headers"])
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"file": "JVBERi0xLjQ="}', "application/json"),
        (PDF, "application/pdf"),
        (PDF, "application/octet-stream"),
        (b"file=abc", "application/x-www-form-urlencoded"),
        (PDF, None),
    ],
)
async def test_a_body_that_is_not_multipart_is_415_naming_multipart(
    client: AsyncClient, db: Database, body: bytes, content_type: str | None
) -> None:
    _, _, enterprise = await hz_market(client)
    headers = bearer(enterprise["api_key"])
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = await snapshot(db)
    resp = await client.post("/v1/evidence", content=body, headers=headers)
    assert resp.status_code == 415, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "multipart/form-data" in resp.json()["detail"]
    assert changed_tables(before, await snapshot(db)) == []
    # Without a key it is a 401 first, as on any request.
    anonymous = await client.post(
        "/v1/evidence", content=body, headers={"Content-Type": content_type or "text/plain"}
    )
    assert anonymous.status_code == 401
