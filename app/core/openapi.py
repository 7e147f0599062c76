"""The OpenAPI document as SDK users meet it.

FastAPI writes most of the document from the routes; this module finishes it:
a short `summary` per operation (the docstring stays the description), tag
descriptions, and the error responses that cross-cutting code can give on any
route (`problems()` declares the route's own). Every error is
`application/problem+json` with the `Problem` schema, because that is all the
server ever answers for a 4xx or 5xx.
"""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from app.core.errors import PROBLEM_JSON, problems

OPENAPI_TAGS: list[dict[str, Any]] = [
    {
        "name": "api-keys",
        "description": "Keys for the operator, providers and enterprises. The operator issues "
        "and revokes them; a secret is shown once, only its hash is stored.",
    },
    {
        "name": "accelerators",
        "description": "The accelerator catalog. It decides whether an offer is domestic "
        "hardware (国产算力). Any key reads; the operator writes.",
    },
    {
        "name": "providers",
        "description": "Intelligent computing centers and matchmaking partners, their status "
        "and their listings on the official lists. Providers may self-register.",
    },
    {
        "name": "offers",
        "description": "What providers sell: cards of an accelerator model over a window at a "
        "price per card-hour. Providers create offers one by one or sync them in bulk.",
    },
    {
        "name": "enterprises",
        "description": "Buyers of compute, their filed models, cap relaxations and voucher "
        "usage. Enterprises may self-register.",
    },
    {
        "name": "compute-requests",
        "description": "What an enterprise wants: cards, hours, a start window, a purpose.",
    },
    {
        "name": "bids",
        "description": "Providers' own prices for open requests (a reverse auction).",
    },
    {
        "name": "prices",
        "description": "The price index: what compute costs per accelerator, asked and paid, "
        "read by buyers, the voucher office and programs that limit the price they pay on.",
    },
    {
        "name": "matching",
        "description": "Offers ranked for a compute request by net price after the best "
        "compute voucher (算力券).",
    },
    {
        "name": "orders",
        "description": "Quotes pin a match; orders reserve capacity and subsidy together and "
        "are settled on the executed amount.",
    },
    {
        "name": "subsidies",
        "description": "Compute-voucher programs as data, with this year's budget figures, and "
        "a what-if subsidy quote.",
    },
    {
        "name": "voucher-claims",
        "description": "Voucher claims (申领): filed by the enterprise for settled orders, "
        "reviewed and paid (兑付) by the program's voucher office, every event hash-chained.",
    },
    {
        "name": "evidence",
        "description": "Contracts, invoices, proofs of payment and delivery records (PDF, PNG, "
        "JPEG), stored in the database and addressed by their SHA-256.",
    },
    {"name": "audit", "description": "Every change of state, for the operator."},
    {"name": "health", "description": "Liveness and readiness probes; no key needed."},
]

# operationId -> summary: what an SDK user reads as the method's headline. A route's
# own `summary=` wins; a route missing here falls back to its docstring.
SUMMARIES: dict[str, str] = {
    "list_voucher_claims": "List voucher claims",
    "file_voucher_claim": "File a voucher claim",
    "get_voucher_claim": "Get a voucher claim",
    "update_voucher_claim": "Replace a returned claim's documents",
    "submit_voucher_claim": "Submit a returned claim again",
    "review_voucher_claim": "Review a voucher claim",
    "disburse_voucher_claim": "Record a disbursement of an approved claim",
    "get_voucher_claim_disbursement": "Get a disbursement of a claim",
    "list_voucher_claim_events": "List a claim's hash-chained events",
    "export_voucher_claims": "Export a year's claimed order parts (CSV or XLSX)",
    "get_program_report": "A program's claims report for a year",
    "upload_evidence": "Upload an evidence file",
    "get_evidence": "Get an evidence file's metadata",
    "get_evidence_content": "Download an evidence file",
    "list_api_keys": "List API keys",
    "create_api_key": "Create an API key",
    "revoke_api_key": "Revoke an API key",
    "list_accelerators": "List accelerators",
    "create_accelerator": "Add an accelerator to the catalog",
    "get_accelerator": "Get an accelerator",
    "update_accelerator": "Update an accelerator",
    "list_providers": "List providers",
    "create_provider": "Create or self-register a provider",
    "get_provider": "Get a provider",
    "update_provider": "Update a provider",
    "change_provider_status": "Change a provider's status",
    "list_listings": "List a provider's listings",
    "grant_listing": "Put a provider on an official list",
    "end_listing": "End a provider's listing",
    "list_offers": "Search offers",
    "create_offer": "Create an offer",
    "get_offer": "Get an offer",
    "update_offer": "Update an offer",
    "retire_offer": "Retire an offer",
    "sync_offers": "Sync a provider's offers",
    "list_enterprises": "List enterprises",
    "create_enterprise": "Create or self-register an enterprise",
    "get_enterprise": "Get an enterprise",
    "update_enterprise": "Update an enterprise",
    "list_cap_relaxations": "List an enterprise's cap relaxations",
    "grant_cap_relaxation": "Grant a cap relaxation",
    "revoke_cap_relaxation": "Revoke a cap relaxation",
    "create_compute_request": "Post a compute request",
    "list_compute_requests": "List compute requests",
    "get_compute_request": "Get a compute request",
    "cancel_compute_request": "Cancel a compute request",
    "list_matches": "Match offers to a compute request",
    "create_quote": "Pin a match as a quote",
    "get_quote": "Get a quote",
    "list_orders": "List orders",
    "place_order": "Place an order",
    "get_order": "Get an order",
    "cancel_order": "Cancel an order",
    "complete_order": "Complete (settle) an order",
    "get_voucher_usage": "Get an enterprise's voucher usage",
    "list_subsidy_programs": "List subsidy programs",
    "create_subsidy_program": "Create a subsidy program",
    "get_subsidy_program": "Get a subsidy program",
    "update_subsidy_program": "Update a subsidy program",
    "create_subsidy_quote": "Quote a subsidy (what-if)",
    "list_audit_log": "Read the audit log",
    "healthz": "Liveness",
    "readyz": "Readiness",
}

# FastAPI's own validation-error schemas: the server never answers them (see errors.py).
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


LOCATION_HEADER = {
    "description": "The path of the created resource",
    "schema": {"type": "string"},
}


def _summary(operation: dict[str, Any]) -> str | None:
    operation_id = operation.get("operationId", "")
    given = operation.get("summary")
    if given and given != operation_id.replace("_", " ").title():
        return str(given)  # the route's own summary=
    if operation_id in SUMMARIES:
        return SUMMARIES[operation_id]
    description = operation.get("description") or ""
    return description.strip().splitlines()[0].rstrip(".") if description.strip() else given


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options"}:
                yield operation


def _is_problem(response: dict[str, Any]) -> bool:
    refs = {
        media.get("schema", {}).get("$ref", "") for media in response.get("content", {}).values()
    }
    return any(ref.rsplit("/", 1)[-1] in {"Problem", *FASTAPI_VALIDATION_SCHEMAS} for ref in refs)


def _header_params(operation: dict[str, Any]) -> set[str]:
    return {p["name"].lower() for p in operation.get("parameters", []) if p.get("in") == "header"}


def _restore_nulls(example: Any, schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """FastAPI drops every null from the document, examples' included; a required field
    that went missing from an example was a null there, so put it back."""
    while "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for branch in schema.get("anyOf", []):
        _restore_nulls(example, branch, schemas)
    if isinstance(example, dict) and "properties" in schema:
        for name in schema.get("required", []):
            example.setdefault(name, None)
        for name, value in example.items():
            if name in schema["properties"]:
                _restore_nulls(value, schema["properties"][name], schemas)
    elif isinstance(example, list) and isinstance(schema.get("items"), dict):
        for item in example:
            _restore_nulls(item, schema["items"], schemas)


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """Summaries, and the errors every route can meet, as problem+json only."""
    for operation in _operations(document):
        operation["summary"] = _summary(operation)
        responses: dict[str, Any] = operation.setdefault("responses", {})
        implied: list[int] = []
        if "requestBody" in operation:
            # 400: a body that is not UTF-8 at all (FastAPI); 413: BodyLimitMiddleware;
            # 415: a body that is not JSON (ContractRoute).
            implied += [400, 413, 415]
        # ContractRoute: an unknown query parameter, on any route, is a 422.
        implied.append(422)
        headers = _header_params(operation)
        if "idempotency-key" in headers:
            # IdempotencyMiddleware: 409 while the first request runs, 422 for a reused key.
            implied += [409, 422]
        if "if-match" in headers:
            implied.append(412)
        for status, response in problems(*implied).items():
            response.pop("model")  # FastAPI's input; the document holds the $ref already
            responses.setdefault(str(status), response)
        if "201" in responses:
            responses["201"].setdefault("headers", {})["Location"] = LOCATION_HEADER
        for status, response in responses.items():
            if _is_problem(response):
                # Errors are problem+json only, FastAPI's default 422 included.
                response["content"] = dict(_PROBLEM_CONTENT)
                if status == "422" and response.get("description") == "Validation Error":
                    response["description"] = problems(422)[422]["description"]
        operation["responses"] = dict(sorted(responses.items()))
    schemas = document.get("components", {}).get("schemas", {})
    _mark_uploads_binary(document, schemas)
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    for schema in schemas.values():
        for example in schema.get("examples", []):
            _restore_nulls(example, schema, schemas)
    return document


def _mark_uploads_binary(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A file field of a multipart body says `format: binary` too. FastAPI writes it
    the OpenAPI 3.1 way alone (`contentMediaType: application/octet-stream`), which
    generators such as openapi-python-client read as text: the SDK sent the file as a
    text field with no file name, and the upload was refused."""
    for operation in _operations(document):
        media = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        if not isinstance(media, dict):
            continue
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = schemas.get(ref.rsplit("/", 1)[1], {})
        for field in schema.get("properties", {}).values():
            if (
                field.get("type") == "string"
                and field.get("contentMediaType") == "application/octet-stream"
            ):
                field.setdefault("format", "binary")


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` answer the finished document (FastAPI still builds and caches it)."""
    build = app.openapi
    finished: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()
        if not finished or finished[0] is not document:
            finished[:] = [finish_document(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
