"""The marketplace flow as an integrator meets it: a real server, driven only through the
Python SDK generated from the committed openapi/openapi.json.

Every client raises on a status the document does not declare, so an undocumented answer
fails here as it would surprise an SDK user. Figures: policies.md worked example 1.
"""

import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core.validators import make_credit_code
from tests.live_server import LiveServer

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ok(response: Any, status: int) -> Any:
    """The parsed body of an answer that must have `status`."""
    assert response.status_code == status, response.content
    assert response.parsed is not None
    return response.parsed


def test_the_marketplace_flow_through_the_generated_sdk(
    server: LiveServer, connect: Callable[[str | None], Any]
) -> None:
    from computematch_client.api.api_keys import create_api_key
    from computematch_client.api.compute_requests import create_compute_request
    from computematch_client.api.enterprises import create_enterprise, get_voucher_usage
    from computematch_client.api.matching import list_matches
    from computematch_client.api.offers import sync_offers
    from computematch_client.api.orders import complete_order, create_quote, get_order, place_order
    from computematch_client.api.providers import create_provider, grant_listing, list_providers
    from computematch_client.models import (
        ApiKeyCreate,
        ComputeRequestCreate,
        EnterpriseCreate,
        ListingCreate,
        OfferFields,
        OfferSync,
        OrderComplete,
        OrderCreate,
        OrderStatus,
        Problem,
        ProviderCreate,
        ProviderKind,
        ProviderStatus,
        Purpose,
        QuoteCreate,
        Role,
        Workload,
    )

    operator = connect(server.operator_key)
    now = datetime.now(SHANGHAI)
    start = datetime.combine(now.date() + timedelta(days=7), time(), SHANGHAI)

    # The operator creates a listed provider, puts it on Binjiang's partner list, lists it.
    provider = ok(
        create_provider.sync_detailed(
            client=operator,
            body=ProviderCreate(
                name="Binjiang Intelligent Computing Center",
                kind=ProviderKind.INTELLIGENT_COMPUTING_CENTER,
                unified_social_credit_code=make_credit_code("330108", 101),
                region_code="330108",
                status=ProviderStatus.LISTED,
            ),
        ),
        201,
    )
    ok(
        grant_listing.sync_detailed(
            provider.id,
            client=operator,
            body=ListingCreate(
                list_="binjiang-compute-partner",
                since=now.date() - timedelta(days=30),
                reference="杭高新〔2025〕9号",
            ),
        ),
        201,
    )
    listed = ok(list_providers.sync_detailed(client=operator, status=ProviderStatus.LISTED), 200)
    assert [p.id for p in listed.items] == [provider.id]
    assert [lst.list_ for lst in listed.items[0].listings] == ["binjiang-compute-partner"]
    provider_key = ok(
        create_api_key.sync_detailed(
            client=operator, body=ApiKeyCreate(role=Role.PROVIDER, provider_id=provider.id)
        ),
        201,
    ).key
    as_provider = connect(provider_key)

    # The provider syncs its inventory; the same sync again changes nothing.
    inventory = OfferSync(
        offers=[
            OfferFields(
                external_id="bj-910b-pool-1",
                accelerator_id="huawei-ascend-910b",
                cards_total=64,
                price_per_card_hour="12.00",
                available_from=start - timedelta(days=1),
                available_until=start + timedelta(days=365),
                region_code="330108",
                workloads=[Workload.TRAINING, Workload.INFERENCE],
            )
        ]
    )
    synced = ok(sync_offers.sync_detailed(provider.id, client=as_provider, body=inventory), 200)
    assert (synced.created, synced.updated, synced.unchanged) == (1, 0, 0)
    again = ok(sync_offers.sync_detailed(provider.id, client=as_provider, body=inventory), 200)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)

    # An enterprise registers itself (no key) and receives its key once.
    anonymous = connect(None)
    enterprise = ok(
        create_enterprise.sync_detailed(
            client=anonymous,
            body=EnterpriseCreate(
                name="Hangzhou Model Works",
                unified_social_credit_code=make_credit_code("330108", 102),
                region_code="330108",
            ),
        ),
        201,
    )
    assert enterprise.api_key
    as_enterprise = connect(enterprise.api_key)

    # It posts a request and reads the matches, best net price after vouchers first.
    request = ok(
        create_compute_request.sync_detailed(
            client=as_enterprise,
            body=ComputeRequestCreate(
                cards=64,
                hours=720,
                earliest_start=start,
                latest_start=start + timedelta(days=30),
                purpose=Purpose.TRAINING,
            ),
        ),
        201,
    )
    matches = ok(list_matches.sync_detailed(request.id, client=as_enterprise, limit=5), 200)
    best = matches.items[0]
    assert best.provider_id == provider.id
    # 64 cards × 720 h × 12.00; Binjiang pays 60% on domestic hardware.
    assert (best.gross_amount, best.net_amount) == ("552960.00", "221184.00")
    assert best.subsidy.program_id == "binjiang-compute-2025"
    assert best.subsidy.amount == "331776.00"
    assert best.net_price_per_card_hour == "4.80"

    # It takes a quote and places the order; a retry with the same key places nothing new.
    quote = ok(
        create_quote.sync_detailed(
            client=as_enterprise, body=QuoteCreate(request_id=request.id, offer_id=best.offer_id)
        ),
        201,
    )
    assert quote.net_amount == "221184.00"
    idempotency_key = f"order-{uuid.uuid4()}"
    order = ok(
        place_order.sync_detailed(
            client=as_enterprise,
            body=OrderCreate(quote_id=quote.id),
            idempotency_key=idempotency_key,
        ),
        201,
    )
    assert order.status == OrderStatus.RESERVED
    retried = ok(
        place_order.sync_detailed(
            client=as_enterprise,
            body=OrderCreate(quote_id=quote.id),
            idempotency_key=idempotency_key,
        ),
        201,
    )
    assert retried.id == order.id

    # The operator sees every order; errors arrive as typed problem documents.
    assert ok(get_order.sync_detailed(order.id, client=operator), 200).id == order.id
    missing = ok(get_order.sync_detailed("ord_missing", client=as_enterprise), 404)
    assert isinstance(missing, Problem)
    assert missing.status == 404

    # The provider completes it on the executed amount: the subsidy is recomputed on it.
    completed = ok(
        complete_order.sync_detailed(
            order.id, client=as_provider, body=OrderComplete(executed_amount="500000.00")
        ),
        200,
    )
    assert completed.status == OrderStatus.COMPLETED
    assert (completed.subsidy.amount, completed.net_amount) == ("300000.00", "200000.00")

    # The enterprise reads its voucher usage for this year.
    usage = ok(
        get_voucher_usage.sync_detailed(enterprise.id, client=as_enterprise, year=now.year), 200
    )
    binjiang = next(i for i in usage.items if i.program_id == "binjiang-compute-2025")
    assert (binjiang.reserved, binjiang.settled) == ("0.00", "300000.00")
    assert binjiang.remaining == "19700000.00"
