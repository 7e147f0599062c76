"""Every operation of the OpenAPI document: who may call it, and how to call it.

The authorization matrices (API1, API5) walk `app.openapi()` and look each
operation up here; an operation missing from `OPERATIONS` fails them, naming
it, so a new path cannot ship without saying who may use it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient, Response

from app.core.validators import make_credit_code
from tests.factories import offer_body, request_body
from tests.security.conftest import PARTIES, RELAXED_PROGRAM, World
from tests.subsidies.test_endpoints import district_program

ALL = frozenset(PARTIES)
PROVIDERS = frozenset({"provider_a", "provider_b"})
ENTERPRISES = frozenset({"enterprise_a", "enterprise_b"})
REVIEWERS = frozenset({"reviewer_a", "reviewer_b"})
# The market's own parties: a reviewer key acts on its programs' claims only.
MARKET = PROVIDERS | ENTERPRISES
NOBODY: frozenset[str] = frozenset()

Ids = Callable[[World], dict[str, str]]
Body = Callable[[World], Any]


@dataclass(frozen=True)
class Op:
    """One operation: which parties may call it (the operator always may), and a valid call.

    `allowed` names the parties (of `PARTIES`) who may; everyone else is refused.
    `operator_only`: refused to every provider and enterprise key with 403 (API5).
    `ids` fills the path's parameters with A's objects; `body` is a request that
    would succeed for an allowed caller, so that only authorization can refuse it.
    """

    allowed: frozenset[str]
    ids: Ids | None = None
    body: Body | None = None
    operator_only: bool = False
    public: bool = False  # needs no key at all (health probes)


def _none(_: World) -> dict[str, str]:
    return {}


def offer_id(w: World) -> dict[str, str]:
    return {"offer_id": w.offer_a["id"]}


def provider_id(w: World) -> dict[str, str]:
    return {"provider_id": w.provider_a["id"]}


def enterprise_id(w: World) -> dict[str, str]:
    return {"enterprise_id": w.enterprise_a["id"]}


def request_id(w: World) -> dict[str, str]:
    return {"request_id": w.request_a["id"]}


def order_id(w: World) -> dict[str, str]:
    return {"order_id": w.order_a["id"]}


def claim_id(w: World) -> dict[str, str]:
    return {"claim_id": w.claim_a["id"]}


def evidence_id(w: World) -> dict[str, str]:
    return {"evidence_id": w.evidence_a["id"]}


_codes = iter(range(700_001, 800_000))


def _provider_body(_: World) -> dict[str, Any]:
    return {
        "name": "Hostile provider",
        "kind": "matchmaking_partner",
        "unified_social_credit_code": make_credit_code("330108", next(_codes)),
        "region_code": "330108",
    }


def _enterprise_body(_: World) -> dict[str, Any]:
    return {
        "name": "Hostile enterprise",
        "unified_social_credit_code": make_credit_code("330108", next(_codes)),
        "region_code": "330108",
    }


def _subsidy_quote(_: World) -> dict[str, Any]:
    return {
        "enterprise": {"region_code": "330108", "is_foundation_model_enterprise": False},
        "provider": {"lists": ["binjiang-compute-partner"], "status": "listed"},
        "domestic": True,
        "purpose": "training",
        "gross_amount": "1000.00",
        "contract_date": "2026-03-01",
    }


OPERATIONS: dict[tuple[str, str], Op] = {
    # api keys: the operator's alone.
    ("GET", "/v1/api-keys"): Op(NOBODY, operator_only=True),
    ("POST", "/v1/api-keys"): Op(
        NOBODY, body=lambda w: {"role": "operator", "name": "escalation"}, operator_only=True
    ),
    ("DELETE", "/v1/api-keys/{key_id}"): Op(
        NOBODY, ids=lambda w: {"key_id": w.key_id_a}, operator_only=True
    ),
    # the catalog: any key reads, the operator writes.
    ("GET", "/v1/accelerators"): Op(ALL),
    ("POST", "/v1/accelerators"): Op(
        NOBODY,
        body=lambda w: {
            "id": "hostile-accelerator",
            "vendor": "Hostile",
            "model": "X1",
            "domestic": True,
            "memory_gb": 64,
            "bf16_tflops": 100.0,
            "source": "test",
        },
        operator_only=True,
    ),
    ("GET", "/v1/accelerators/{accelerator_id}"): Op(
        ALL, ids=lambda w: {"accelerator_id": "huawei-ascend-910b"}
    ),
    ("PATCH", "/v1/accelerators/{accelerator_id}"): Op(
        NOBODY,
        ids=lambda w: {"accelerator_id": "huawei-ascend-910b"},
        body=lambda w: {"domestic": False},
        operator_only=True,
    ),
    # providers: the operator; a provider reads and renames itself.
    ("GET", "/v1/providers"): Op(MARKET),
    ("POST", "/v1/providers"): Op(NOBODY, body=_provider_body, operator_only=True),
    ("GET", "/v1/providers/{provider_id}"): Op(frozenset({"provider_a"}), ids=provider_id),
    ("PATCH", "/v1/providers/{provider_id}"): Op(
        frozenset({"provider_a"}), ids=provider_id, body=lambda w: {"name": "Taken over"}
    ),
    ("POST", "/v1/providers/{provider_id}/status"): Op(
        NOBODY, ids=provider_id, body=lambda w: {"status": "suspended"}, operator_only=True
    ),
    ("GET", "/v1/providers/{provider_id}/listings"): Op(frozenset({"provider_a"}), ids=provider_id),
    ("POST", "/v1/providers/{provider_id}/listings"): Op(
        NOBODY,
        ids=provider_id,
        body=lambda w: {"list": "hz-planned-icc", "since": "2025-01-01", "reference": "x"},
        operator_only=True,
    ),
    ("DELETE", "/v1/providers/{provider_id}/listings/{list_id}"): Op(
        NOBODY,
        ids=lambda w: {**provider_id(w), "list_id": "binjiang-compute-partner"},
        operator_only=True,
    ),
    # offers: anyone with a key searches; the owner (or operator) manages its own.
    ("GET", "/v1/offers"): Op(MARKET),
    ("POST", "/v1/offers"): Op(PROVIDERS, body=lambda w: offer_body()),
    ("GET", "/v1/offers/{offer_id}"): Op(frozenset({"provider_a"}), ids=offer_id),
    ("PATCH", "/v1/offers/{offer_id}"): Op(
        frozenset({"provider_a"}), ids=offer_id, body=lambda w: {"price_per_card_hour": "0.01"}
    ),
    ("DELETE", "/v1/offers/{offer_id}"): Op(frozenset({"provider_a"}), ids=offer_id),
    ("PUT", "/v1/providers/{provider_id}/offers:sync"): Op(
        frozenset({"provider_a"}),
        ids=provider_id,
        body=lambda w: {"offers": [offer_body()], "retire_missing": True},
    ),
    # enterprises: the operator; an enterprise reads and edits itself.
    ("GET", "/v1/enterprises"): Op(MARKET),
    ("POST", "/v1/enterprises"): Op(NOBODY, body=_enterprise_body, operator_only=True),
    ("GET", "/v1/enterprises/{enterprise_id}"): Op(frozenset({"enterprise_a"}), ids=enterprise_id),
    ("PATCH", "/v1/enterprises/{enterprise_id}"): Op(
        frozenset({"enterprise_a"}), ids=enterprise_id, body=lambda w: {"name": "Taken over"}
    ),
    ("GET", "/v1/enterprises/{enterprise_id}/cap-relaxations"): Op(
        NOBODY, ids=enterprise_id, operator_only=True
    ),
    ("PUT", "/v1/enterprises/{enterprise_id}/cap-relaxations/{program_id}"): Op(
        NOBODY,
        ids=lambda w: {**enterprise_id(w), "program_id": RELAXED_PROGRAM},
        body=lambda w: {"annual_cap": "99000000.00"},
        operator_only=True,
    ),
    ("DELETE", "/v1/enterprises/{enterprise_id}/cap-relaxations/{program_id}"): Op(
        NOBODY,
        ids=lambda w: {**enterprise_id(w), "program_id": RELAXED_PROGRAM},
        operator_only=True,
    ),
    ("GET", "/v1/enterprises/{enterprise_id}/voucher-usage"): Op(
        frozenset({"enterprise_a"}), ids=enterprise_id
    ),
    # compute requests, matches, quotes, orders: the enterprise's own.
    ("POST", "/v1/compute-requests"): Op(ENTERPRISES, body=lambda w: request_body()),
    ("GET", "/v1/compute-requests"): Op(ENTERPRISES),
    ("GET", "/v1/compute-requests/{request_id}"): Op(frozenset({"enterprise_a"}), ids=request_id),
    ("DELETE", "/v1/compute-requests/{request_id}"): Op(
        frozenset({"enterprise_a"}), ids=request_id
    ),
    ("GET", "/v1/compute-requests/{request_id}/matches"): Op(
        frozenset({"enterprise_a"}), ids=request_id
    ),
    # bids: providers answer open requests; the enterprise sees its request's bids.
    ("GET", "/v1/open-requests"): Op(PROVIDERS),
    ("GET", "/v1/price-index"): Op(ALL),
    ("POST", "/v1/compute-requests/{request_id}/bids"): Op(
        frozenset({"provider_a"}),
        ids=request_id,
        body=lambda w: {
            "offer_id": w.offer_a["id"],
            "price_per_card_hour": "10.00",
            "valid_until": "2099-01-01T00:00:00+00:00",
        },
    ),
    ("GET", "/v1/compute-requests/{request_id}/bids"): Op(
        frozenset({"enterprise_a", "provider_a", "provider_b"}), ids=request_id
    ),
    ("GET", "/v1/bids/{bid_id}"): Op(
        frozenset({"provider_a", "enterprise_a"}),
        ids=lambda w: {"bid_id": "bid_01a2014889fc69da7c85d34c641c"},
    ),
    ("DELETE", "/v1/bids/{bid_id}"): Op(
        frozenset({"provider_a"}), ids=lambda w: {"bid_id": "bid_01a2014889fc69da7c85d34c641c"}
    ),
    ("POST", "/v1/quotes"): Op(
        ENTERPRISES,
        body=lambda w: {"request_id": w.request_a["id"], "offer_id": w.offer_a["id"]},
    ),
    ("GET", "/v1/quotes/{quote_id}"): Op(
        frozenset({"enterprise_a"}), ids=lambda w: {"quote_id": w.quote_a["id"]}
    ),
    ("GET", "/v1/orders"): Op(MARKET),
    ("POST", "/v1/orders"): Op(ENTERPRISES, body=lambda w: {"quote_id": w.open_quote_a["id"]}),
    ("GET", "/v1/orders/{order_id}"): Op(frozenset({"enterprise_a", "provider_a"}), ids=order_id),
    # The enterprise cancels its order; its provider completes it.
    ("POST", "/v1/orders/{order_id}/cancel"): Op(frozenset({"enterprise_a"}), ids=order_id),
    ("POST", "/v1/orders/{order_id}/complete"): Op(
        frozenset({"provider_a"}), ids=order_id, body=lambda w: {"executed_amount": "100.00"}
    ),
    # subsidy programs: any key reads, the operator writes; what-if quotes for any key.
    ("GET", "/v1/subsidy-programs"): Op(ALL),
    ("POST", "/v1/subsidy-programs"): Op(
        NOBODY, body=lambda w: district_program(), operator_only=True
    ),
    ("GET", "/v1/subsidy-programs/{program_id}"): Op(
        ALL, ids=lambda w: {"program_id": "binjiang-compute-2025"}
    ),
    ("PATCH", "/v1/subsidy-programs/{program_id}"): Op(
        NOBODY,
        ids=lambda w: {"program_id": "binjiang-compute-2025"},
        body=lambda w: {"status": "retired"},
        operator_only=True,
    ),
    ("POST", "/v1/subsidy-quotes"): Op(MARKET, body=_subsidy_quote),
    ("GET", "/v1/audit-log"): Op(NOBODY, operator_only=True),
    # voucher claims: the enterprise files and reads its own; its program's reviewers
    # read, decide and pay them; evidence for its owner and the reviewers of a claim
    # citing it.
    ("GET", "/v1/voucher-claims"): Op(ENTERPRISES | REVIEWERS),
    ("POST", "/v1/voucher-claims"): Op(
        ENTERPRISES,
        body=lambda w: {
            "program_id": w.claim_a["program_id"],
            "year": w.claim_a["year"],
            "order_ids": [w.settled_a["id"]],
        },
    ),
    ("GET", "/v1/voucher-claims/{claim_id}"): Op(
        frozenset({"enterprise_a", "reviewer_a"}), ids=claim_id
    ),
    ("PATCH", "/v1/voucher-claims/{claim_id}"): Op(
        frozenset({"enterprise_a"}), ids=claim_id, body=lambda w: {"documents": []}
    ),
    ("POST", "/v1/voucher-claims/{claim_id}/submit"): Op(frozenset({"enterprise_a"}), ids=claim_id),
    ("POST", "/v1/voucher-claims/{claim_id}/review"): Op(
        frozenset({"reviewer_a"}), ids=claim_id, body=lambda w: {"decision": "approve"}
    ),
    ("POST", "/v1/voucher-claims/{claim_id}/disbursements"): Op(
        frozenset({"reviewer_a"}),
        ids=claim_id,
        body=lambda w: {"amount": "1.00", "paid_on": "2027-01-05", "bank_reference": "X"},
    ),
    ("GET", "/v1/voucher-claims/{claim_id}/disbursements/{disbursement_id}"): Op(
        frozenset({"enterprise_a", "reviewer_a"}),
        ids=lambda w: {**claim_id(w), "disbursement_id": "dsb_none"},
    ),
    ("GET", "/v1/voucher-claims/{claim_id}/events"): Op(
        frozenset({"enterprise_a", "reviewer_a"}), ids=claim_id
    ),
    ("GET", "/v1/voucher-claims/export"): Op(REVIEWERS),
    ("GET", "/v1/subsidy-programs/{program_id}/report"): Op(
        frozenset({"reviewer_a"}), ids=lambda w: {"program_id": w.claim_a["program_id"]}
    ),
    ("POST", "/v1/evidence"): Op(MARKET),
    ("GET", "/v1/evidence/{evidence_id}"): Op(
        frozenset({"enterprise_a", "reviewer_a"}), ids=evidence_id
    ),
    ("GET", "/v1/evidence/{evidence_id}/content"): Op(
        frozenset({"enterprise_a", "reviewer_a"}), ids=evidence_id
    ),
    ("GET", "/healthz"): Op(ALL, public=True),
    ("GET", "/readyz"): Op(ALL, public=True),
}


def document_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation in an OpenAPI document."""
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def unclassified(document: dict[str, Any]) -> list[str]:
    return [
        f"{method} {path}"
        for method, path in document_operations(document)
        if (method, path) not in OPERATIONS
    ]


async def call(
    client: AsyncClient,
    world: World,
    method: str,
    template: str,
    headers: dict[str, str],
    *,
    ids: dict[str, str] | None = None,
) -> Response:
    op = OPERATIONS[(method, template)]
    filled = ids if ids is not None else (op.ids or _none)(world)
    path = template.format(**filled)
    body = op.body(world) if op.body is not None else None
    return await client.request(method, path, json=body, headers=headers)
