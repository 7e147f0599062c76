"""Schemathesis against the real server, from the committed openapi/openapi.json.

Phases examples, coverage and fuzzing with a fixed seed and a bounded number of cases per
operation (FUZZ_MAX_EXAMPLES, default 30: about 4,000 requests, a minute or two). The
operator key may do anything, so every operation is reached. A small market is made first
and its ids are offered to the fuzzer for path parameters (and the ids a quote or an order
takes), so that most requests reach the services rather than a 404; the rest of the time
the ids are generated like any other input.

Checks: no 5xx, responses match their documented schema and content type, and input that
breaks the schema is refused with a 4xx. Every failure is fixed in the API or the
document, never excluded here.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.validators import make_credit_code
from tests.live_server import ROOT, LiveServer, live_server

DOCUMENT = ROOT / "openapi" / "openapi.json"
SEED = 20260301
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
PHASES = "examples,coverage,fuzzing"
CHECKS = (
    "not_a_server_error,response_schema_conformance,content_type_conformance,"
    "negative_data_rejection"
)
TIMEOUT_SECONDS = 540


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Rate limits would answer 429 to thousands of requests a minute and hide the API
    # behind them; they have tests of their own.
    with live_server(
        tmp_path_factory.mktemp("fuzz-server"),
        rate_limit_per_minute="0",
        registration_rate_limit_per_minute="0",
    ) as running:
        yield running


def make_market(server: LiveServer) -> dict[str, list[str]]:
    """A provider with an offer, an enterprise with a request, a quote and an order."""
    headers = {"Authorization": f"Bearer {server.operator_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:

        def post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
            response = client.post(path, json=body)
            assert response.status_code == status, response.text
            answer: dict[str, Any] = response.json()
            return answer

        provider = post(
            "/v1/providers",
            {
                "name": "Fuzz Computing Center",
                "kind": "intelligent_computing_center",
                "unified_social_credit_code": make_credit_code("330108", 424242),
                "region_code": "330108",
                "status": "listed",
            },
        )
        post(
            f"/v1/providers/{provider['id']}/listings",
            {"list": "binjiang-compute-partner", "since": "2025-07-01"},
        )
        offer = post(
            "/v1/offers",
            {
                "provider_id": provider["id"],
                "external_id": "fuzz-1",
                "accelerator_id": "huawei-ascend-910b",
                "cards_total": 512,
                "price_per_card_hour": "12.00",
                "available_from": "2026-01-01T00:00:00+08:00",
                "available_until": "2030-01-01T00:00:00+08:00",
                "region_code": "330108",
            },
        )
        enterprise = post(
            "/v1/enterprises",
            {
                "name": "Fuzz Model Works",
                "unified_social_credit_code": make_credit_code("330108", 434343),
                "region_code": "330108",
                "is_foundation_model_enterprise": True,
            },
        )
        request = post(
            "/v1/compute-requests",
            {
                "enterprise_id": enterprise["id"],
                "cards": 8,
                "hours": 100,
                "earliest_start": "2027-01-01T00:00:00+08:00",
                "latest_start": "2027-06-01T00:00:00+08:00",
                "purpose": "training",
            },
        )
        quote = post("/v1/quotes", {"request_id": request["id"], "offer_id": offer["id"]})
        spare = post("/v1/quotes", {"request_id": request["id"], "offer_id": offer["id"]})
        order = post("/v1/orders", {"quote_id": quote["id"]})
        key = post("/v1/api-keys", {"role": "provider", "provider_id": provider["id"]})
    return {
        "key_id": [key["id"]],
        "accelerator_id": ["huawei-ascend-910b", "nvidia-h100-sxm"],
        "provider_id": [provider["id"]],
        "list_id": ["binjiang-compute-partner"],
        "offer_id": [offer["id"]],
        "enterprise_id": [enterprise["id"]],
        "program_id": ["binjiang-compute-2025", "hz-city-compute-2024"],
        "request_id": [request["id"]],
        "quote_id": [quote["id"], spare["id"]],
        "order_id": [order["id"]],
    }


def config(ids: dict[str, list[str]]) -> str:
    """schemathesis.toml: the market's ids as dictionaries, no state kept between runs."""
    lines = ["[cache]", "enabled = false", "", "[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(values)} }}" for name, values in ids.items()]
    lines += ["", "[parameters]"]
    for name in ids:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}')
    for name in ("request_id", "offer_id", "quote_id"):  # what quotes and orders take
        lines.append(f'"body.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_nothing(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(config(make_market(server)))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(settings),
        "run",
        str(DOCUMENT),
        "--url",
        server.base_url,
        "--header",
        f"Authorization: Bearer {server.operator_key}",
        "--phases",
        PHASES,
        "--checks",
        CHECKS,
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    output = result.stdout + result.stderr
    found = re.search(r"Test cases:\s*\n\s*(\d+) generated", output)
    database = "postgresql" if "postgresql" in server.database_url else "sqlite"
    with capsys.disabled():
        cases = found.group(1) if found else "?"
        print(f"\nschemathesis ({database}, seed {SEED}): {cases} cases, exit {result.returncode}")
    assert result.returncode == 0, output[-20_000:]
    assert found, output[-5_000:]
    assert int(found.group(1)) > 0, output[-5_000:]
    assert "unhandled error" not in server.log.read_text(errors="replace"), server.log_tail()
