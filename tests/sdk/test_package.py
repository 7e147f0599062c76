"""The SDK's own rules, in this process over canned answers (no server): how money and
instants are written, which exception an answer raises, which calls are retried and how,
how pages are walked, and that every operation of the document has its method."""

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sdk.generate import DOCUMENT

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(scope="module")
def cm(sdk_import_path: Path) -> Any:
    import computematch_client

    return computematch_client


def problem(status: int, kind: str, **fields: Any) -> httpx.Response:
    body = {
        "type": f"https://computematch.example/problems/{kind}",
        "title": kind,
        "status": status,
    }
    return httpx.Response(
        status, json={**body, **fields}, headers={"content-type": "application/problem+json"}
    )


def client(cm: Any, handler: Handler, **options: Any) -> Any:
    return cm.Computematch(
        "http://api.test", "key", transport=httpx.MockTransport(handler), backoff=0, **options
    )


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("12"), "12.00"),
        (Decimal("12.5"), "12.50"),
        (Decimal("552960.000"), "552960.00"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("0.6"), "0.60"),
        (Decimal("0.1234"), "0.1234"),
        (Decimal("12.345"), "12.345"),
    ],
)
def test_a_decimal_is_written_with_two_decimals_and_never_rounded(
    cm: Any, value: Decimal, wire: str
) -> None:
    from computematch_client.wire import decimal_to_json

    assert decimal_to_json(value) == wire


def test_money_in_and_out_of_the_models_is_decimal(cm: Any) -> None:
    from computematch_client.models import EnterpriseOutRelaxedCaps, OrderComplete
    from computematch_client.wire import decimal_to_json

    assert OrderComplete(executed_amount=Decimal("500000")).to_dict() == {
        "executed_amount": "500000.00"
    }
    caps = EnterpriseOutRelaxedCaps.from_dict({"binjiang-compute-2025": "25000000.00"})
    assert caps["binjiang-compute-2025"] == Decimal("25000000.00")
    assert caps.to_dict() == {"binjiang-compute-2025": "25000000.00"}
    with pytest.raises(ValueError, match="not an amount"):
        decimal_to_json(Decimal("NaN"))


def test_a_naive_datetime_is_refused_before_sending(cm: Any) -> None:
    from computematch_client.models import ComputeRequestCreate, Purpose

    body = ComputeRequestCreate(
        cards=1,
        hours=1,
        earliest_start=datetime(2030, 1, 1),
        latest_start=datetime(2030, 1, 2),
        purpose=Purpose.TRAINING,
    )
    with pytest.raises(ValueError, match="naive"):
        body.to_dict()


@pytest.mark.parametrize(
    ("status", "kind", "name"),
    [
        (400, "bad-request", "BadRequest"),
        (401, "unauthorized", "Unauthorized"),
        (403, "forbidden", "Forbidden"),
        (404, "not-found", "NotFound"),
        (409, "conflict", "Conflict"),
        (412, "precondition-failed", "PreconditionFailed"),
        (413, "payload-too-large", "PayloadTooLarge"),
        (422, "validation-error", "Unprocessable"),
        (429, "rate-limited", "RateLimited"),
        (418, "teapot", "ClientError"),
        (500, "internal-error", "ServerError"),
    ],
)
def test_an_error_answer_raises_the_exception_of_its_status(
    cm: Any, status: int, kind: str, name: str
) -> None:
    answer = problem(
        status,
        kind,
        detail="what went wrong",
        reason="capacity",
        errors=[{"loc": ["body", "cards"], "msg": "too many"}],
        request_id="req-1",
    )
    answer.headers["retry-after"] = "7"
    with client(cm, lambda request: answer) as api, pytest.raises(cm.ApiError) as caught:
        api.orders.get("ord_1")
    error = caught.value
    assert type(error).__name__ == name
    assert isinstance(error, cm.ServerError if status >= 500 else cm.ClientError)
    assert (error.status, error.title, error.detail) == (status, kind, "what went wrong")
    assert error.type == f"https://computematch.example/problems/{kind}"
    assert (error.reason, error.request_id, error.retry_after) == ("capacity", "req-1", 7.0)
    assert error.errors == [{"loc": ["body", "cards"], "msg": "too many"}]


def test_an_error_that_is_not_a_problem_document_still_raises(cm: Any) -> None:
    answer = httpx.Response(502, text="<html>Bad Gateway</html>")
    with client(cm, lambda request: answer) as api, pytest.raises(cm.ServerError) as caught:
        api.orders.get("ord_1")
    assert (caught.value.status, caught.value.title) == (502, "Bad Gateway")
    assert caught.value.detail == "<html>Bad Gateway</html>"


ORDER = {
    "id": "ord_1",
    "quote_id": "quo_1",
    "request_id": "req_1",
    "enterprise_id": "ent_1",
    "status": "reserved",
    "offer_id": "off_1",
    "parts": [],
    "cards": 64,
    "start": "2030-01-01T00:00:00Z",
    "end": "2030-01-31T00:00:00Z",
    "gross_amount": "552960.00",
    "subsidy": {
        "program_id": None,
        "rate": "0.00",
        "amount": "0.00",
        "base": None,
        "capped_by": None,
    },
    "net_amount": "552960.00",
    "executed_amount": None,
    "created_at": "2029-12-01T00:00:00Z",
    "completed_at": None,
    "cancelled_at": None,
}


class Recorder:
    """Answers from a script, one per request, and keeps what was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_creating_call_is_retried_with_one_generated_key_on_5xx_and_lost_connections(
    cm: Any,
) -> None:
    from computematch_client.models import OrderCreate

    lost = httpx.ReadError("connection reset")
    recorder = Recorder(
        httpx.Response(503), lost, problem(500, "internal-error"), httpx.Response(201, json=ORDER)
    )
    with client(cm, recorder) as api:
        order = api.orders.create(body=OrderCreate(quote_id="quo_1"))
    assert order.id == "ord_1"
    assert order.gross_amount == Decimal("552960.00")
    assert order.start.tzinfo is not None
    keys = {request.headers["Idempotency-Key"] for request in recorder.sent}
    assert len(recorder.sent) == 4
    assert len(keys) == 1
    uuid.UUID(keys.pop())
    assert [json.loads(request.content) for request in recorder.sent] == [{"quote_id": "quo_1"}] * 4


def test_the_callers_key_is_kept_and_the_last_failure_raises_after_the_retries(
    cm: Any,
) -> None:
    from computematch_client.models import OrderCreate

    recorder = Recorder(*[httpx.Response(502) for _ in range(3)])
    with client(cm, recorder, retries=2) as api, pytest.raises(cm.ServerError):
        api.orders.create(body=OrderCreate(quote_id="quo_1"), idempotency_key="mine")
    assert [request.headers["Idempotency-Key"] for request in recorder.sent] == ["mine"] * 3

    given_none = Recorder(httpx.Response(201, json=ORDER))
    with client(cm, given_none) as api:
        api.orders.create(body=OrderCreate(quote_id="quo_1"), idempotency_key=None)
    uuid.UUID(given_none.sent[0].headers["Idempotency-Key"])

    lost = Recorder(*[httpx.ConnectError("refused") for _ in range(3)])
    with client(cm, lost, retries=2) as api, pytest.raises(httpx.ConnectError):
        api.orders.create(body=OrderCreate(quote_id="quo_1"))
    assert len(lost.sent) == 3


def test_calls_that_do_not_create_are_not_retried(cm: Any) -> None:
    reads = Recorder(httpx.Response(503))
    with client(cm, reads) as api, pytest.raises(cm.ServerError):
        api.orders.get("ord_1")
    assert len(reads.sent) == 1
    # Cancelling is a POST without an Idempotency-Key: sent once.
    cancels = Recorder(httpx.Response(503))
    with client(cm, cancels) as api, pytest.raises(cm.ServerError):
        api.orders.cancel("ord_1")
    assert len(cancels.sent) == 1
    assert "Idempotency-Key" not in cancels.sent[0].headers


def test_iter_follows_the_cursor_through_every_page(cm: Any) -> None:
    pages = {
        None: {"items": [{**ORDER, "id": "ord_1"}, {**ORDER, "id": "ord_2"}], "next_cursor": "c2"},
        "c2": {"items": [{**ORDER, "id": "ord_3"}], "next_cursor": "c3"},
        "c3": {"items": [], "next_cursor": None},
    }
    seen: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    with client(cm, answer) as api:
        ids = [order.id for order in api.orders.iter(status="reserved", limit=2)]
    assert ids == ["ord_1", "ord_2", "ord_3"]
    assert seen == [
        {"status": "reserved", "limit": "2"},
        {"status": "reserved", "limit": "2", "cursor": "c2"},
        {"status": "reserved", "limit": "2", "cursor": "c3"},
    ]


def test_a_decimal_query_parameter_is_written_as_money(cm: Any) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["max_price_per_card_hour"])
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    with client(cm, answer) as api:
        assert list(api.offers.iter(max_price_per_card_hour=Decimal("12.5"))) == []
    assert seen == ["12.50"]


def test_every_operation_of_the_document_has_one_method_on_a_resource(cm: Any) -> None:
    document = json.loads(DOCUMENT.read_text())
    operations = {
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    api = cm.Computematch("http://api.test")
    found: dict[str, list[str]] = {}
    for resource, group in vars(api).items():
        if resource == "low_level":
            continue
        for name in dir(group):
            method = getattr(group, name)
            if name.startswith("_") or not callable(method) or name.startswith("iter"):
                continue
            operation = (method.__doc__ or "").rsplit("(`", 1)[-1].rstrip("`).")
            found.setdefault(operation, []).append(f"{resource}.{name}")
    assert set(found) == operations
    assert all(len(names) == 1 for names in found.values()), found
    # Grouped by resource, not by tag: a quote is not under orders.
    assert found["create_quote"] == ["quotes.create"]
    assert found["place_order"] == ["orders.create"]
    assert found["list_offers"] == ["offers.list"]
    assert callable(api.offers.iter)


async def test_the_async_client_retries_raises_and_walks_pages(cm: Any) -> None:
    from computematch_client.models import OrderCreate

    created = Recorder(
        httpx.Response(503), httpx.ReadError("lost"), httpx.Response(201, json=ORDER)
    )
    async with cm.AsyncComputematch(
        "http://api.test", "key", transport=httpx.MockTransport(created), backoff=0
    ) as api:
        order = await api.orders.create(body=OrderCreate(quote_id="quo_1"))
    assert order.gross_amount == Decimal("552960.00")
    assert len(created.sent) == 3
    assert len({request.headers["Idempotency-Key"] for request in created.sent}) == 1

    pages = {
        None: {"items": [{**ORDER, "id": "ord_1"}], "next_cursor": "c2"},
        "c2": {"items": [{**ORDER, "id": "ord_2"}], "next_cursor": None},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("ord_missing"):
            return problem(404, "not-found", detail="no such order")
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    async with cm.AsyncComputematch(
        "http://api.test", "key", transport=httpx.MockTransport(answer)
    ) as api:
        assert [order.id async for order in api.orders.iter(limit=1)] == ["ord_1", "ord_2"]
        with pytest.raises(cm.NotFound) as caught:
            await api.orders.get("ord_missing")
    assert caught.value.detail == "no such order"


def test_an_evidence_file_is_sent_as_a_multipart_file_part(cm: Any) -> None:
    import io

    from computematch_client.models import BodyUploadEvidence
    from computematch_client.types import File

    seen: list[httpx.Request] = []
    content = b"%PDF-1.4\n%%EOF\n"

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201,
            json={
                "id": "evd_1",
                "sha256": "0" * 64,
                "media_type": "application/pdf",
                "size_bytes": len(content),
                "filename": "合同.pdf",
                "uploaded_at": "2026-12-05T00:00:00Z",
            },
        )

    upload = File(payload=io.BytesIO(content), file_name="合同.pdf", mime_type="application/pdf")
    with client(cm, answer) as api:
        out = api.evidence.create(body=BodyUploadEvidence(file=upload))
    assert out.id == "evd_1"
    request = seen[0]
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.read()
    # A file part: its name, file name and media type, and the bytes as they are.
    assert b'name="file"; filename="' in body
    assert b"Content-Type: application/pdf" in body
    assert content in body
