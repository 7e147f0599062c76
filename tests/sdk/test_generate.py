"""Generation keeps up with the document: operations the API gains (here a claims-like
resource, a multipart upload, a binary download, a decimal query parameter) get their
resource and methods, and the package still passes mypy --strict."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sdk.generate import DOCUMENT, generate
from tests.sdk.conftest import STEP_SECONDS, run

pytestmark = pytest.mark.slow

PROBLEM = {
    "description": "Not found",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def operation(operation_id: str, tag: str, **fields: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "tags": [tag], "summary": operation_id, **fields}


def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def extended(document: dict[str, Any]) -> dict[str, Any]:
    grown = copy.deepcopy(document)
    money = {"type": "string", "pattern": "^[0-9]{1,13}(\\.[0-9]{1,2})?$"}
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
    }
    grown["paths"].update(
        {
            "/v1/voucher-claims": {
                "post": operation(
                    "create_voucher_claim",
                    "claims",
                    parameters=[key],
                    requestBody={"required": True, **ref("OrderComplete")},
                    responses={"201": {"description": "Filed", **ref("OrderOut")}, "404": PROBLEM},
                ),
                "get": operation(
                    "list_voucher_claims",
                    "claims",
                    parameters=[
                        query("limit", {"type": "integer", "default": 50}),
                        query("cursor", {"anyOf": [{"type": "string"}, {"type": "null"}]}),
                    ],
                    responses={"200": {"description": "A page", **ref("Page_OrderOut_")}},
                ),
            },
            "/v1/voucher-claims/{claim_id}/submit": {
                "post": operation(
                    "submit_voucher_claim",
                    "claims",
                    parameters=[path_id("claim_id")],
                    responses={"200": {"description": "Submitted", **ref("OrderOut")}},
                )
            },
            "/v1/evidence": {
                "post": operation(
                    "upload_evidence",
                    "claims",
                    requestBody={
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "title": "EvidenceUpload",
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                    "required": ["file"],
                                }
                            }
                        },
                    },
                    responses={"201": {"description": "Stored", **ref("OrderOut")}},
                )
            },
            "/v1/evidence/{evidence_id}/content": {
                "get": operation(
                    "get_evidence_content",
                    "claims",
                    parameters=[path_id("evidence_id")],
                    responses={
                        "200": {
                            "description": "The bytes",
                            "content": {
                                "application/pdf": {
                                    "schema": {"type": "string", "format": "binary"}
                                }
                            },
                        }
                    },
                )
            },
            "/v1/price-index": {
                "get": operation(
                    "get_price_index",
                    "market",
                    parameters=[query("max_price", {"anyOf": [money, {"type": "null"}]})],
                    responses={"200": {"description": "The index", **ref("SyncResult")}},
                )
            },
        }
    )
    return grown


CHECK = """
import inspect
from decimal import Decimal
from computematch_client import Computematch
api = Computematch("http://api.test", "key")
claims = api.voucher_claims
assert "create_voucher_claim" in claims.create.__doc__
assert "submit_voucher_claim" in claims.submit.__doc__
assert "list_voucher_claims" in claims.list.__doc__
assert "cursor" not in inspect.signature(claims.iter).parameters
assert "upload_evidence" in api.evidence.create.__doc__
assert "get_evidence_content" in api.evidence.get_content.__doc__
hint = inspect.signature(api.price_index.get).parameters["max_price"].annotation
assert "Decimal" in str(hint), hint
print("grown ok")
"""


def test_operations_the_api_gains_get_their_resource_and_methods(tmp_path: Path) -> None:
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(extended(json.loads(DOCUMENT.read_text()))))
    project = generate(force=True, source=source, out=tmp_path / "sdk")
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "grown ok"
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    checked = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--no-incremental",
            "--package",
            "computematch_client",
        ],
        cwd=project,
    )
    assert "Success" in checked
