"""The marketplace flow as an integrator writes it, against the installed computematch-client.

tests/sdk/test_installed.py runs this file with the python of a fresh virtual environment
into which only the built wheel (and its dependencies) was installed, and checks it with
mypy --strict there. It imports nothing from this repository. Arguments come from the
environment: CM_BASE_URL, CM_OPERATOR_KEY, CM_PROVIDER_CODE, CM_ENTERPRISE_CODE (credit
codes). Figures: policies.md worked example 1.
"""

import os
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from computematch_client import Computematch, Conflict, NotFound, Unprocessable
from computematch_client.models import (
    ApiKeyCreate,
    ComputeRequestCreate,
    EnterpriseCreate,
    ListingCreate,
    OfferFields,
    OfferSync,
    OrderCreate,
    OrderStatus,
    ProviderCreate,
    ProviderKind,
    ProviderStatus,
    Purpose,
    QuoteCreate,
    Role,
    Workload,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ORDERS = "/v1/orders"


class LoseFirstOrderAnswer(httpx.BaseTransport):
    """Sends every request; the answer to the first `POST /v1/orders` is lost on the way
    back, after the server placed the order, as a dropped connection would lose it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.order_keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == ORDERS:
            self.order_keys.append(request.headers["Idempotency-Key"])
            if len(self.order_keys) == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    base_url = os.environ["CM_BASE_URL"]
    now = datetime.now(SHANGHAI)
    start = datetime.combine(now.date() + timedelta(days=7), time(), SHANGHAI)

    with Computematch(base_url, os.environ["CM_OPERATOR_KEY"]) as operator:
        provider = operator.providers.create(
            body=ProviderCreate(
                name="Binjiang Intelligent Computing Center",
                kind=ProviderKind.INTELLIGENT_COMPUTING_CENTER,
                unified_social_credit_code=os.environ["CM_PROVIDER_CODE"],
                region_code="330108",
                status=ProviderStatus.LISTED,
            )
        )
        operator.providers.grant_listing(
            provider.id,
            body=ListingCreate(
                list_="binjiang-compute-partner",
                since=now.date() - timedelta(days=30),
                reference="杭高新〔2025〕9号",
            ),
        )
        provider_key = operator.api_keys.create(
            body=ApiKeyCreate(role=Role.PROVIDER, provider_id=provider.id)
        ).key

    with Computematch(base_url, provider_key) as as_provider:
        synced = as_provider.providers.sync_offers(
            provider.id,
            body=OfferSync(
                offers=[
                    OfferFields(
                        external_id="bj-910b-pool-1",
                        accelerator_id="huawei-ascend-910b",
                        cards_total=64,
                        price_per_card_hour=Decimal("12"),
                        available_from=start - timedelta(days=1),
                        available_until=start + timedelta(days=365),
                        region_code="330108",
                        workloads=[Workload.TRAINING],
                    )
                ]
            ),
        )
        assert (synced.created, synced.unchanged) == (1, 0), synced
        # Money goes out as the API's two-decimal string and comes back a Decimal.
        offers = list(as_provider.offers.iter(provider_id=provider.id))
        assert [o.price_per_card_hour for o in offers] == [Decimal("12.00")], offers
        # A naive datetime is refused before anything is sent.
        try:
            ComputeRequestCreate(
                cards=1,
                hours=1,
                earliest_start=datetime(2030, 1, 1),
                latest_start=datetime(2030, 1, 2),
                purpose=Purpose.TRAINING,
            ).to_dict()
        except ValueError as exc:
            assert "naive" in str(exc), exc
        else:
            raise AssertionError("a naive datetime was sent")

    # An enterprise registers itself, without a key, and keeps the key it is given.
    with Computematch(base_url) as anonymous:
        enterprise = anonymous.enterprises.create(
            body=EnterpriseCreate(
                name="Hangzhou Model Works",
                unified_social_credit_code=os.environ["CM_ENTERPRISE_CODE"],
                region_code="330108",
            )
        )
    assert isinstance(enterprise.api_key, str) and enterprise.api_key
    flaky = LoseFirstOrderAnswer()
    with Computematch(base_url, enterprise.api_key, transport=flaky, backoff=0.01) as buyer:
        # A bad input is an exception carrying the problem's fields.
        try:
            buyer.compute_requests.create(
                body=ComputeRequestCreate(
                    cards=64,
                    hours=720,
                    earliest_start=start,
                    latest_start=start + timedelta(days=30),
                    purpose=Purpose.TRAINING,
                    max_net_budget=Decimal("300000.005"),
                )
            )
        except Unprocessable as exc:
            assert exc.status == 422 and exc.type.endswith("/validation-error"), exc
            assert any("max_net_budget" in error["loc"] for error in exc.errors), exc.errors
        else:
            raise AssertionError("three decimals were accepted")

        request = buyer.compute_requests.create(
            body=ComputeRequestCreate(
                cards=64,
                hours=720,
                earliest_start=start,
                latest_start=start + timedelta(days=30),
                purpose=Purpose.TRAINING,
                max_net_budget=Decimal("300000"),
            )
        )
        assert request.max_net_budget == Decimal("300000.00")
        best = buyer.compute_requests.list_matches(request.id, limit=5).items[0]
        # 64 cards x 720 h x 12.00; Binjiang pays 60% on domestic hardware.
        assert (best.gross_amount, best.net_amount) == (Decimal("552960.00"), Decimal("221184.00"))
        assert best.subsidy.amount == Decimal("331776.00")
        assert best.subsidy.rate == Decimal("0.60")
        assert best.net_price_per_card_hour == Decimal("4.80")
        assert best.start.tzinfo is not None and best.start == start

        quote = buyer.quotes.create(body=QuoteCreate(request_id=request.id, offer_id=best.offer_id))
        assert quote.net_amount == Decimal("221184.00")

        # The first answer is lost after the order was placed: the SDK sends it again with
        # the key it generated, and the server answers the order it already placed.
        order = buyer.orders.create(body=OrderCreate(quote_id=quote.id))
        assert order.status == OrderStatus.RESERVED
        assert len(flaky.order_keys) == 2 and flaky.order_keys[0] == flaky.order_keys[1]

        # Ordering the same quote again (a new key) is a 409 with its reason.
        try:
            buyer.orders.create(body=OrderCreate(quote_id=quote.id))
        except Conflict as exc:
            assert (exc.status, exc.reason) == (409, "quote_used"), exc
            assert exc.title and exc.detail and exc.request_id
        else:
            raise AssertionError("a used quote was ordered again")
        try:
            buyer.orders.get("ord_missing")
        except NotFound as exc:
            assert exc.status == 404
        else:
            raise AssertionError("a missing order was found")

        cancelled = buyer.orders.cancel(order.id)
        assert cancelled.status == OrderStatus.CANCELLED
        assert cancelled.cancelled_at is not None and cancelled.cancelled_at.tzinfo is not None

        # The capacity is free again: a second request is ordered.
        again = buyer.compute_requests.create(
            body=ComputeRequestCreate(
                cards=64,
                hours=720,
                earliest_start=start,
                latest_start=start + timedelta(days=30),
                purpose=Purpose.TRAINING,
            )
        )
        match = buyer.compute_requests.list_matches(again.id, limit=1).items[0]
        second_quote = buyer.quotes.create(
            body=QuoteCreate(request_id=again.id, offer_id=match.offer_id)
        )
        second = buyer.orders.create(
            body=OrderCreate(quote_id=second_quote.id), idempotency_key=f"mine-{again.id}"
        )
        assert flaky.order_keys[-1] == f"mine-{again.id}"

        # Every order, one a page: the lost answer's retry placed no second order.
        mine = list(buyer.orders.iter(limit=1))
        assert [o.id for o in mine] == sorted([order.id, second.id]), mine
        assert {o.id: o.status for o in mine} == {
            order.id: OrderStatus.CANCELLED,
            second.id: OrderStatus.RESERVED,
        }
    with Computematch(base_url, os.environ["CM_OPERATOR_KEY"]) as operator:
        every = [o.id for o in operator.orders.iter(limit=1)]
        assert every == sorted([order.id, second.id]), every
    print("flow ok")


if __name__ == "__main__":
    main()
